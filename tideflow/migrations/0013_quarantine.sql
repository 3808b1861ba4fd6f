-- Quarantine (tideflow/runtime/claimer.py): how often in a row an instance was claimed
-- again after its runner ended without releasing it (a killed process, a runner that
-- failed), at the same journal position -- the same step killed it each time. Past
-- TIDEFLOW_QUARANTINE_AFTER the instance is failed instead of run again.

ALTER TABLE tideflow_instances
    ADD COLUMN crashes integer NOT NULL DEFAULT 0,
    ADD COLUMN crashed_at bigint;
