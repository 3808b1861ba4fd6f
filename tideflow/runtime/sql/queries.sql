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
    (workflow_id, version, seq, source_text, content_type, definition)
VALUES ($1, $2, $3, $4, $5, $6::jsonb)
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

-- list_versions --
-- Every version of a workflow in deploy order
SELECT * FROM tideflow_workflow_versions WHERE workflow_id = $1 ORDER BY seq;

-- delete_workflow --
-- Mark a workflow deleted (its versions stay for running instances)
UPDATE tideflow_workflows SET deleted_at = now(), updated_at = now()
WHERE id = $1 AND deleted_at IS NULL
RETURNING id;

-- insert_instances --
-- Create instances (batched): runnable at once, or already leased by their creator
INSERT INTO tideflow_instances
    (id, workflow_id, version, input, parent_id, parent_key, wake_at, lease_owner, lease_until)
SELECT u.id, u.workflow_id, u.version, u.input, u.parent_id, u.parent_key, now(),
       $7::text, CASE WHEN $7::text IS NULL THEN NULL ELSE now() + make_interval(secs => $8) END
FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::text[])
    AS u(id, workflow_id, version, input, parent_id, parent_key)
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

-- get_timeline --
-- The timeline of an instance, in order
SELECT * FROM tideflow_timeline WHERE instance_id = $1 ORDER BY seq;

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
