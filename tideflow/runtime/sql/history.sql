-- History retention (tideflow/runtime/history.py, migration 0016_retention), used by
-- PostgresHistory (tideflow/runtime/gateway.py).

-- history_workflows --
-- Every workflow id that may have instances (deleted workflows too)
SELECT id FROM tideflow_workflows ORDER BY id;

-- purge_history --
-- Delete at most $3 ended instances of the workflows $1 that ended before their cutoff
-- $2 (oldest first per workflow; rows locked elsewhere are skipped), with their journals,
-- timelines, waits and correlation rows; the deleted instances' ids
WITH victims AS MATERIALIZED (
    SELECT i.id
    FROM unnest($1::text[], $2::timestamptz[]) AS r(workflow_id, cutoff)
    CROSS JOIN LATERAL (
        SELECT id FROM tideflow_instances
        WHERE workflow_id = r.workflow_id AND ended_at < r.cutoff
          AND status IN ('completed', 'failed', 'cancelled')
        ORDER BY ended_at
        LIMIT $3
        FOR UPDATE SKIP LOCKED
    ) i
    LIMIT $3
), journal AS (
    DELETE FROM tideflow_journal WHERE instance_id IN (SELECT id FROM victims)
), timeline AS (
    DELETE FROM tideflow_timeline WHERE instance_id IN (SELECT id FROM victims)
), waits AS (
    DELETE FROM tideflow_event_waits WHERE instance_id IN (SELECT id FROM victims)
), keys AS (
    DELETE FROM tideflow_correlation_keys WHERE instance_id IN (SELECT id FROM victims)
), inbox AS (
    DELETE FROM tideflow_correlation_inbox WHERE instance_id IN (SELECT id FROM victims)
), partial AS (
    DELETE FROM tideflow_correlation_partial WHERE instance_id IN (SELECT id FROM victims)
), origins AS (
    DELETE FROM tideflow_correlation_origins WHERE instance_id IN (SELECT id FROM victims)
), starts AS (
    -- a taken start set whose instance is missing would be started again
    DELETE FROM tideflow_correlation_starts WHERE instance_id IN (SELECT id FROM victims)
)
DELETE FROM tideflow_instances WHERE id IN (SELECT id FROM victims)
RETURNING id;
