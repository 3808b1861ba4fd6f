-- Connectors (tideflow/connectors): sources and sinks declared as data. A sink's
-- offsets live in its internal subscription (tideflow_subscriptions, id
-- 'connector.<name>'); a source whose system keeps no position of its own (a
-- PostgreSQL table read by a cursor column) keeps it in `position`.
-- `spec` holds secret references ({"secret": NAME}), never a secret's value.

CREATE TABLE tideflow_connectors (
    name text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('source', 'sink')),
    type text NOT NULL,
    bus text NOT NULL,
    -- The connector as declared, in API form.
    spec jsonb NOT NULL,
    state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused')),
    -- Bumped by pause and resume: the process running the connector restarts it.
    version integer NOT NULL DEFAULT 1,
    position jsonb,
    events bigint NOT NULL DEFAULT 0,
    errors bigint NOT NULL DEFAULT 0,
    last_error text,
    last_error_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
