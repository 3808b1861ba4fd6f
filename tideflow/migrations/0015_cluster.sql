-- The cluster (tideflow/cluster): several `tideflow serve` processes on one database.
-- Each process heartbeats in tideflow_cluster_nodes; each unit of work (a subscription,
-- a connector, the workflow subscriber) is owned by at most one live process under a
-- lease in tideflow_cluster_leases. Times are the database's (now()), so the processes'
-- clocks never have to agree.

CREATE TABLE tideflow_cluster_nodes (
    node_id text PRIMARY KEY,
    -- Where its API answers (for `tideflow cluster status`), if it said.
    address text,
    started_at timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    -- Its heartbeat is older than this: it is gone and its units are taken over.
    expires_at timestamptz NOT NULL
);

CREATE TABLE tideflow_cluster_leases (
    unit text PRIMARY KEY,
    -- NULL: free (released, or never taken).
    owner text,
    -- Bumped by every acquisition: a write made under an older token is refused (fencing).
    token bigint NOT NULL DEFAULT 0,
    acquired_at timestamptz,
    -- Renewed by the owner's heartbeat; past it the unit is free.
    expires_at timestamptz
);

CREATE INDEX tideflow_cluster_leases_owner ON tideflow_cluster_leases (owner);
