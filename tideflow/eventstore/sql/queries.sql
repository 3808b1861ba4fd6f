-- lock_buses --
-- Lock the rows of the buses named in $1 in name order (one lock order for every process: no
-- deadlock) until commit, serializing each bus's appends; read where each log stands; and make
-- this transaction plan each statement for its parameters: a generic plan of live_events would
-- lock every segment of the log (PostgreSQL locks before it prunes). The rows are locked as the
-- sort hands them over; one updated meanwhile is read again once its lock is granted.
-- With it, the dedup probe of the batch (per probe its bus name $2 and hash $3; as
-- find_duplicates): the offsets of the keys found, per bus. The probe reads the statement's
-- snapshot, taken before the lock was granted: a bus whose row an append moved meanwhile has
-- next_offset <> seen_offset (seen_offset is the snapshot's row), and the caller probes it again
-- (find_duplicates, a later statement) -- an append always moves its bus's row
WITH seen AS MATERIALIZED (
    SELECT s.id, s.next_offset FROM tideflow_buses s WHERE s.name = ANY($1::text[])
), heads AS MATERIALIZED (
    SELECT b.name, b.id, b.next_offset, b.segment_size,
           (SELECT max(s.end_offset) FROM tideflow_segments s WHERE s.bus_id = b.id) AS ready_until,
           set_config('plan_cache_mode', 'force_custom_plan', true) AS plan_cache_mode
    FROM tideflow_buses b
    WHERE b.name = ANY($1::text[])
    ORDER BY b.name
    FOR UPDATE OF b
), found AS MATERIALIZED (
    SELECT h.id, k.event_offset
    FROM unnest($2::text[], $3::bigint[]) AS p (bus, key)
    JOIN heads h ON h.name = p.bus
    JOIN tideflow_event_keys k ON k.bus_id = h.id AND k.ce_key = p.key
)
SELECT h.name, h.id, h.next_offset, h.segment_size, h.ready_until,
       (SELECT s.next_offset FROM seen s WHERE s.id = h.id) AS seen_offset,
       ARRAY(SELECT f.event_offset FROM found f WHERE f.id = h.id) AS duplicates
FROM heads h
ORDER BY h.name;

-- find_duplicates --
-- The keys already written for a batch: per probe its bus ($1) and its hash ($2). One table
-- whatever the buses (migration 0022): the plan does not grow with their segments. A match is
-- a candidate only: the caller reads its event (live_events) and compares source and id
SELECT k.bus_id, k.event_offset
FROM unnest($1::integer[], $2::bigint[]) AS p (bus_id, key)
JOIN tideflow_event_keys k ON k.bus_id = p.bus_id AND k.ce_key = p.key;

-- live_events --
-- Source and id of the events of bus $1 at the offsets $2 still in the live segments (the
-- candidates of find_duplicates; by bus id, so the other buses' segments are pruned)
SELECT ce_source, ce_id, event_offset
FROM tideflow_events
WHERE bus_id = $1 AND event_offset = ANY($2::bigint[]);

-- forget_keys --
-- The keys of bus $1 below its first live offset (their segments were dropped or archived)
DELETE FROM tideflow_event_keys
WHERE bus_id = $1
  AND event_offset < (SELECT first_offset FROM tideflow_buses WHERE id = $1);

-- forget_bus_keys --
-- Every key of a bus being deleted
DELETE FROM tideflow_event_keys WHERE bus_id = $1;

-- ensure_segments --
-- Create the bus's segments up to the one holding offset $2 (caller holds the bus row lock)
SELECT tideflow_ensure_segments($1, $2);

-- advance_buses --
-- Write the new events' dedup keys (bus $3, hash $4, offset $5) and move each bus ($1) past
-- its appended events (next offset $2); each bus's notification is delivered at commit. A
-- small batch's events come with it ($6 bus, $7 offset, $8 source, $9 id, $10 hash, $11 stored
-- at, $12 event, $13 trace): one round trip where COPY and this take three; empty after a COPY
WITH events AS (
    INSERT INTO tideflow_events (bus_id, event_offset, ce_source, ce_id, ce_key, stored_at, event,
                                 trace_parent)
    SELECT b, o, s, i, k, t, e::json, p
    FROM unnest($6::integer[], $7::bigint[], $8::text[], $9::text[], $10::bigint[],
                $11::timestamptz[], $12::text[], $13::text[]) AS n (b, o, s, i, k, t, e, p)
), keys AS (
    INSERT INTO tideflow_event_keys (bus_id, ce_key, event_offset)
    SELECT * FROM unnest($3::integer[], $4::bigint[], $5::bigint[])
), moved AS (
    UPDATE tideflow_buses b SET next_offset = u.next_offset
    FROM unnest($1::integer[], $2::bigint[]) AS u (id, next_offset)
    WHERE b.id = u.id
    RETURNING b.name, u.next_offset
)
SELECT pg_notify('tideflow_events', name || ' ' || (next_offset - 1)) FROM moved;

-- create_bus --
-- Insert a bus unless the name is taken
INSERT INTO tideflow_buses (name, max_age, max_events, segment_size, archive_after, archive_to)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (name) DO NOTHING
RETURNING id, name, max_age, max_events, created_at, segment_size, archive_after, archive_to;

-- list_buses --
-- Every bus, by name
SELECT id, name, max_age, max_events, created_at, segment_size, archive_after, archive_to
FROM tideflow_buses ORDER BY name;

-- bus_info --
-- A bus with its offsets, segments, size on disk, its archive's figures and the offset of the
-- first event after $2 (first_offset is the first live offset; archived ones come before it)
SELECT b.name, b.max_age, b.max_events, b.created_at, b.first_offset,
       b.segment_size, b.archive_after, b.archive_to,
       b.next_offset - 1 AS last_offset,
       a.segments AS archived_segments, a.events AS archived_events,
       a.size_bytes AS archived_bytes, a.first_offset AS archived_first,
       (SELECT count(*) FROM tideflow_segments s WHERE s.bus_id = b.id) AS segment_count,
       (SELECT coalesce(sum(pg_total_relation_size(
            to_regclass(tideflow_segment_table(s.bus_id, s.segment_no)))), 0)
        FROM tideflow_segments s WHERE s.bus_id = b.id)::bigint AS size_bytes,
       tideflow_first_offset_since(b.id, $2) AS first_recent
FROM tideflow_buses b
CROSS JOIN LATERAL (
    SELECT count(*) AS segments, coalesce(sum(event_count), 0)::bigint AS events,
           coalesce(sum(size_bytes), 0)::bigint AS size_bytes, min(start_offset) AS first_offset
    FROM tideflow_archived_segments WHERE bus_id = b.id
) AS a
WHERE b.name = $1;

-- last_offset --
-- The newest committed offset of a bus (no lock: sees the last committed row)
SELECT next_offset - 1 FROM tideflow_buses WHERE name = $1;

-- lock_bus_for_delete --
-- Lock a bus row before dropping its log
SELECT id FROM tideflow_buses WHERE name = $1 FOR UPDATE;

-- drop_bus_log --
-- Drop every segment of a bus at once
SELECT tideflow_drop_bus_log($1);

-- bus_changed --
-- Wake every process's readers of a bus that was created or deleted (at commit)
SELECT pg_notify('tideflow_events', $1 || ' 0');

-- delete_bus --
-- Delete a bus row (its segment rows go with it)
DELETE FROM tideflow_buses WHERE id = $1;

-- bus_id --
-- A bus's id by name
SELECT id FROM tideflow_buses WHERE name = $1;

-- read_events --
-- Committed events of bus $1 (by id, so other buses' segments are pruned early) after an offset
SELECT event_offset, event, stored_at, trace_parent
FROM tideflow_events
WHERE bus_id = $1 AND event_offset > $2
ORDER BY event_offset
LIMIT $3;

-- get_event --
-- One event of bus $1 (by id) by offset
SELECT event_offset, event, stored_at, trace_parent
FROM tideflow_events
WHERE bus_id = $1 AND event_offset = $2;

-- retention_candidates --
-- Full segments of buses with a retention policy, oldest first, with their newest event's time
SELECT b.id AS bus_id, b.name, b.max_age, b.max_events, b.next_offset,
       s.segment_no, s.start_offset, s.end_offset,
       (SELECT e.stored_at FROM tideflow_events e
        WHERE e.bus_id = b.id AND e.event_offset = s.end_offset - 1) AS newest_at
FROM tideflow_buses b
JOIN tideflow_segments s ON s.bus_id = b.id
WHERE (b.max_age IS NOT NULL OR b.max_events IS NOT NULL) AND s.end_offset <= b.next_offset
ORDER BY b.id, s.segment_no;

-- lock_bus_by_id --
-- Lock a bus row (segment DDL and retention run under it)
SELECT next_offset FROM tideflow_buses WHERE id = $1 FOR UPDATE;

-- drop_segment --
-- Drop one whole segment and move the bus's first offset
SELECT tideflow_drop_segment($1, $2);

-- archive_candidates --
-- Full live segments of buses with an archive tier, oldest first, with their newest event's time
SELECT b.id AS bus_id, b.name, b.archive_after, b.archive_to, b.next_offset,
       s.segment_no, s.start_offset, s.end_offset,
       (SELECT e.stored_at FROM tideflow_events e
        WHERE e.bus_id = b.id AND e.event_offset = s.end_offset - 1) AS newest_at
FROM tideflow_buses b
JOIN tideflow_segments s ON s.bus_id = b.id
WHERE b.archive_to IS NOT NULL AND s.end_offset <= b.next_offset
ORDER BY b.id, s.segment_no;

-- segment_rows --
-- Every event of one segment of bus $1 (offsets $2 to $3 - 1), in offset order
SELECT event_offset, event, stored_at
FROM tideflow_events
WHERE bus_id = $1 AND event_offset >= $2 AND event_offset < $3
ORDER BY event_offset;

-- archive_segment --
-- Record a verified segment file and detach and drop its partition (caller holds the bus lock)
SELECT tideflow_archive_segment($1, $2, $3, $4, $5, $6, $7);

-- archived_segments --
-- A bus's archived segments holding offsets after $2, oldest first (at most $3)
SELECT segment_no, start_offset, end_offset, location
FROM tideflow_archived_segments
WHERE bus_id = $1 AND end_offset > $2 + 1
ORDER BY segment_no
LIMIT $3;

-- archive_manifest --
-- Every archived segment of a bus, oldest first (its manifest.json)
SELECT segment_no, start_offset, end_offset, event_count, size_bytes, checksum, location,
       newest_at, archived_at
FROM tideflow_archived_segments
WHERE bus_id = $1
ORDER BY segment_no;

-- archived_retention_candidates --
-- Archived segments of buses with a retention policy, oldest first
SELECT b.id AS bus_id, b.name, b.max_age, b.max_events, b.next_offset,
       a.segment_no, a.start_offset, a.end_offset, a.newest_at, a.location
FROM tideflow_buses b
JOIN tideflow_archived_segments a ON a.bus_id = b.id
WHERE b.max_age IS NOT NULL OR b.max_events IS NOT NULL
ORDER BY b.id, a.segment_no;

-- drop_archived_segment --
-- Forget one archived segment (its file is deleted after commit); returns its file
DELETE FROM tideflow_archived_segments
WHERE bus_id = $1 AND segment_no = $2
RETURNING location;

-- archived_locations --
-- Every file of a bus's archive (deleted with the bus)
SELECT location FROM tideflow_archived_segments WHERE bus_id = $1;

-- archived_location --
-- The file of one archived segment, if it is archived
SELECT location FROM tideflow_archived_segments WHERE bus_id = $1 AND segment_no = $2;

-- bus_has_archive --
-- Whether a bus (by id) has an archive tier (set at creation; false for an unknown id)
SELECT EXISTS (SELECT 1 FROM tideflow_buses WHERE id = $1 AND archive_to IS NOT NULL);
