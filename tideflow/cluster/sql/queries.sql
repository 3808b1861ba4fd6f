-- join --
-- A process (re)joins: its row made or renewed; returns the database's time
INSERT INTO tideflow_cluster_nodes (node_id, address, started_at, heartbeat_at, expires_at)
VALUES ($1, $2, now(), now(), now() + make_interval(secs => $3))
ON CONFLICT (node_id) DO UPDATE SET
    address = EXCLUDED.address,
    started_at = EXCLUDED.started_at,
    heartbeat_at = EXCLUDED.heartbeat_at,
    expires_at = EXCLUDED.expires_at
RETURNING now() AS now;

-- heartbeat --
-- A process is alive: renew its row and every lease it holds; returns the leases it still holds
WITH node AS (
    INSERT INTO tideflow_cluster_nodes (node_id, address, started_at, heartbeat_at, expires_at)
    VALUES ($1, $2, now(), now(), now() + make_interval(secs => $3))
    ON CONFLICT (node_id) DO UPDATE SET
        heartbeat_at = EXCLUDED.heartbeat_at, expires_at = EXCLUDED.expires_at
    RETURNING node_id
), renewed AS (
    UPDATE tideflow_cluster_leases SET expires_at = now() + make_interval(secs => $3)
    WHERE owner = $1 AND expires_at > now()
    RETURNING unit, token
)
SELECT unit, token FROM renewed;

-- live_nodes --
-- The processes whose heartbeat has not expired
SELECT node_id, address, started_at, heartbeat_at, expires_at
FROM tideflow_cluster_nodes
WHERE expires_at > now()
ORDER BY node_id;

-- live_leases --
-- The units owned under an unexpired lease
SELECT unit, owner, token, acquired_at, expires_at
FROM tideflow_cluster_leases
WHERE owner IS NOT NULL AND expires_at > now()
ORDER BY unit;

-- acquire --
-- Take the units that are free, expired or already this process's (a restart); the token is bumped
INSERT INTO tideflow_cluster_leases AS l (unit, owner, token, acquired_at, expires_at)
SELECT u, $1, 1, now(), now() + make_interval(secs => $3)
FROM unnest($2::text[]) AS u
ON CONFLICT (unit) DO UPDATE SET
    owner = EXCLUDED.owner,
    token = l.token + 1,
    acquired_at = EXCLUDED.acquired_at,
    expires_at = EXCLUDED.expires_at
WHERE l.owner IS NULL OR l.expires_at <= now() OR l.owner = EXCLUDED.owner
RETURNING unit, token;

-- release --
-- Let units go (others take them at once); tells the other processes
WITH freed AS (
    UPDATE tideflow_cluster_leases SET owner = NULL, expires_at = NULL
    WHERE owner = $1 AND unit = ANY($2::text[])
    RETURNING unit
)
SELECT count(*) AS n, pg_notify('tideflow_cluster', 'released ' || $1)
FROM freed;

-- leave --
-- A process stops: its leases freed, its row gone; tells the other processes
WITH freed AS (
    UPDATE tideflow_cluster_leases SET owner = NULL, expires_at = NULL
    WHERE owner = $1
    RETURNING unit
), gone AS (
    DELETE FROM tideflow_cluster_nodes WHERE node_id = $1 RETURNING node_id
)
SELECT (SELECT count(*) FROM freed) AS n, pg_notify('tideflow_cluster', 'left ' || $1);

-- announce --
-- Tell the other processes that something changed (payload: what)
SELECT pg_notify('tideflow_cluster', $1);

-- forget_dead --
-- Drop the rows of processes gone for longer than a while (they show no more)
DELETE FROM tideflow_cluster_nodes
WHERE expires_at < now() - make_interval(secs => $1);
