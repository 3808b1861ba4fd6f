-- Durable runtime: the workflow registry, instances, their journals,
-- timelines and event waits. No foreign keys into other subpackages' tables.
--
-- An instance is claimable when wake_at <= now() and nobody holds a live
-- lease on it (lease_until in the past or NULL). A running instance keeps
-- wake_at set, so when its process dies the lease runs out and another
-- process takes it over and replays its journal. A waiting instance has
-- wake_at = its earliest timer (sleep, timeout) or NULL (events only).

CREATE TABLE tideflow_workflows (
    id text PRIMARY KEY,
    -- The version new instances get when none is asked for.
    latest_version text NOT NULL,
    deleted_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tideflow_workflow_versions (
    workflow_id text NOT NULL,
    version text NOT NULL,
    -- Deploy order within the workflow (1, 2, ...): "latest" is the highest.
    seq integer NOT NULL,
    -- The definition exactly as submitted, and its media type.
    source_text text NOT NULL,
    content_type text NOT NULL,
    -- The parsed document (JSON), for listings and the API.
    definition jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, version),
    UNIQUE (workflow_id, seq)
);

CREATE TABLE tideflow_instances (
    id text PRIMARY KEY,
    -- Insertion order: the listing cursor.
    seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    workflow_id text NOT NULL,
    version text NOT NULL,
    -- continueAs starts run 2, 3, ... with a fresh journal.
    run_no integer NOT NULL DEFAULT 1,
    status text NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'waiting', 'suspended', 'completed', 'failed', 'cancelled')),
    current_state text,
    input jsonb,
    data jsonb,
    output jsonb,
    error jsonb,
    parent_id text,
    -- The parent's step key this instance answers (a sync sub-flow), or NULL.
    parent_key text,
    -- 'cancel' or 'suspend' asked for a running instance; applied at its next step.
    requested text CHECK (requested IN ('cancel', 'suspend')),
    -- Set when events or a child's result arrive while the instance is leased.
    woken boolean NOT NULL DEFAULT false,
    wake_at timestamptz,
    lease_owner text,
    lease_until timestamptz,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    ended_at timestamptz
);

CREATE INDEX tideflow_instances_claim ON tideflow_instances (wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX tideflow_instances_workflow ON tideflow_instances (workflow_id, seq);
CREATE INDEX tideflow_instances_status ON tideflow_instances (status, seq);
CREATE INDEX tideflow_instances_parent ON tideflow_instances (parent_id) WHERE parent_id IS NOT NULL;

-- Effect results, in the order they were committed. One row per result:
-- op (call, wait, sleep, timer, emit, subflow, deadline, now, new_id), the
-- step key ('' for now/new_id) and the entry (result or error) as JSON.
CREATE TABLE tideflow_journal (
    instance_id text NOT NULL,
    run_no integer NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    op text NOT NULL,
    step_key text NOT NULL,
    entry jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, run_no, seq)
);

-- What happened, for people: states entered and left, actions, events, timers, errors.
CREATE TABLE tideflow_timeline (
    instance_id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    run_no integer NOT NULL,
    kind text NOT NULL,
    step_key text NOT NULL,
    state text,
    detail jsonb NOT NULL DEFAULT '{}'::jsonb,
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, seq)
);

-- An instance waiting for events: one row per wait (step key). events is the
-- list of {name, type, source, correlation: {attr: value}}; event_types lets
-- the trigger dispatcher's correlation index find candidates by type.
CREATE TABLE tideflow_event_waits (
    instance_id text NOT NULL,
    wait_key text NOT NULL,
    run_no integer NOT NULL,
    all_events boolean NOT NULL DEFAULT false,
    events jsonb NOT NULL,
    event_types text[] NOT NULL,
    -- For a wait on all events: those delivered so far (the wait ends when every one is here).
    received jsonb NOT NULL DEFAULT '[]'::jsonb,
    due_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, wait_key)
);

CREATE INDEX tideflow_event_waits_types ON tideflow_event_waits USING gin (event_types);
