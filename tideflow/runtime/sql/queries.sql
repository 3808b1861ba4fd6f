-- lock_workflow --
-- Create or lock a workflow's registry row (serializes deploys of one id)
INSERT INTO tideflow_workflows (id, latest_version) VALUES ($1, '')
ON CONFLICT (id) DO UPDATE SET updated_at = now()
RETURNING *;

-- get_version_row --
-- One stored version of a workflow
SELECT * FROM tideflow_workflow_versions WHERE workflow_id = $1 AND version = $2;

-- next_version_seq --
-- The deploy number the next version of a workflow gets
SELECT coalesce(max(seq), 0) + 1 AS seq FROM tideflow_workflow_versions WHERE workflow_id = $1;

-- insert_version --
-- Store a new version of a workflow
INSERT INTO tideflow_workflow_versions
    (workflow_id, version, seq, source_text, content_type, definition, resolved)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb)
RETURNING *;

-- set_latest --
-- Make a version the one new instances get (and undelete the workflow)
UPDATE tideflow_workflows SET latest_version = $2, deleted_at = NULL, updated_at = now()
WHERE id = $1;

-- get_latest --
-- The latest version of a workflow that is not deleted
SELECT v.* FROM tideflow_workflows w
JOIN tideflow_workflow_versions v ON v.workflow_id = w.id AND v.version = w.latest_version
WHERE w.id = $1 AND w.deleted_at IS NULL;

-- list_workflows --
-- Every workflow that is not deleted, with its latest version, by id
SELECT v.*, (SELECT count(*) FROM tideflow_workflow_versions c WHERE c.workflow_id = w.id)
    AS version_count
FROM tideflow_workflows w
JOIN tideflow_workflow_versions v ON v.workflow_id = w.id AND v.version = w.latest_version
WHERE w.deleted_at IS NULL
ORDER BY w.id;

-- registry_fingerprint --
-- One value that changes with every deploy and delete (a process compares it before each batch of events)
SELECT md5(coalesce(string_agg(
    id || '/' || latest_version || '/' || coalesce(deleted_at::text, ''), ',' ORDER BY id
), '')) FROM tideflow_workflows;

-- registry_heads --
-- Every workflow's latest version (NULL: deleted)
SELECT id, CASE WHEN deleted_at IS NULL THEN latest_version END AS version FROM tideflow_workflows;

-- list_versions --
-- Every version of a workflow in deploy order
SELECT * FROM tideflow_workflow_versions WHERE workflow_id = $1 ORDER BY seq;

-- delete_workflow --
-- Mark a workflow deleted (its versions stay for running instances)
UPDATE tideflow_workflows SET deleted_at = now(), updated_at = now()
WHERE id = $1 AND deleted_at IS NULL
RETURNING id;

-- insert_instances --
-- Create instances (batched; a NULL version means the latest non-deleted one), runnable at once or leased by $7
INSERT INTO tideflow_instances
    (id, workflow_id, version, input, parent_id, parent_key, wake_at, lease_owner, lease_until,
     headers)
SELECT u.id, u.workflow_id, coalesce(u.version, w.latest_version), u.input, u.parent_id,
       u.parent_key, now(), $7::text,
       CASE WHEN $7::text IS NULL THEN NULL ELSE now() + make_interval(secs => $8) END,
       u.headers
FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::text[],
            $9::jsonb[])
    AS u(id, workflow_id, version, input, parent_id, parent_key, headers)
JOIN tideflow_workflows w ON w.id = u.workflow_id AND w.deleted_at IS NULL
WHERE u.version IS NULL OR EXISTS (
    SELECT 1 FROM tideflow_workflow_versions v
    WHERE v.workflow_id = u.workflow_id AND v.version = u.version)
ON CONFLICT (id) DO NOTHING
RETURNING *;

-- get_instance --
-- One instance by id
SELECT * FROM tideflow_instances WHERE id = $1;

-- list_instances --
-- Instances by workflow and status (NULL: any), after a cursor, in creation order
SELECT * FROM tideflow_instances
WHERE ($1::text IS NULL OR workflow_id = $1)
  AND ($2::text IS NULL OR status = $2)
  AND seq > $3
