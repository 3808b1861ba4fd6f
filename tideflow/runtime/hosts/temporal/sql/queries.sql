-- mirror_progress --
-- A Temporal instance moved on: its status, state and run (never over an ended one)
UPDATE tideflow_instances
SET status = $2, current_state = $3, run_no = $4, workflow_id = $5, version = $6,
    updated_at = now()
WHERE id = $1 AND status NOT IN ('completed', 'failed', 'cancelled')
RETURNING id;

-- mirror_finish --
-- A Temporal instance ended: completed, failed or cancelled
UPDATE tideflow_instances
SET status = $2, output = $3::jsonb, error = $4::jsonb, data = coalesce($5::jsonb, data),
    current_state = NULL, ended_at = now(), updated_at = now(), wake_at = NULL,
    lease_owner = NULL, lease_until = NULL, requested = NULL
WHERE id = $1 AND status NOT IN ('completed', 'failed', 'cancelled')
RETURNING *;
