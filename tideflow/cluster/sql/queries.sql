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
-- A process is alive: renew its row and its leases of the units it runs ($4; rows locked in
-- unit order, as every statement here does); returns those it still holds
WITH node AS (
    INSERT INTO tideflow_cluster_nodes (node_id, address, started_at, heartbeat_at, expires_at)
    VALUES ($1, $2, now(), now(), now() + make_interval(secs => $3))
    ON CONFLICT (node_id) DO UPDATE SET
        heartbeat_at = EXCLUDED.heartbeat_at, expires_at = EXCLUDED.expires_at
    RETURNING node_id
), mine AS (
    SELECT unit FROM tideflow_cluster_leases
    WHERE owner = $1 AND unit = ANY($4::text[]) AND expires_at > now()
    ORDER BY unit
    FOR UPDATE
), renewed AS (
    UPDATE tideflow_cluster_leases AS l SET expires_at = now() + make_interval(secs => $3)
    FROM mine
    WHERE l.unit = mine.unit
    RETURNING l.unit, l.token
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
-- Take the units that are free, expired or already this process's (a restart); the token is
-- bumped. A row another process holds is neither changed nor locked (an INSERT ... ON CONFLICT
-- DO UPDATE would lock it, waiting for its owner's heartbeat or release and deadlocking with it)
WITH wanted AS (
    SELECT DISTINCT u AS unit FROM unnest($2::text[]) AS u
), free AS (
    SELECT l.unit FROM tideflow_cluster_leases AS l JOIN wanted USING (unit)
    WHERE l.owner IS NULL OR l.expires_at <= now() OR l.owner = $1
    ORDER BY l.unit
    FOR UPDATE OF l
), taken AS (
    UPDATE tideflow_cluster_leases AS l SET
        owner = $1,
        token = l.token + 1,
        acquired_at = now(),
        expires_at = now() + make_interval(secs => $3)
    FROM free
    WHERE l.unit = free.unit
    RETURNING l.unit, l.token
), made AS (
    INSERT INTO tideflow_cluster_leases (unit, owner, token, acquired_at, expires_at)
    SELECT w.unit, $1, 1, now(), now() + make_interval(secs => $3)
    FROM wanted AS w
    WHERE NOT EXISTS (SELECT 1 FROM tideflow_cluster_leases AS l WHERE l.unit = w.unit)
    ORDER BY w.unit
    ON CONFLICT (unit) DO NOTHING
    RETURNING unit, token
)
SELECT unit, token FROM taken
UNION ALL
SELECT unit, token FROM made;

-- release --
-- Let units go (others take them at once); tells the other processes
WITH mine AS (
    SELECT unit FROM tideflow_cluster_leases
    WHERE owner = $1 AND unit = ANY($2::text[])
    ORDER BY unit
    FOR UPDATE
), freed AS (
    UPDATE tideflow_cluster_leases AS l SET owner = NULL, expires_at = NULL
    FROM mine
    WHERE l.unit = mine.unit
    RETURNING l.unit
)
SELECT count(*) AS n, pg_notify('tideflow_cluster', 'released ' || $1)
FROM freed;

-- leave --
-- A process stops: its leases freed, its row gone; tells the other processes
WITH mine AS (
    SELECT unit FROM tideflow_cluster_leases WHERE owner = $1 ORDER BY unit FOR UPDATE
), freed AS (
    UPDATE tideflow_cluster_leases AS l SET owner = NULL, expires_at = NULL
    FROM mine
    WHERE l.unit = mine.unit
    RETURNING l.unit
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
