-- insert_subscription --
-- Create a subscription; an existing id adds nothing (then no row)
INSERT INTO tideflow_subscriptions (id, kind, bus, spec, state, committed_offset, created_at, updated_at)
VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $7)
ON CONFLICT (id) DO NOTHING
RETURNING *;

-- get_subscription --
-- One subscription by id
SELECT * FROM tideflow_subscriptions WHERE id = $1;

-- list_subscriptions --
-- Subscriptions of one kind (NULL: any), oldest first
SELECT * FROM tideflow_subscriptions
WHERE ($1::text IS NULL OR kind = $1)
ORDER BY created_at, id;

-- delete_subscription --
-- Delete a subscription (no row if there was none)
DELETE FROM tideflow_subscriptions WHERE id = $1 RETURNING id;

-- set_state --
-- Pause or resume a subscription
UPDATE tideflow_subscriptions SET state = $2, updated_at = $3, version = version + 1
WHERE id = $1
RETURNING *;

-- set_offset --
-- Move the committed offset (reset / replay)
UPDATE tideflow_subscriptions SET committed_offset = $2, updated_at = $3, version = version + 1
WHERE id = $1
RETURNING *;

-- commit_offsets --
-- Move committed offsets forward (never back) and add to the counters, many subscriptions at once; a commit made for an older version (before a reset), or under a lease acquired again since (fencing), is ignored; the consumer's crash notes of the events the offset passes go with it
WITH moved AS (
UPDATE tideflow_subscriptions AS s SET
    committed_offset = GREATEST(s.committed_offset, u.committed_offset),
    delivered = s.delivered + u.delivered,
    failed = s.failed + u.failed,
    dead_lettered = s.dead_lettered + u.dead_lettered,
    updated_at = $7
FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::integer[],
            $8::text[], $9::bigint[])
    AS u (id, committed_offset, delivered, failed, dead_lettered, version, unit, token)
WHERE s.id = u.id AND s.version = u.version
    AND (u.unit IS NULL OR EXISTS (
        SELECT 1 FROM tideflow_cluster_leases AS l WHERE l.unit = u.unit AND l.token = u.token
    ))
RETURNING s.id, s.committed_offset
)
DELETE FROM tideflow_consumer_attempts AS a
USING moved AS m
WHERE a.subscription_id = m.id AND a.event_offset <= m.committed_offset;

-- list_versions --
-- What the running dispatcher compares with what it runs
SELECT id, kind, state, version FROM tideflow_subscriptions;

-- bus_head --
-- The newest committed offset of a bus (no row: no such bus)
SELECT next_offset - 1 AS head FROM tideflow_buses WHERE name = $1;

-- bus_heads --
-- The newest committed offset of several buses
SELECT name, next_offset - 1 AS head FROM tideflow_buses WHERE name = ANY($1::text[]);

-- offset_at_time --
-- The last offset stored before a moment (0 if none): replay from a time starts after it
SELECT coalesce(max(e.event_offset), 0) AS before
FROM tideflow_events AS e
JOIN tideflow_buses AS b ON b.id = e.bus_id
WHERE b.name = $1 AND e.stored_at < $2;

-- begin_attempts --
-- Note events as handed to consumers (subscription $1[i], offset $2[i]: the consumers of a
-- bus handed the same events note them together); returns the pairs noted now (a row
-- already there: an attempt before never finished). The note is on every event's path, so
-- its commit does not wait for the WAL flush (synchronous_commit off for this transaction
-- only, through set_config): it guards against this *process* dying, which it survives
-- once PostgreSQL has it. A PostgreSQL crash may lose it (one crash less counted), never a
-- later commit (the WAL is flushed in order).
INSERT INTO tideflow_consumer_attempts (subscription_id, event_offset)
SELECT s, o FROM unnest($1::text[], $2::bigint[]) AS n(s, o)
WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL
ON CONFLICT DO NOTHING
RETURNING subscription_id, event_offset;

-- begin_attempt --
-- Note one event as handed to a consumer; returns how often before that never finished
INSERT INTO tideflow_consumer_attempts AS a (subscription_id, event_offset)
VALUES ($1, $2)
ON CONFLICT (subscription_id, event_offset) DO UPDATE SET crashes = a.crashes + 1
RETURNING crashes;

-- end_attempts --
-- Events a consumer finished with (consumed or dead-lettered)
DELETE FROM tideflow_consumer_attempts
WHERE subscription_id = $1 AND event_offset = ANY($2::bigint[]);
