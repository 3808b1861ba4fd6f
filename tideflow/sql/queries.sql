-- create_migrations_table --
-- The table that records applied migrations (run under the migration lock)
CREATE TABLE IF NOT EXISTS tideflow_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE tideflow_migrations ADD COLUMN IF NOT EXISTS checksum text;

-- migration_lock --
-- Take the session advisory lock that serializes migrations across processes
SELECT pg_advisory_lock($1);

-- migration_unlock --
-- Release the migration lock
SELECT pg_advisory_unlock($1);

-- applied_migrations --
-- Versions already applied, in order
SELECT version, name, checksum FROM tideflow_migrations ORDER BY version;

-- record_migration --
-- Record one migration as applied (in the transaction that applied it)
INSERT INTO tideflow_migrations (version, name, checksum) VALUES ($1, $2, $3);

-- ping --
-- The cheapest round trip: is the server there (the health probe)
SELECT 1;

-- node_lock --
-- Take the lock of a node id for this session's life (no other live process runs under it);
-- keepalives: the server notices a vanished client (and drops the lock) in about 30 s
SELECT pg_try_advisory_lock(hashtextextended('tideflow.node:' || $1, 0))
FROM (SELECT set_config('tcp_keepalives_idle', '10', false),
             set_config('tcp_keepalives_interval', '5', false)) AS keepalives;

-- node_unlock --
-- Give the lock of a node id back (a graceful stop)
SELECT pg_advisory_unlock(hashtextextended('tideflow.node:' || $1, 0));
