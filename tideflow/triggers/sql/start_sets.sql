-- Non-exclusive start sets (tideflow/triggers/start_sets.py; migration 0008_correlation_starts),
-- used by PostgresStartSets (tideflow/triggers/gateway.py).

-- discard_gapped_set --
-- Discard the open set ($1, $2, $3) when one of its events is more than $5 seconds from $4
DELETE FROM tideflow_correlation_starts
WHERE workflow_id = $1 AND version = $2 AND corr = $3::jsonb AND instance_id IS NULL
  AND EXISTS (SELECT 1 FROM tideflow_correlation_starts o
              WHERE o.workflow_id = $1 AND o.version = $2 AND o.corr = $3::jsonb
                AND o.instance_id IS NULL
                AND abs(extract(epoch FROM o.event_time - $4::timestamptz)) > $5)
RETURNING event_offset;

-- add_start_part --
-- Keep one event of an open set (the first of each name wins; an offset is added once)
INSERT INTO tideflow_correlation_starts
    (workflow_id, version, corr, name, event, event_offset, event_time, expires_at)
VALUES ($1, $2, $3::jsonb, $4, $5::jsonb, $6, $7, $8)
ON CONFLICT DO NOTHING;

-- open_start_set --
-- The events of an open set, locked until it is taken
SELECT name, event, event_offset FROM tideflow_correlation_starts
WHERE workflow_id = $1 AND version = $2 AND corr = $3::jsonb AND instance_id IS NULL
FOR UPDATE;

-- take_start_set --
-- Take an open set for the instance $4
UPDATE tideflow_correlation_starts SET instance_id = $4
WHERE workflow_id = $1 AND version = $2 AND corr = $3::jsonb AND instance_id IS NULL;

-- taken_by --
-- The instance the set that holds event $3 was taken for (a redelivered event)
SELECT instance_id FROM tideflow_correlation_starts
WHERE workflow_id = $1 AND version = $2 AND event_offset = $3 AND instance_id IS NOT NULL
LIMIT 1;

-- taken_sets --
-- Every taken set (its instance may not exist: a crash between the take and the start)
SELECT DISTINCT instance_id, workflow_id, version
FROM tideflow_correlation_starts
WHERE instance_id IS NOT NULL;

-- taken_up_to --
-- The instances of taken sets the subscription $1 committed past
SELECT DISTINCT instance_id FROM tideflow_correlation_starts
WHERE instance_id IS NOT NULL
  AND event_offset <= coalesce((SELECT committed_offset FROM tideflow_subscriptions
                                WHERE id = $1), -1);

-- expire_start_sets --
-- Discard every open set one of whose events expired at $1 (eventTimeout or the retention)
-- or arrived more than $2 seconds ago by the database clock (rows from before 0008 too)
DELETE FROM tideflow_correlation_starts s
WHERE s.instance_id IS NULL
  AND EXISTS (SELECT 1 FROM tideflow_correlation_starts e
              WHERE e.workflow_id = s.workflow_id AND e.version = s.version
                AND e.corr = s.corr AND e.instance_id IS NULL
                AND (e.expires_at < $1 OR e.created_at < now() - make_interval(secs => $2)))
RETURNING s.event_offset;

-- trim_start_sets --
-- Discard the open sets of each workflow version that hold one of its open events past the
-- newest $1 (by offset): a start whose sets never complete costs only its own oldest sets
WITH ranked AS (
  SELECT workflow_id, version, corr,
         row_number() OVER (PARTITION BY workflow_id, version
                            ORDER BY event_offset DESC, name) AS n
  FROM tideflow_correlation_starts WHERE instance_id IS NULL
), beyond AS (
  SELECT DISTINCT workflow_id, version, corr FROM ranked WHERE n > $1
)
DELETE FROM tideflow_correlation_starts s
USING beyond b
WHERE s.instance_id IS NULL
  AND s.workflow_id = b.workflow_id AND s.version = b.version AND s.corr = b.corr
RETURNING s.event_offset;

-- forget_taken_sets --
-- Forget taken sets once their instance exists (one of $3) and the subscription $1 committed
-- past them (or, instance or not, once its events arrived more than $2 seconds ago)
DELETE FROM tideflow_correlation_starts s
WHERE s.instance_id IS NOT NULL
  AND ((s.event_offset <= coalesce((SELECT committed_offset FROM tideflow_subscriptions
                                    WHERE id = $1), -1)
        AND s.instance_id = ANY($3::text[]))
       OR s.created_at < now() - make_interval(secs => $2))
RETURNING s.event_offset;