ORDER BY seq
LIMIT $4;

-- list_instances_newest --
-- Instances by workflow and status (NULL: any), before a cursor (NULL: from the newest), newest first
SELECT * FROM tideflow_instances
WHERE ($1::text IS NULL OR workflow_id = $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::bigint IS NULL OR seq < $3)
ORDER BY seq DESC
LIMIT $4;

-- list_instances_correlated --
-- Instances with an open event wait on the correlation value $5 ({"key": "value"}), by workflow and status (NULL: any), after a cursor, in creation order
SELECT * FROM tideflow_instances
WHERE id IN (SELECT k.instance_id FROM tideflow_correlation_keys k WHERE k.corr @> $5::jsonb)
  AND ($1::text IS NULL OR workflow_id = $1)
  AND ($2::text IS NULL OR status = $2)
  AND seq > $3
ORDER BY seq
LIMIT $4;

-- list_instances_correlated_newest --
-- Instances with an open event wait on the correlation value $5 ({"key": "value"}), by workflow and status (NULL: any), before a cursor (NULL: from the newest), newest first
SELECT * FROM tideflow_instances
WHERE id IN (SELECT k.instance_id FROM tideflow_correlation_keys k WHERE k.corr @> $5::jsonb)
  AND ($1::text IS NULL OR workflow_id = $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::bigint IS NULL OR seq < $3)
ORDER BY seq DESC
LIMIT $4;

-- get_timeline --
-- The timeline of an instance, in order
SELECT * FROM tideflow_timeline WHERE instance_id = $1 ORDER BY seq;

-- get_timeline_page --
-- Up to $3 timeline rows of an instance from seq $2 on, in order (a folded row holds several entries)
SELECT * FROM tideflow_timeline WHERE instance_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3;

-- get_journal --
-- The journal of one run of an instance, in commit order
SELECT op, step_key, entry FROM tideflow_journal
WHERE instance_id = $1 AND run_no = $2
ORDER BY seq;

-- cancel_idle --
-- Cancel an instance nobody runs right now (waiting, suspended, or runnable without a lease)
UPDATE tideflow_instances
SET status = 'cancelled', requested = NULL, wake_at = NULL, ended_at = now(), updated_at = now(),
    current_state = NULL
WHERE id = $1 AND status IN ('running', 'waiting', 'suspended')
  AND (lease_until IS NULL OR lease_until < now())
RETURNING *;

-- suspend_idle --
-- Suspend an instance nobody runs right now
UPDATE tideflow_instances
SET status = 'suspended', requested = NULL, wake_at = NULL, updated_at = now()
WHERE id = $1 AND status IN ('running', 'waiting')
  AND (lease_until IS NULL OR lease_until < now())
RETURNING *;

-- request_stop --
-- Ask the process running an instance to cancel or suspend it at its next step
UPDATE tideflow_instances SET requested = $2, updated_at = now()
WHERE id = $1 AND status IN ('running', 'waiting')
RETURNING *;

-- resume_instance --
-- Make a suspended instance runnable again (it replays and continues)
UPDATE tideflow_instances
SET status = 'running', wake_at = now(), requested = NULL, updated_at = now()
WHERE id = $1 AND status = 'suspended'
RETURNING *;

-- retry_instance --
-- Make a failed instance runnable again from its failed step: forget the failed attempts of
-- that state in its current run's journal (their errors would replay), keep every other entry
WITH failed AS (
    SELECT id, run_no FROM tideflow_instances WHERE id = $1 AND status = 'failed' FOR UPDATE
), forgotten AS (
    DELETE FROM tideflow_journal j USING failed f
    WHERE j.instance_id = f.id AND j.run_no = f.run_no AND j.entry ? 'error'
      AND (j.step_key = $2 OR left(j.step_key, length($2) + 1) = $2 || '/')
)
UPDATE tideflow_instances i
SET status = 'running', wake_at = now(), requested = NULL, updated_at = now(), ended_at = NULL,
    error = NULL, output = NULL, crashes = 0, crashed_at = NULL, lease_owner = NULL,
    lease_until = NULL
FROM failed f WHERE i.id = f.id
RETURNING i.*;

