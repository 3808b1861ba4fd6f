-- Retention (docs/operations.md): ended instances and ended timers are deleted in
-- batches once they are old enough; these indexes let each batch find its rows
-- without scanning the tables.
--
-- Instances: completed, failed and cancelled ones, per workflow by end time (the
-- retention is per workflow: tideflow/runtime/retention.py). The predicate names
-- status, a column other indexes already cover, so no update that is heap-only
-- today (lease, data, current state) stops being one.
CREATE INDEX tideflow_instances_ended ON tideflow_instances (workflow_id, ended_at)
    WHERE status IN ('completed', 'failed', 'cancelled');

-- Timers: fired and cancelled ones by touched_at, which firing and cancelling now
-- set (the loader reads touched_at of pending timers only). Rows ended before
-- this migration keep the time they were added or last moved: they are older
-- than their end, so they go a little sooner, never later.
CREATE INDEX tideflow_timers_ended ON tideflow_timers (touched_at)
    WHERE state <> 'pending';
