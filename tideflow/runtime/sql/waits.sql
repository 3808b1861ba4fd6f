-- The wait index of the durable runtime (tideflow/runtime/waits.py; migration 0006_correlation):
-- open event waits by (type, correlation key, source), the inbox of instances not waiting yet,
-- partial sets of waits for all of their events, and consumed events kept for later waits.

-- plan_once --
-- The held connection of a consumer's wait session (waits.EventWaits.session) plans each of its
-- statements once: generic plans, kept per connection, instead of a custom plan at every call.
-- Its statements (the lookups, deliver_claim, the staged delivery's writes) take unnest()
-- arrays, whose custom plans always look cheaper, so PostgreSQL's automatic choice planned
-- deliver_claim anew at every event. The pool resets it (RESET ALL) when the connection is
-- given back
SET plan_cache_mode = force_generic_plan;

-- plan_again --
-- Drop the plans the held connection keeps: made again at each statement's next call, for the
-- tables as they are then (waits.EventWaits.session, every second)
DISCARD PLANS;

-- match_waits --
-- Open waits indexed under each (event i, type, correlation key, source); behind: a wait for
-- any of its events that kept events may answer (as in pending_for_waits), to take them first
SELECT q.i, k.*
FROM unnest($1::int[], $2::text[], $3::jsonb[], $4::text[]) AS q(i, event_type, corr, source)
CROSS JOIN LATERAL (
    -- Looked up by key for each event (OFFSET 0: not flattened into a join). The statement
    -- runs on a generic plan (plan_once), which takes 10 events a call: joined, that made a
    -- scan of every open key look cheaper than 10 index probes up to some thousands of keys
    SELECT k.instance_id, k.wait_key, k.name, k.all_events,
           (NOT k.all_events AND EXISTS (
             SELECT 1
             FROM tideflow_correlation_keys w
             JOIN tideflow_correlation_origins o ON o.instance_id = w.instance_id
             JOIN tideflow_correlation_pending p
               ON p.event_type = w.event_type AND p.corr = w.corr
              AND (w.source = '' OR p.source = w.source) AND p.event_offset > o.start_offset
             WHERE w.instance_id = k.instance_id AND w.wait_key = k.wait_key)) AS behind
    FROM tideflow_correlation_keys k
    WHERE k.event_type = q.event_type AND k.corr = q.corr AND k.source IN ('', q.source)
    OFFSET 0
) k
ORDER BY q.i;

-- addressed_waits --
-- Events addressed to one instance by id (SonataFlow's kogitoprocrefid): each (event i,
-- instance id, type) whose instance exists, with its workflow and its open waits for the type
-- (none: NULL wait_key). Looked up by instance id (tideflow_correlation_keys_wait).
SELECT q.i, i.id AS instance_id, i.workflow_id, k.wait_key, k.name, k.all_events, false AS behind
FROM unnest($1::int[], $2::text[], $3::text[]) AS q(i, instance_id, event_type)
JOIN tideflow_instances i ON i.id = q.instance_id
LEFT JOIN tideflow_correlation_keys k
  ON k.instance_id = q.instance_id AND k.event_type = q.event_type
ORDER BY q.i;

-- add_partial --
-- Keep one event of a wait for all of its events (the first of each name wins)
INSERT INTO tideflow_correlation_partial (instance_id, wait_key, name, event)
SELECT $1, $2, $3, $4::jsonb
WHERE EXISTS (SELECT 1 FROM tideflow_event_waits WHERE instance_id = $1 AND wait_key = $2)
ON CONFLICT DO NOTHING;

-- partial_set --
-- A wait's event names (in order) and the events kept for it so far
SELECT w.events, coalesce((SELECT jsonb_object_agg(p.name, p.event)
                           FROM tideflow_correlation_partial p
                           WHERE p.instance_id = w.instance_id AND p.wait_key = w.wait_key),
                          '{}'::jsonb) AS kept
FROM tideflow_event_waits w WHERE w.instance_id = $1 AND w.wait_key = $2;

-- add_pending --
-- Keep consumed events no instance waits for yet, under each of their correlation keys
INSERT INTO tideflow_correlation_pending (event_type, corr, event_offset, source, event)
SELECT * FROM unnest($1::text[], $2::jsonb[], $3::bigint[], $4::text[], $5::jsonb[])
ON CONFLICT DO NOTHING;

-- pending_for_waits --
-- Kept events that waits may take: same type, key and source, after the instance's start offset;
-- and those kept for the wait's instance alone (SonataFlow's kogitoprocrefid: the key names it)
SELECT k.instance_id, k.wait_key, k.name, k.all_events,
       p.event_type, p.corr, p.event_offset, p.event
