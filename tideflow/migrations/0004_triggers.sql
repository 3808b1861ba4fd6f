-- Triggers: subscriptions of buses and their committed offsets.
--
-- A subscription reads one bus. Every event with an offset <= committed_offset
-- has been delivered, dead-lettered or filtered out: after a restart the
-- dispatcher reads from committed_offset + 1 (the contiguous prefix rule, so
-- delivery is at-least-once). kind 'http' subscriptions deliver to their sink;
-- kind 'internal' ones are in-process consumers registered by code (workflow
-- event definitions), kept here only for their offset.

CREATE TABLE tideflow_subscriptions (
    id text PRIMARY KEY,
    kind text NOT NULL DEFAULT 'http' CHECK (kind IN ('http', 'internal')),
    bus text NOT NULL,
    -- The subscription as created (filters, sink, transform, delivery), in API form.
    spec jsonb NOT NULL,
    state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused')),
    -- Bumped by every change made through the API (pause, resume, reset): the
    -- dispatcher that runs the subscription restarts it, and an offset commit
    -- from before the change (a stale version) is ignored.
    version integer NOT NULL DEFAULT 1,
    committed_offset bigint NOT NULL DEFAULT 0 CHECK (committed_offset >= 0),
    delivered bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0,
    dead_lettered bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX tideflow_subscriptions_bus ON tideflow_subscriptions (bus);
