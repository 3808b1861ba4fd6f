-- Non-exclusive start sets (tideflow/triggers/correlation.py): crash-safe, with
-- eventTimeout and a retention.
--
-- A row is one event of a start set. While the set is open, instance_id is
-- NULL. Taking a complete set sets instance_id (derived from the set) in the
-- same transaction that addresses the events to the instance's inbox; the
-- instance is started after the commit. The taken rows stay until the
-- instance exists and the subscription's committed offset is past them: a
-- crash between the commit and the start is repaired at the next start of
-- the subscriber (taken rows without an instance are started again), and a
-- redelivered event is not added to a set a second time (its offset is there).

ALTER TABLE tideflow_correlation_starts
    ADD COLUMN instance_id text,
    -- The event's CloudEvents `time`, or its arrival time when it has none.
    ADD COLUMN event_time timestamptz NOT NULL DEFAULT now(),
    -- When the sweep discards the open set (eventTimeout, else the retention).
    ADD COLUMN expires_at timestamptz NOT NULL DEFAULT 'infinity';

ALTER TABLE tideflow_correlation_starts DROP CONSTRAINT tideflow_correlation_starts_pkey;

-- One event per definition name in an open set (the first wins).
CREATE UNIQUE INDEX tideflow_correlation_starts_open
    ON tideflow_correlation_starts (workflow_id, version, corr, name)
    WHERE instance_id IS NULL;

-- An event (offset) is in a workflow version's sets once, open or taken.
ALTER TABLE tideflow_correlation_starts
    ADD PRIMARY KEY (workflow_id, version, event_offset, name);

CREATE INDEX tideflow_correlation_starts_taken
    ON tideflow_correlation_starts (instance_id)
    WHERE instance_id IS NOT NULL;

CREATE INDEX tideflow_correlation_starts_expiry
    ON tideflow_correlation_starts (expires_at)
    WHERE instance_id IS NULL;
