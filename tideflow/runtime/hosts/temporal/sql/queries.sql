-- mirror_progress --
-- A Temporal instance moved on: its status, state and run (never over an ended one)
UPDATE tideflow_instances
SET status = $2, current_state = $3, run_no = $4, workflow_id = $5, version = $6,
    updated_at = now()
WHERE id = $1 AND status NOT IN ('completed', 'failed', 'cancelled')
RETURNING id;

-- mirror_finish --
-- A Temporal instance ended (completed, failed or cancelled), in one statement -- all or none,
-- no BEGIN/COMMIT round trips: the end; its last timeline row ($7-$11: kind NULL for none),
-- written only when the instance ends here, so a retried record adds nothing; its event waits
-- dropped; `done` announced on $6 (the runtimes' channel) in the same commit
WITH ended AS (
    UPDATE tideflow_instances
    SET status = $2, output = $3::jsonb, error = $4::jsonb, data = coalesce($5::jsonb, data),
        current_state = NULL, ended_at = now(), updated_at = now(), wake_at = NULL,
        lease_owner = NULL, lease_until = NULL, requested = NULL
    WHERE id = $1 AND status NOT IN ('completed', 'failed', 'cancelled')
    RETURNING *
), steps AS (
    INSERT INTO tideflow_timeline (instance_id, run_no, kind, step_key, state, detail, at)
    SELECT ended.id, $12::integer, $7::text, $8::text, $9::text, $10::jsonb, $11::timestamptz
    FROM ended WHERE $7::text IS NOT NULL
), waits AS (
    DELETE FROM tideflow_event_waits WHERE instance_id = $1
)
SELECT ended.*, pg_notify($6, 'done:' || ended.id) AS announced FROM ended;