-- delete_waits --
-- Forget an instance's event waits
DELETE FROM tideflow_event_waits WHERE instance_id = $1;

-- find_waits --
-- Event waits that may match an event of this type (the correlation index's candidates)
SELECT * FROM tideflow_event_waits WHERE event_types @> ARRAY[$1::text] ORDER BY created_at
LIMIT $2;

-- list_waits --
-- The event waits of an instance
SELECT * FROM tideflow_event_waits WHERE instance_id = $1 ORDER BY created_at;

-- notify --
-- Wake the runtimes listening on a channel
SELECT pg_notify($1, $2);

-- touch_instances --
-- Group commit, first statement: renew the leases this process holds, save progress, read requests
UPDATE tideflow_instances i
SET lease_until = now() + make_interval(secs => $2),
    current_state = CASE WHEN u.touched THEN u.state ELSE i.current_state END,
    data = coalesce(u.data, i.data),
    updated_at = now()
FROM (SELECT *, $1::text AS owner
      FROM unnest($3::text[], $4::text[], $5::jsonb[], $6::boolean[]) AS x(id, state, data, touched)
     ) AS u
-- The fence as a join condition (see commit_batch: the batch is hashed, not re-unnested per row)
WHERE i.id = u.id AND i.lease_owner = u.owner
RETURNING i.id, i.requested;

-- insert_journal --
-- Group commit: effect results of many instances in one statement
INSERT INTO tideflow_journal (instance_id, run_no, op, step_key, entry)
SELECT e.instance_id, e.run_no, e.op, e.step_key, e.entry
FROM unnest($1::text[], $2::integer[], $3::text[], $4::text[], $5::jsonb[])
    WITH ORDINALITY AS e(instance_id, run_no, op, step_key, entry, ord)
ORDER BY e.ord;

-- insert_timeline --
-- Group commit: timeline rows of many instances in one statement
INSERT INTO tideflow_timeline (instance_id, run_no, kind, step_key, state, detail, at)
SELECT t.instance_id, t.run_no, t.kind, t.step_key, t.state, t.detail, t.at
FROM unnest(
    $1::text[], $2::integer[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::timestamptz[]
) WITH ORDINALITY AS t(instance_id, run_no, kind, step_key, state, detail, at, ord)
ORDER BY t.ord;

-- finish_instances --
-- End instances held by this process (batched): completed, failed or cancelled
UPDATE tideflow_instances i
SET status = u.status, output = u.output, error = u.error, data = coalesce(u.data, i.data),
    current_state = NULL, ended_at = now(), updated_at = now(), wake_at = NULL,
    lease_owner = NULL, lease_until = NULL, requested = NULL, woken = false
FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::jsonb[], $5::jsonb[])
    AS u(id, status, output, error, data)
WHERE i.id = u.id AND i.lease_owner = $6
RETURNING i.*;

-- delete_waits_of --
-- Forget the event waits of ended instances
DELETE FROM tideflow_event_waits WHERE instance_id = ANY($1::text[]);

-- answer_parent --
-- A sync sub-flow ended: journal its outcome for the parent's step and wake the parent
-- (the step's timeout timer, if it has one, is not needed any more)
WITH parent AS (
    UPDATE tideflow_instances
    SET woken = true, wake_at = CASE WHEN status = 'waiting' THEN now() ELSE wake_at END,
        updated_at = now()
    WHERE id = $1 AND status IN ('running', 'waiting', 'suspended')
    RETURNING id, run_no
), unneeded AS (
    UPDATE tideflow_timers SET state = 'cancelled', touched_at = now()
    WHERE idempotency_key = (SELECT id || '/' || run_no || '/' || $2 FROM parent)
      AND state = 'pending'
)
INSERT INTO tideflow_journal (instance_id, run_no, op, step_key, entry)
SELECT id, run_no, 'subflow', $2, $3::jsonb FROM parent;

-- park_instances --
-- Instances wait (batched): release each until its wake_at (NULL: until events), at once if woken
UPDATE tideflow_instances i
SET status = 'waiting', wake_at = CASE WHEN i.woken THEN now() ELSE u.wake_at END,
    woken = false, lease_owner = NULL, lease_until = NULL, updated_at = now()
FROM unnest($1::text[], $2::timestamptz[]) AS u(id, wake_at)
WHERE i.id = u.id AND i.lease_owner = $3;

-- insert_wait --
-- Record an event wait (a repeated wait of the same step changes nothing)
INSERT INTO tideflow_event_waits (instance_id, wait_key, run_no, all_events, events, event_types, due_at)
VALUES ($1, $2, $3, $4, $5::jsonb, $6::text[], $7)
ON CONFLICT (instance_id, wait_key) DO NOTHING;

-- stop_instance --
-- Apply a requested cancel or suspend at a step boundary (or release on shutdown: $2 = NULL)
UPDATE tideflow_instances
SET status = coalesce($2, status),
    ended_at = CASE WHEN $2 = 'cancelled' THEN now() ELSE ended_at END,
    current_state = CASE WHEN $2 = 'cancelled' THEN NULL ELSE current_state END,
    wake_at = CASE WHEN $2 IS NULL THEN now() ELSE NULL END,
    lease_owner = NULL, lease_until = NULL, requested = NULL, updated_at = now()
WHERE id = $1 AND lease_owner = $3
RETURNING id;

-- continue_instance --
-- continueAs: the next run of the instance, with a fresh journal (the lease stays)
UPDATE tideflow_instances
SET run_no = run_no + 1, workflow_id = $2, version = $3, input = $4::jsonb, data = $4::jsonb,
    current_state = NULL, updated_at = now()
WHERE id = $1 AND lease_owner = $5
RETURNING run_no;

-- drop_journal --
-- Forget the journals of an instance's earlier runs
DELETE FROM tideflow_journal WHERE instance_id = $1 AND run_no < $2;

-- claim_instances --
-- Take runnable instances nobody holds (or whose lease ran out), earliest first. One still
-- naming a lease owner was left by a runner that never released it (a crash): counted in
-- crashes, from 1 again once its journal has moved on since the last one
WITH c AS (
    SELECT id, run_no, status = 'running' AND lease_owner IS NOT NULL AS crashed
    FROM tideflow_instances
    WHERE wake_at <= now() AND status IN ('running', 'waiting')
      AND (lease_until IS NULL OR lease_until < now())
    ORDER BY wake_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
), j AS (
    SELECT c.id, (SELECT max(seq) FROM tideflow_journal
                  WHERE instance_id = c.id AND run_no = c.run_no) AS at
    FROM c WHERE c.crashed
)
UPDATE tideflow_instances i
SET lease_owner = $1, lease_until = now() + make_interval(secs => $2),
    status = CASE WHEN i.status = 'waiting' THEN 'running' ELSE i.status END,
    woken = false, updated_at = now(),
    crashes = CASE WHEN j.id IS NULL THEN i.crashes
                   WHEN i.crashed_at IS NOT DISTINCT FROM j.at THEN i.crashes + 1
                   ELSE 1 END,
    crashed_at = CASE WHEN j.id IS NULL THEN i.crashed_at ELSE j.at END
FROM c LEFT JOIN j ON j.id = c.id
WHERE i.id = c.id
RETURNING i.*;

-- renew_leases --
-- Keep the leases of instances this process still runs; the ones returned are still held.
-- It never waits for a row lock: waiting could deadlock with this process's own group commit,
-- which locks the same rows in another order (and a failed commit replays its runners). A row
-- locked now is being written by that commit, which renews its lease itself, or claimed by
-- another process after the lease ran out, which the next renewal sees
WITH renewed AS (
    UPDATE tideflow_instances i SET lease_until = now() + make_interval(secs => $3)
    FROM (SELECT id FROM tideflow_instances
          WHERE id = ANY($2::text[]) AND lease_owner = $1
          FOR UPDATE SKIP LOCKED) AS free
    WHERE i.id = free.id
)
SELECT id FROM tideflow_instances WHERE id = ANY($2::text[]) AND lease_owner = $1;

-- release_instances --
-- Hand back instances whose runner stopped on a database error (runnable at once)
UPDATE tideflow_instances SET lease_owner = NULL, lease_until = NULL, wake_at = now()
WHERE id = ANY($2::text[]) AND lease_owner = $1 AND status = 'running';

-- reclaim_leases --
-- A restart under the same node id: the leases of its previous life end now (claimed at once)
UPDATE tideflow_instances SET lease_until = now() - interval '1 second'
WHERE lease_owner = $1 AND status = 'running'
RETURNING id;

-- release_all --
-- Shutdown: hand every instance this process holds back (runnable at once)
UPDATE tideflow_instances SET lease_owner = NULL, lease_until = NULL, wake_at = now()
WHERE lease_owner = $1 AND status = 'running';

-- deliver_events --
-- Events for an open wait: journal them as the wait's result, drop the wait, wake the instance
WITH wait AS (
    DELETE FROM tideflow_event_waits WHERE instance_id = $1 AND wait_key = $2
    RETURNING instance_id, run_no
), woke AS (
    UPDATE tideflow_instances i
    SET woken = true, wake_at = CASE WHEN i.status = 'waiting' THEN now() ELSE i.wake_at END,
        updated_at = now()
    FROM wait WHERE i.id = wait.instance_id AND i.run_no = wait.run_no
    RETURNING i.id, i.run_no
)
INSERT INTO tideflow_journal (instance_id, run_no, op, step_key, entry)
SELECT id, run_no, 'wait', $2, $3::jsonb FROM woke
RETURNING instance_id;

-- next_wake --
-- The earliest wake time of an instance nobody holds (for the worker's timer)
SELECT min(wake_at) AS wake_at FROM tideflow_instances
WHERE wake_at IS NOT NULL AND lease_owner IS NULL AND status IN ('running', 'waiting');

-- count_timeline --
-- Interpreter steps already in an instance run's timeline (a replay does not repeat them);
-- a row of kind 'entries' holds several, each [kind, key, state, at, detail]
SELECT count(*) FROM tideflow_timeline t
LEFT JOIN LATERAL jsonb_array_elements(CASE WHEN t.kind = 'entries' THEN t.detail END) e ON true
CROSS JOIN LATERAL (SELECT coalesce(e->>0, t.kind) AS kind) k
WHERE t.instance_id = $1 AND t.run_no = $2
  AND k.kind NOT LIKE 'timer.%' AND k.kind NOT LIKE 'instance.%';

-- get_journals --
-- The journals of the current runs of many instances (claimed together), in commit order
SELECT j.instance_id, j.op, j.step_key, j.entry
FROM tideflow_journal j
JOIN unnest($1::text[], $2::integer[]) AS u(id, run_no)
    ON j.instance_id = u.id AND j.run_no = u.run_no
ORDER BY j.instance_id, j.seq;

-- count_timelines --
-- Interpreter steps already in the timelines of many instances' current runs
SELECT t.instance_id, count(*) AS steps
FROM tideflow_timeline t
JOIN unnest($1::text[], $2::integer[]) AS u(id, run_no)
    ON t.instance_id = u.id AND t.run_no = u.run_no
LEFT JOIN LATERAL jsonb_array_elements(CASE WHEN t.kind = 'entries' THEN t.detail END) e ON true
CROSS JOIN LATERAL (SELECT coalesce(e->>0, t.kind) AS kind) k
WHERE k.kind NOT LIKE 'timer.%' AND k.kind NOT LIKE 'instance.%'
GROUP BY t.instance_id;

-- commit_batch --
-- Group commit in one statement: create, renew/progress/park/finish, journal, timeline, waits
WITH created AS (
    INSERT INTO tideflow_instances
        (id, workflow_id, version, input, parent_id, parent_key, wake_at, lease_owner, lease_until,
         headers)
    SELECT c.id, c.workflow_id, coalesce(c.version, w.latest_version), c.input, c.parent_id,
           c.parent_key, now(), $1::text, now() + make_interval(secs => $2), c.headers
    FROM unnest($3::text[], $4::text[], $5::text[], $6::jsonb[], $7::text[], $8::text[],
                $37::jsonb[])
        AS c(id, workflow_id, version, input, parent_id, parent_key, headers)
    -- Only workflows not deleted, and only versions that exist
    JOIN tideflow_workflows w ON w.id = c.workflow_id AND w.deleted_at IS NULL
    WHERE c.version IS NULL OR EXISTS (
        SELECT 1 FROM tideflow_workflow_versions v
        WHERE v.workflow_id = c.workflow_id AND v.version = c.version)
    ON CONFLICT (id) DO NOTHING
    RETURNING *
), changes AS MATERIALIZED (
    -- Unnested once: joined in a nested loop, a bare unnest was re-run for every instance
    -- row (a batch of 50 cost 2,500 unnested rows; most of the statement's time)
    SELECT *, $1::text AS owner
    FROM unnest($9::text[], $10::text[], $11::jsonb[], $12::boolean[], $13::integer[],
                $14::text[], $15::jsonb[], $16::jsonb[], $17::timestamptz[])
        AS u(id, state, data, touched, action, status, output, error, wake_at)
), locked AS MATERIALIZED (
    -- The held instances locked first, in id order, as deliver_claim locks the instances it
    -- answers (sql/deliver.sql): overlapping sets locked in different orders deadlock
    SELECT i.id FROM tideflow_instances i WHERE i.id = ANY($9::text[])
    ORDER BY i.id FOR NO KEY UPDATE
), touched AS (
    -- action: 0 renew and save progress, 1 park until wake_at, 2 finish with status
    UPDATE tideflow_instances i
    SET lease_owner = CASE WHEN u.action = 0 THEN i.lease_owner END,
        lease_until = CASE WHEN u.action = 0 THEN now() + make_interval(secs => $2) END,
        current_state = CASE WHEN u.action = 2 THEN NULL
                             WHEN u.touched THEN u.state ELSE i.current_state END,
        data = coalesce(u.data, i.data),
        status = CASE u.action WHEN 1 THEN 'waiting' WHEN 2 THEN u.status ELSE i.status END,
        output = CASE WHEN u.action = 2 THEN u.output ELSE i.output END,
        error = CASE WHEN u.action = 2 THEN u.error ELSE i.error END,
        ended_at = CASE WHEN u.action = 2 THEN now() ELSE i.ended_at END,
        wake_at = CASE u.action WHEN 0 THEN i.wake_at WHEN 2 THEN NULL
                  ELSE CASE WHEN i.woken THEN now() ELSE u.wake_at END END,
        woken = CASE WHEN u.action = 0 THEN i.woken ELSE false END,
        requested = CASE WHEN u.action = 2 THEN NULL ELSE i.requested END,
        updated_at = now()
    FROM changes u
    -- The fence compares with u.owner, a join condition: a filter on i alone made the
    -- planner expect one row of i and loop over the batch for each instance row
    WHERE i.id = u.id AND i.lease_owner = u.owner
      AND (SELECT count(*) FROM locked) >= 0  -- an InitPlan: every lock taken before the update
    RETURNING u.action, i.*
), held AS (
    SELECT id FROM touched UNION ALL SELECT id FROM created
), journal AS (
    -- WITH ORDINALITY + ORDER BY: identity values follow the writers' order
    INSERT INTO tideflow_journal (instance_id, run_no, op, step_key, entry)
    SELECT e.instance_id, e.run_no, e.op, e.step_key, e.entry
    FROM unnest($18::text[], $19::integer[], $20::text[], $21::text[], $22::jsonb[])
        WITH ORDINALITY AS e(instance_id, run_no, op, step_key, entry, ord)
    WHERE e.instance_id IN (SELECT id FROM held)
    ORDER BY e.ord
), timeline AS (
    INSERT INTO tideflow_timeline (instance_id, run_no, kind, step_key, state, detail, at)
    SELECT t.instance_id, t.run_no, t.kind, t.step_key, t.state, t.detail, t.at
    FROM unnest($23::text[], $24::integer[], $25::text[], $26::text[], $27::text[],
                $28::jsonb[], $29::timestamptz[])
        WITH ORDINALITY AS t(instance_id, run_no, kind, step_key, state, detail, at, ord)
    WHERE t.instance_id IN (SELECT id FROM held)
    ORDER BY t.ord
), waits AS (
    INSERT INTO tideflow_event_waits
        (instance_id, wait_key, run_no, all_events, events, event_types, due_at)
    SELECT w.instance_id, w.wait_key, w.run_no, w.all_events, w.events,
           ARRAY(SELECT jsonb_array_elements_text(w.types)), w.due_at
    FROM unnest($30::text[], $31::text[], $32::integer[], $33::boolean[], $34::jsonb[],
                $35::jsonb[], $36::timestamptz[])
        AS w(instance_id, wait_key, run_no, all_events, events, types, due_at)
    WHERE w.instance_id IN (SELECT id FROM held)
    ON CONFLICT (instance_id, wait_key) DO NOTHING
), dropped AS (
    DELETE FROM tideflow_event_waits
    WHERE instance_id IN (SELECT id FROM touched WHERE action = 2)
), done AS (
    SELECT pg_notify('tideflow_runtime', 'done:' || string_agg(id, ','))
    FROM touched WHERE action = 2 HAVING count(*) > 0
)
SELECT r.*, (SELECT count(*) FROM done) AS notified
FROM (SELECT -1 AS action, * FROM created UNION ALL SELECT * FROM touched) r;

-- lock_wait --
-- An open event wait, locked while events are added to it
SELECT * FROM tideflow_event_waits WHERE instance_id = $1 AND wait_key = $2 FOR UPDATE;

-- add_received --
-- Keep the events delivered so far to a wait on all events
UPDATE tideflow_event_waits SET received = $3::jsonb WHERE instance_id = $1 AND wait_key = $2;

-- journal_entry --
-- The first journal entry of one step of a run (what a replay answers with)
SELECT entry FROM tideflow_journal
WHERE instance_id = $1 AND run_no = $2 AND op = $3 AND step_key = $4
ORDER BY seq LIMIT 1;

-- time_out_wait --
-- An event wait ran out: drop the wait and journal its timeout
WITH gone AS (
    DELETE FROM tideflow_event_waits WHERE instance_id = $1 AND wait_key = $2
)
INSERT INTO tideflow_journal (instance_id, run_no, op, step_key, entry)
VALUES ($1, $3, 'wait', $2, '{"result": null}'::jsonb);

-- drop_waits_under --
-- A deadline expired: forget the event waits inside it (all of them when $2 is NULL)
DELETE FROM tideflow_event_waits
WHERE instance_id = $1 AND ($2::text IS NULL OR starts_with(wait_key, $2));

-- lock_instance --
-- Lock an instance's row (orders a timeout against a child answering its parent)
SELECT id FROM tideflow_instances WHERE id = $1 FOR UPDATE;

-- insert_entry --
-- One journal entry, written directly (a step settled under the instance's lock)
INSERT INTO tideflow_journal (instance_id, run_no, op, step_key, entry)
VALUES ($1, $2, $3, $4, $5::jsonb);

-- insert_wake_timers --
-- Parked instances' wake-ups as timer-service timers (in the parking transaction); a
-- repeated key re-arms its timer if it already fired or was cancelled (a re-park on the step)
INSERT INTO tideflow_timers (id, kind, due_at, payload, idempotency_key)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::jsonb[], $5::text[])
ON CONFLICT (idempotency_key) DO UPDATE
SET state = 'pending', due_at = EXCLUDED.due_at, fired_at = NULL, touched_at = now()
WHERE tideflow_timers.state <> 'pending';

-- wake_instances --
-- Wake-up timers fired: make their waiting instances runnable (a running one wakes when it
-- parks); a timer of an ended, suspended or later run changes nothing
UPDATE tideflow_instances i
SET woken = true, wake_at = CASE WHEN i.status = 'waiting' THEN now() ELSE i.wake_at END,
    updated_at = now()
FROM unnest($1::text[], $2::integer[]) AS u(id, run_no)
WHERE i.id = u.id AND i.run_no = u.run_no AND i.status IN ('running', 'waiting')
RETURNING i.id;

-- cancel_wake_timer --
-- A wait ended before its due time (events came first): its wake-up timer is not needed
UPDATE tideflow_timers SET state = 'cancelled', touched_at = now()
WHERE idempotency_key = $1 AND state = 'pending';

-- count_by_status --
-- Instances by status (the /metrics gauge)
SELECT status, count(*) AS n FROM tideflow_instances GROUP BY status;