FROM unnest($1::text[], $2::text[]) AS w(instance_id, wait_key)
JOIN tideflow_correlation_keys k ON k.instance_id = w.instance_id AND k.wait_key = w.wait_key
JOIN tideflow_correlation_origins o ON o.instance_id = k.instance_id
JOIN tideflow_correlation_pending p
  ON p.event_type = k.event_type
 AND p.corr IN (k.corr, jsonb_build_object('kogitoprocrefid', k.instance_id))
 AND (k.source = '' OR p.source = k.source) AND p.event_offset > o.start_offset
ORDER BY p.event_offset;

-- claim_pending --
-- Take kept events (whoever deletes a row delivers it)
DELETE FROM tideflow_correlation_pending
WHERE event_offset = ANY($1::bigint[])
RETURNING event_offset;

-- expire_pending --
-- Forget kept events older than $1 seconds
DELETE FROM tideflow_correlation_pending
WHERE arrived_at < now() - make_interval(secs => $1);

-- put_inbox --
-- Address events to a wait that does not exist yet (the events that start an instance), and
-- start the instance's consumption at $4, the offset of the last of them
WITH origin AS (
  INSERT INTO tideflow_correlation_origins (instance_id, start_offset)
  VALUES ($1, $4)
  ON CONFLICT DO NOTHING
)
INSERT INTO tideflow_correlation_inbox (instance_id, wait_key, events)
VALUES ($1, $2, $3::jsonb)
ON CONFLICT DO NOTHING;

-- put_inboxes --
-- put_inbox for many waits in one statement ($1 instances, $2 wait keys, $3 events, $4 origins)
WITH u AS MATERIALIZED (
  SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::bigint[])
    AS u(instance_id, wait_key, events, origin)
), origin AS (
  INSERT INTO tideflow_correlation_origins (instance_id, start_offset)
  SELECT instance_id, origin FROM u
  ON CONFLICT DO NOTHING
)
INSERT INTO tideflow_correlation_inbox (instance_id, wait_key, events)
SELECT instance_id, wait_key, events FROM u
ON CONFLICT DO NOTHING;

-- put_origin --
-- Start an instance not created yet consuming events after offset $2 (the event starting it)
INSERT INTO tideflow_correlation_origins (instance_id, start_offset)
VALUES ($1, $2)
ON CONFLICT DO NOTHING;

-- existing_instances --
-- Which of the instances $1 exist
SELECT id FROM tideflow_instances WHERE id = ANY($1::text[]);

-- get_inbox --
-- The events addressed to open waits
SELECT b.instance_id, b.wait_key, b.events
FROM unnest($1::text[], $2::text[]) AS w(instance_id, wait_key)
JOIN tideflow_correlation_inbox b ON b.instance_id = w.instance_id AND b.wait_key = w.wait_key;

-- delete_inbox --
-- Events delivered to their wait
DELETE FROM tideflow_correlation_inbox WHERE instance_id = $1 AND wait_key = $2;

-- delete_inboxes --
-- Events delivered to their waits ($1 instances, $2 wait keys)
DELETE FROM tideflow_correlation_inbox b
USING unnest($1::text[], $2::text[]) AS w(instance_id, wait_key)
WHERE b.instance_id = w.instance_id AND b.wait_key = w.wait_key;

-- open_waits --
-- Open waits that events already wait for: an inbox, or a kept event under one of their keys
SELECT b.instance_id, b.wait_key
FROM tideflow_correlation_inbox b
JOIN tideflow_event_waits w ON w.instance_id = b.instance_id AND w.wait_key = b.wait_key
UNION
SELECT k.instance_id, k.wait_key
FROM tideflow_correlation_pending p
JOIN tideflow_correlation_keys k ON k.event_type = p.event_type AND k.corr = p.corr;

-- drop_wait --
-- Drop one open wait (answered by a host that keeps its own results: the Temporal engine)
DELETE FROM tideflow_event_waits WHERE instance_id = $1 AND wait_key = $2;

-- drop_single_waits --
-- Drop the open waits ($1 instance ids, $2 wait keys) that end with one event, in one
-- statement (answered by a host that keeps its own results); a wait for all of its events
-- is left alone. The waits dropped. The transaction's commit does not wait for the WAL flush
-- (synchronous_commit off for it only, through set_config): the events were signalled before
-- it, and a drop PostgreSQL's crash loses is a wait open again, as after this process's crash
-- before the commit -- the batch comes again and the instance drops the repeated signal; a
-- later commit (the offsets, the instance's records) flushes it, the WAL is flushed in order.
DELETE FROM tideflow_event_waits w
USING unnest($1::text[], $2::text[]) AS a(instance_id, wait_key)
WHERE w.instance_id = a.instance_id AND w.wait_key = a.wait_key AND NOT w.all_events
  AND set_config('synchronous_commit', 'off', true) IS NOT NULL
RETURNING w.instance_id, w.wait_key;
