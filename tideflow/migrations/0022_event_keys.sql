-- Dedup keys in one table for every bus: (bus, hash of source and id) -> offset.
--
-- The dedup probe looked the hashes up in the bus's segments through the partitioned log:
-- each append transaction planned the probe over every segment of every bus in its batch
-- (about 0.1-0.3 ms per bus), half the cost of a commit spread over many buses. This table is
-- one relation whatever the number of buses and segments: its plan costs the same for one
-- bus or a hundred. The appending transaction writes its events' keys here under the buses'
-- row locks (the same statement that advances the buses), so a probe under those locks sees
-- every key committed before it.
--
-- A key row does not prove a duplicate: the store then reads the event at that offset from
-- the live log and compares source and id, so hash collisions and keys of events retention
-- or the archive tier removed (dedup covers the live segments only) are never taken for
-- duplicates. Those stale rows are deleted after each segment drop, by bus
-- (event_offset below the bus's first live offset), and with their bus.
CREATE TABLE tideflow_event_keys (
    bus_id integer NOT NULL,
    ce_key bigint NOT NULL,
    event_offset bigint NOT NULL,
    PRIMARY KEY (bus_id, ce_key, event_offset)
);

INSERT INTO tideflow_event_keys (bus_id, ce_key, event_offset)
SELECT bus_id, ce_key, event_offset FROM tideflow_events;

-- The probe no longer reads the segments by key.
DROP INDEX tideflow_events_key;
