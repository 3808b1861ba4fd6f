-- Poisoned events of in-process consumers (tideflow/triggers/_workers.py, ConsumerWorker):
-- a row per event handed to a consumer and not finished yet. A row still there when the
-- event is handed over again means the attempt before never finished -- the process died
-- on it -- and counts one crash; past TIDEFLOW_QUARANTINE_AFTER the event is dead-lettered
-- instead of handed over once more (the counts in memory die with the process).

CREATE TABLE tideflow_consumer_attempts (
    subscription_id text NOT NULL,
    event_offset bigint NOT NULL,
    crashes integer NOT NULL DEFAULT 0,
    PRIMARY KEY (subscription_id, event_offset)
);
