-- Batched event delivery (gateway.deliver_claim, used by tideflow/runtime/waits.py):
-- many waits answered in one statement, and the parked instances they wake claimed by the
-- delivering process at once.

-- deliver_claim --
-- Answer waits for one of their events ($1 instances, each once; $2 wait keys; $3 results):
-- drop each wait, journal its result, and claim its instance for $4 (lease $5 s) when $6 allows
-- it and the instance is parked and nobody holds it; an instance not claimed is marked woken
-- (a worker claims it). Waits on all events are left alone (not returned).
WITH u AS MATERIALIZED (
    SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $6::boolean[])
        AS u(instance_id, wait_key, entry, claimable)
), locked AS MATERIALIZED (
    -- The instances locked before anything else, in id order, as the journal's group commit
    -- locks its own (commit_batch): two statements locking overlapping instances in different
    -- orders deadlock (a second of deadlock_timeout and a retry each)
    SELECT i.id FROM tideflow_instances i WHERE i.id = ANY($1::text[]) ORDER BY i.id FOR UPDATE
), wait AS (
    DELETE FROM tideflow_event_waits w
    USING u
    WHERE w.instance_id = u.instance_id AND w.wait_key = u.wait_key AND NOT w.all_events
      AND w.instance_id = ANY($1::text[])
      AND (SELECT count(*) FROM locked) >= 0  -- an InitPlan: every lock taken before the delete
    RETURNING w.instance_id, w.wait_key, w.run_no, u.entry, u.claimable
), cand AS (
    -- Locked again (held already): a claim racing with ours is seen as it committed
    SELECT t.*, t.claimable AND i.status = 'waiting' AND i.requested IS NULL
                AND (i.lease_until IS NULL OR i.lease_until < now()) AS yes
    FROM wait t JOIN tideflow_instances i ON i.id = t.instance_id AND i.run_no = t.run_no
    WHERE i.id = ANY($1::text[])
    FOR UPDATE OF i
), woke AS (
    UPDATE tideflow_instances i
    SET woken = NOT c.yes,
        -- claimed: due now, so a claim left without a runner is taken again when its lease ends
        wake_at = CASE WHEN c.yes OR i.status = 'waiting' THEN now() ELSE i.wake_at END,
        lease_owner = CASE WHEN c.yes THEN $4::text ELSE i.lease_owner END,
        lease_until = CASE WHEN c.yes THEN now() + make_interval(secs => $5) ELSE i.lease_until END,
        status = CASE WHEN c.yes THEN 'running' ELSE i.status END,
        updated_at = now()
    FROM cand c
    WHERE i.id = c.instance_id AND i.id = ANY($1::text[])
    RETURNING i.*, c.wait_key AS answered_key, c.entry AS answered_entry, c.yes AS claimed
), journal AS (
    INSERT INTO tideflow_journal (instance_id, run_no, op, step_key, entry)
    SELECT id, run_no, 'wait', answered_key, answered_entry FROM woke
), timers AS (
    UPDATE tideflow_timers SET state = 'cancelled', touched_at = now()
    WHERE idempotency_key IN (SELECT id || '/' || run_no || '/' || answered_key FROM woke)
      AND state = 'pending'
), notified AS (
    -- the instances left to the workers (claimed ones run in the delivering process)
    SELECT pg_notify('tideflow_runtime', 'wake') FROM woke WHERE NOT claimed HAVING count(*) > 0
)
-- A claimed instance's journal, as ``get_journals`` reads it, with the result just added
-- (the statement's snapshot does not see its own insert), and its timeline's steps as
-- ``count_timelines`` counts them (in the statement: no round trip after it on the event path).
-- With $7 the rest of the transaction runs its statements on generic plans: the staged
-- delivery's next statement is the resumed runs' write (commit_batch), planned anew at every
-- call otherwise (its unnest() arrays make any custom plan look cheaper) for about as long as
-- it runs; a generic plan is made once per connection. Without $7 the setting stays as it is
SELECT w.*, (SELECT count(*) FROM notified) AS notified,
       (SELECT set_config('plan_cache_mode', CASE WHEN $7::boolean THEN 'force_generic_plan'
                          ELSE current_setting('plan_cache_mode') END, true)) AS plan_cache_mode,
       CASE WHEN w.claimed THEN (
           SELECT coalesce(jsonb_agg(jsonb_build_object('op', j.op, 'key', j.step_key) || j.entry
                                     ORDER BY j.seq), '[]'::jsonb)
           FROM tideflow_journal j WHERE j.instance_id = w.id AND j.run_no = w.run_no
       ) || jsonb_build_array(jsonb_build_object('op', 'wait', 'key', w.answered_key)
                              || w.answered_entry) END AS journal,
       CASE WHEN w.claimed THEN (
           SELECT count(*) FROM tideflow_timeline t
           LEFT JOIN LATERAL jsonb_array_elements(
               CASE WHEN t.kind = 'entries' THEN t.detail END) e ON true
           CROSS JOIN LATERAL (SELECT coalesce(e->>0, t.kind) AS kind) k
           WHERE t.instance_id = w.id AND t.run_no = w.run_no
             AND k.kind NOT LIKE 'timer.%' AND k.kind NOT LIKE 'instance.%'
       ) END AS steps
FROM woke w;
