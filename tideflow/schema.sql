-- The current Tideflow schema, as every migration in tideflow/migrations/ leaves it.
-- A snapshot for readers: databases are built and upgraded by the migrations, never from
-- this file. Regenerate after adding a migration:
--     python -m tests.support.schema_snapshot > tideflow/schema.sql
-- (tests/integration/test_migrations.py checks that it matches the migrated schema).

CREATE FUNCTION tideflow_archive_segment(p_bus integer, p_segment bigint, p_count bigint, p_bytes bigint, p_checksum text, p_location text, p_newest timestamp with time zone) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_start bigint;
    v_end bigint;
BEGIN
    SELECT start_offset, end_offset INTO v_start, v_end
        FROM tideflow_segments WHERE bus_id = p_bus AND segment_no = p_segment;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO tideflow_archived_segments (bus_id, segment_no, start_offset, end_offset,
        event_count, size_bytes, checksum, location, newest_at)
    VALUES (p_bus, p_segment, v_start, v_end, p_count, p_bytes, p_checksum, p_location, p_newest);
    EXECUTE format('ALTER TABLE %I DETACH PARTITION %I',
        'tideflow_events_' || p_bus, tideflow_segment_table(p_bus, p_segment));
    PERFORM tideflow_drop_segment(p_bus, p_segment);
    RETURN true;
END
$$;

CREATE FUNCTION tideflow_correlation_index() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM tideflow_correlation_keys
        WHERE instance_id = OLD.instance_id AND wait_key = OLD.wait_key;
        DELETE FROM tideflow_correlation_partial
        WHERE instance_id = OLD.instance_id AND wait_key = OLD.wait_key;
        RETURN OLD;
    END IF;
    -- A wait answered from the inbox (a start) is not indexed: other events must not take it.
    IF NOT EXISTS (SELECT 1 FROM tideflow_correlation_inbox
                   WHERE instance_id = NEW.instance_id AND wait_key = NEW.wait_key) THEN
        INSERT INTO tideflow_correlation_keys
            (event_type, corr, source, instance_id, wait_key, name, all_events)
        SELECT e->>'type',
               coalesce((SELECT jsonb_object_agg(c.key, c.value #>> '{}')
                         FROM jsonb_each(coalesce(e->'correlation', '{}'::jsonb)) c
                         WHERE jsonb_typeof(c.value) <> 'null'), '{}'::jsonb),
               coalesce(e->>'source', ''),
               NEW.instance_id, NEW.wait_key, e->>'name', NEW.all_events
        FROM jsonb_array_elements(NEW.events) e
        ON CONFLICT DO NOTHING;
    END IF;
    PERFORM pg_notify('tideflow_correlation', NEW.instance_id || E'\n' || NEW.wait_key);
    RETURN NEW;
END;
$$;

CREATE FUNCTION tideflow_correlation_origin() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO tideflow_correlation_origins (instance_id, start_offset)
    SELECT n.id, coalesce((SELECT next_offset - 1 FROM tideflow_buses WHERE name = 'default'), 0)
    FROM new_rows n
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;

CREATE FUNCTION tideflow_drop_bus_log(p_bus integer) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    EXECUTE format('DROP TABLE IF EXISTS %I', 'tideflow_events_' || p_bus);
END
$$;

CREATE FUNCTION tideflow_drop_segment(p_bus integer, p_segment bigint) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    EXECUTE format('DROP TABLE IF EXISTS %I', tideflow_segment_table(p_bus, p_segment));
    DELETE FROM tideflow_segments WHERE bus_id = p_bus AND segment_no = p_segment;
    UPDATE tideflow_buses b SET first_offset = coalesce(
        (SELECT min(start_offset) FROM tideflow_segments s WHERE s.bus_id = p_bus),
        b.next_offset)
    WHERE id = p_bus;
END
$$;

CREATE FUNCTION tideflow_ensure_segments(p_bus integer, p_upto bigint) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_size bigint;
    v_next bigint;
    v_last bigint;
    v_created integer := 0;
BEGIN
    SELECT segment_size INTO STRICT v_size FROM tideflow_buses WHERE id = p_bus;
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS %I PARTITION OF tideflow_events '
        'FOR VALUES IN (%s) PARTITION BY RANGE (event_offset)',
        'tideflow_events_' || p_bus, p_bus);
    SELECT coalesce(max(segment_no) + 1, 0) INTO v_next
        FROM tideflow_segments WHERE bus_id = p_bus;
    v_last := (greatest(p_upto, 1) - 1) / v_size;
    WHILE v_next <= v_last LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s)',
            tideflow_segment_table(p_bus, v_next), 'tideflow_events_' || p_bus,
            v_next * v_size + 1, (v_next + 1) * v_size + 1);
        INSERT INTO tideflow_segments (bus_id, segment_no, start_offset, end_offset)
            VALUES (p_bus, v_next, v_next * v_size + 1, (v_next + 1) * v_size + 1);
        v_next := v_next + 1;
        v_created := v_created + 1;
    END LOOP;
    RETURN v_created;
END
$$;

CREATE FUNCTION tideflow_first_offset_since(p_bus integer, p_since timestamp with time zone) RETURNS bigint
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    v_lo bigint;
    v_hi bigint;
    v_mid bigint;
    v_at timestamptz;
BEGIN
    SELECT first_offset, next_offset INTO v_lo, v_hi FROM tideflow_buses WHERE id = p_bus;
    WHILE v_lo < v_hi LOOP
        v_mid := (v_lo + v_hi) / 2;
        SELECT stored_at INTO v_at FROM tideflow_events
            WHERE bus_id = p_bus AND event_offset = v_mid;
        IF v_at IS NULL OR v_at > p_since THEN
            v_hi := v_mid;
        ELSE
            v_lo := v_mid + 1;
        END IF;
    END LOOP;
    RETURN v_lo;
END
$$;

CREATE FUNCTION tideflow_segment_table(p_bus integer, p_segment bigint) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT 'tideflow_events_' || p_bus || '_' || p_segment
$$;

CREATE TABLE tideflow_archived_segments (
    bus_id integer NOT NULL,
    segment_no bigint NOT NULL,
    start_offset bigint NOT NULL,
    end_offset bigint NOT NULL,
    event_count bigint NOT NULL,
    size_bytes bigint NOT NULL,
    checksum text NOT NULL,
    location text NOT NULL,
    newest_at timestamp with time zone NOT NULL,
    archived_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE tideflow_buses (
    id integer NOT NULL,
    name text NOT NULL,
    max_age interval,
    max_events bigint,
    segment_size bigint NOT NULL,
    next_offset bigint DEFAULT 1 NOT NULL,
    first_offset bigint DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    archive_after interval,
    archive_to text,
    CONSTRAINT tideflow_buses_archive CHECK (((archive_after IS NULL) = (archive_to IS NULL))),
    CONSTRAINT tideflow_buses_max_events_check CHECK ((max_events > 0)),
    CONSTRAINT tideflow_buses_segment_size_check CHECK ((segment_size > 0))
);

ALTER TABLE tideflow_buses ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME tideflow_buses_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE tideflow_cluster_leases (
    unit text NOT NULL,
    owner text,
    token bigint DEFAULT 0 NOT NULL,
    acquired_at timestamp with time zone,
    expires_at timestamp with time zone
);

CREATE TABLE tideflow_cluster_nodes (
    node_id text NOT NULL,
    address text,
    started_at timestamp with time zone NOT NULL,
    heartbeat_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL
);

CREATE TABLE tideflow_connectors (
    name text NOT NULL,
    kind text NOT NULL,
    type text NOT NULL,
    bus text NOT NULL,
    spec jsonb NOT NULL,
    state text DEFAULT 'active'::text NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    "position" jsonb,
    events bigint DEFAULT 0 NOT NULL,
    errors bigint DEFAULT 0 NOT NULL,
    last_error text,
    last_error_at timestamp with time zone,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT tideflow_connectors_kind_check CHECK ((kind = ANY (ARRAY['source'::text, 'sink'::text]))),
    CONSTRAINT tideflow_connectors_state_check CHECK ((state = ANY (ARRAY['active'::text, 'paused'::text])))
);

CREATE TABLE tideflow_console_sessions (
    digest text NOT NULL,
    csrf text NOT NULL,
    sealed bytea NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL
);

CREATE TABLE tideflow_consumer_attempts (
    subscription_id text NOT NULL,
    event_offset bigint NOT NULL,
    crashes integer DEFAULT 0 NOT NULL
);

CREATE TABLE tideflow_correlation_inbox (
    instance_id text NOT NULL,
    wait_key text NOT NULL,
    events jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE tideflow_correlation_keys (
    event_type text NOT NULL,
    corr jsonb NOT NULL,
    source text NOT NULL,
    instance_id text NOT NULL,
    wait_key text NOT NULL,
    name text NOT NULL,
    all_events boolean NOT NULL
);

CREATE TABLE tideflow_correlation_origins (
    instance_id text NOT NULL,
    start_offset bigint NOT NULL
);

CREATE TABLE tideflow_correlation_partial (
    instance_id text NOT NULL,
    wait_key text NOT NULL,
    name text NOT NULL,
    event jsonb NOT NULL
);

CREATE TABLE tideflow_correlation_pending (
    event_type text NOT NULL,
    corr jsonb NOT NULL,
    event_offset bigint NOT NULL,
    source text NOT NULL,
    event jsonb NOT NULL,
    arrived_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE tideflow_correlation_starts (
    workflow_id text NOT NULL,
    version text NOT NULL,
    corr jsonb NOT NULL,
    name text NOT NULL,
    event jsonb NOT NULL,
    event_offset bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    instance_id text,
    event_time timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone DEFAULT 'infinity'::timestamp with time zone NOT NULL
);

CREATE TABLE tideflow_event_keys (
    bus_id integer NOT NULL,
    ce_key bigint NOT NULL,
    event_offset bigint NOT NULL
);

CREATE TABLE tideflow_event_waits (
    instance_id text NOT NULL,
    wait_key text NOT NULL,
    run_no integer NOT NULL,
    all_events boolean DEFAULT false NOT NULL,
    events jsonb NOT NULL,
    event_types text[] NOT NULL,
    received jsonb DEFAULT '[]'::jsonb NOT NULL,
    due_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE tideflow_events (
    bus_id integer NOT NULL,
    event_offset bigint NOT NULL,
    ce_source text NOT NULL,
    ce_id text NOT NULL,
    ce_key bigint NOT NULL,
    stored_at timestamp with time zone NOT NULL,
    event json NOT NULL,
    trace_parent text
)
PARTITION BY LIST (bus_id);

CREATE TABLE tideflow_instances (
    id text NOT NULL,
    seq bigint NOT NULL,
    workflow_id text NOT NULL,
    version text NOT NULL,
    run_no integer DEFAULT 1 NOT NULL,
    status text DEFAULT 'running'::text NOT NULL,
    current_state text,
    input jsonb,
    data jsonb,
    output jsonb,
    error jsonb,
    parent_id text,
    parent_key text,
    requested text,
    woken boolean DEFAULT false NOT NULL,
    wake_at timestamp with time zone,
    lease_owner text,
    lease_until timestamp with time zone,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    ended_at timestamp with time zone,
    crashes integer DEFAULT 0 NOT NULL,
    crashed_at bigint,
    headers jsonb,
    CONSTRAINT tideflow_instances_requested_check CHECK ((requested = ANY (ARRAY['cancel'::text, 'suspend'::text]))),
    CONSTRAINT tideflow_instances_status_check CHECK ((status = ANY (ARRAY['running'::text, 'waiting'::text, 'suspended'::text, 'completed'::text, 'failed'::text, 'cancelled'::text])))
)
WITH (fillfactor='50');

ALTER TABLE tideflow_instances ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME tideflow_instances_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE tideflow_journal (
    instance_id text NOT NULL,
    run_no integer NOT NULL,
    seq bigint NOT NULL,
    op text NOT NULL,
    step_key text NOT NULL,
    entry jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE tideflow_journal ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME tideflow_journal_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE tideflow_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL,
    checksum text
);

CREATE TABLE tideflow_schedules (
    id text NOT NULL,
    kind text NOT NULL,
    spec jsonb NOT NULL,
    payload jsonb DEFAULT '{}'::jsonb NOT NULL,
    catch_up text DEFAULT 'latest'::text NOT NULL,
    next_tick timestamp with time zone,
    state text DEFAULT 'active'::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT tideflow_schedules_catch_up_check CHECK ((catch_up = ANY (ARRAY['skip'::text, 'latest'::text, 'all'::text]))),
    CONSTRAINT tideflow_schedules_state_check CHECK ((state = ANY (ARRAY['active'::text, 'ended'::text, 'cancelled'::text])))
);

CREATE TABLE tideflow_secret_grants (
    pattern text NOT NULL,
    secrets text[] NOT NULL,
    created_at timestamp with time zone NOT NULL
);

CREATE TABLE tideflow_segments (
    bus_id integer NOT NULL,
    segment_no bigint NOT NULL,
    start_offset bigint NOT NULL,
    end_offset bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE tideflow_subscriptions (
    id text NOT NULL,
    kind text DEFAULT 'http'::text NOT NULL,
    bus text NOT NULL,
    spec jsonb NOT NULL,
    state text DEFAULT 'active'::text NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    committed_offset bigint DEFAULT 0 NOT NULL,
    delivered bigint DEFAULT 0 NOT NULL,
    failed bigint DEFAULT 0 NOT NULL,
    dead_lettered bigint DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT tideflow_subscriptions_committed_offset_check CHECK ((committed_offset >= 0)),
    CONSTRAINT tideflow_subscriptions_kind_check CHECK ((kind = ANY (ARRAY['http'::text, 'internal'::text]))),
    CONSTRAINT tideflow_subscriptions_state_check CHECK ((state = ANY (ARRAY['active'::text, 'paused'::text])))
);

CREATE TABLE tideflow_timeline (
    instance_id text NOT NULL,
    seq bigint NOT NULL,
    run_no integer NOT NULL,
    kind text NOT NULL,
    step_key text NOT NULL,
    state text,
    detail jsonb DEFAULT '{}'::jsonb NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE tideflow_timeline ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME tideflow_timeline_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE tideflow_timers (
    id text NOT NULL,
    kind text NOT NULL,
    due_at timestamp with time zone NOT NULL,
    payload jsonb DEFAULT '{}'::jsonb NOT NULL,
    state text DEFAULT 'pending'::text NOT NULL,
    idempotency_key text,
    schedule_id text,
    attempts integer DEFAULT 0 NOT NULL,
    last_error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    touched_at timestamp with time zone DEFAULT now() NOT NULL,
    fired_at timestamp with time zone,
    CONSTRAINT tideflow_timers_state_check CHECK ((state = ANY (ARRAY['pending'::text, 'fired'::text, 'cancelled'::text])))
);

CREATE TABLE tideflow_tokens (
    id text NOT NULL,
    name text NOT NULL,
    scopes text[] NOT NULL,
    digest text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone,
    rate text
);

CREATE TABLE tideflow_workflow_versions (
    workflow_id text NOT NULL,
    version text NOT NULL,
    seq integer NOT NULL,
    source_text text NOT NULL,
    content_type text NOT NULL,
    definition jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    resolved jsonb
);

CREATE TABLE tideflow_workflows (
    id text NOT NULL,
    latest_version text NOT NULL,
    deleted_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY tideflow_archived_segments
    ADD CONSTRAINT tideflow_archived_segments_pkey PRIMARY KEY (bus_id, segment_no);

ALTER TABLE ONLY tideflow_buses
    ADD CONSTRAINT tideflow_buses_name_key UNIQUE (name);

ALTER TABLE ONLY tideflow_buses
    ADD CONSTRAINT tideflow_buses_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tideflow_cluster_leases
    ADD CONSTRAINT tideflow_cluster_leases_pkey PRIMARY KEY (unit);

ALTER TABLE ONLY tideflow_cluster_nodes
    ADD CONSTRAINT tideflow_cluster_nodes_pkey PRIMARY KEY (node_id);

ALTER TABLE ONLY tideflow_connectors
    ADD CONSTRAINT tideflow_connectors_pkey PRIMARY KEY (name);

ALTER TABLE ONLY tideflow_console_sessions
    ADD CONSTRAINT tideflow_console_sessions_pkey PRIMARY KEY (digest);

ALTER TABLE ONLY tideflow_consumer_attempts
    ADD CONSTRAINT tideflow_consumer_attempts_pkey PRIMARY KEY (subscription_id, event_offset);

ALTER TABLE ONLY tideflow_correlation_inbox
    ADD CONSTRAINT tideflow_correlation_inbox_pkey PRIMARY KEY (instance_id, wait_key);

ALTER TABLE ONLY tideflow_correlation_keys
    ADD CONSTRAINT tideflow_correlation_keys_pkey PRIMARY KEY (event_type, corr, source, instance_id, wait_key, name);

ALTER TABLE ONLY tideflow_correlation_origins
    ADD CONSTRAINT tideflow_correlation_origins_pkey PRIMARY KEY (instance_id);

ALTER TABLE ONLY tideflow_correlation_partial
    ADD CONSTRAINT tideflow_correlation_partial_pkey PRIMARY KEY (instance_id, wait_key, name);

ALTER TABLE ONLY tideflow_correlation_pending
    ADD CONSTRAINT tideflow_correlation_pending_pkey PRIMARY KEY (event_type, corr, event_offset);

ALTER TABLE ONLY tideflow_correlation_starts
    ADD CONSTRAINT tideflow_correlation_starts_pkey PRIMARY KEY (workflow_id, version, event_offset, name);

ALTER TABLE ONLY tideflow_event_keys
    ADD CONSTRAINT tideflow_event_keys_pkey PRIMARY KEY (bus_id, ce_key, event_offset);

ALTER TABLE ONLY tideflow_event_waits
    ADD CONSTRAINT tideflow_event_waits_pkey PRIMARY KEY (instance_id, wait_key);

ALTER TABLE ONLY tideflow_events
    ADD CONSTRAINT tideflow_events_pkey PRIMARY KEY (bus_id, event_offset);

ALTER TABLE ONLY tideflow_instances
    ADD CONSTRAINT tideflow_instances_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tideflow_instances
    ADD CONSTRAINT tideflow_instances_seq_key UNIQUE (seq);

ALTER TABLE ONLY tideflow_journal
    ADD CONSTRAINT tideflow_journal_pkey PRIMARY KEY (instance_id, run_no, seq);

ALTER TABLE ONLY tideflow_migrations
    ADD CONSTRAINT tideflow_migrations_pkey PRIMARY KEY (version);

ALTER TABLE ONLY tideflow_schedules
    ADD CONSTRAINT tideflow_schedules_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tideflow_secret_grants
    ADD CONSTRAINT tideflow_secret_grants_pkey PRIMARY KEY (pattern);

ALTER TABLE ONLY tideflow_segments
    ADD CONSTRAINT tideflow_segments_pkey PRIMARY KEY (bus_id, segment_no);

ALTER TABLE ONLY tideflow_subscriptions
    ADD CONSTRAINT tideflow_subscriptions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tideflow_timeline
    ADD CONSTRAINT tideflow_timeline_pkey PRIMARY KEY (instance_id, seq);

ALTER TABLE ONLY tideflow_timers
    ADD CONSTRAINT tideflow_timers_idempotency_key_key UNIQUE (idempotency_key);

ALTER TABLE ONLY tideflow_timers
    ADD CONSTRAINT tideflow_timers_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tideflow_tokens
    ADD CONSTRAINT tideflow_tokens_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tideflow_workflow_versions
    ADD CONSTRAINT tideflow_workflow_versions_pkey PRIMARY KEY (workflow_id, version);

ALTER TABLE ONLY tideflow_workflow_versions
    ADD CONSTRAINT tideflow_workflow_versions_workflow_id_seq_key UNIQUE (workflow_id, seq);

ALTER TABLE ONLY tideflow_workflows
    ADD CONSTRAINT tideflow_workflows_pkey PRIMARY KEY (id);

CREATE INDEX tideflow_cluster_leases_owner ON tideflow_cluster_leases USING btree (owner);

CREATE INDEX tideflow_console_sessions_expiry ON tideflow_console_sessions USING btree (expires_at);

CREATE INDEX tideflow_correlation_keys_corr ON tideflow_correlation_keys USING gin (corr jsonb_path_ops);

CREATE INDEX tideflow_correlation_keys_wait ON tideflow_correlation_keys USING btree (instance_id, wait_key);

CREATE INDEX tideflow_correlation_pending_age ON tideflow_correlation_pending USING btree (arrived_at);

CREATE INDEX tideflow_correlation_pending_offset ON tideflow_correlation_pending USING btree (event_offset);

CREATE INDEX tideflow_correlation_starts_expiry ON tideflow_correlation_starts USING btree (expires_at) WHERE (instance_id IS NULL);

CREATE UNIQUE INDEX tideflow_correlation_starts_open ON tideflow_correlation_starts USING btree (workflow_id, version, corr, name) WHERE (instance_id IS NULL);

CREATE INDEX tideflow_correlation_starts_taken ON tideflow_correlation_starts USING btree (instance_id) WHERE (instance_id IS NOT NULL);

CREATE INDEX tideflow_event_waits_types ON tideflow_event_waits USING gin (event_types);

CREATE INDEX tideflow_events_stored_at ON ONLY tideflow_events USING brin (stored_at);

CREATE INDEX tideflow_instances_claim ON tideflow_instances USING btree (wake_at) WHERE (wake_at IS NOT NULL);

CREATE INDEX tideflow_instances_ended ON tideflow_instances USING btree (workflow_id, ended_at) WHERE (status = ANY (ARRAY['completed'::text, 'failed'::text, 'cancelled'::text]));

CREATE INDEX tideflow_instances_parent ON tideflow_instances USING btree (parent_id) WHERE (parent_id IS NOT NULL);

CREATE INDEX tideflow_instances_status ON tideflow_instances USING btree (status, seq);

CREATE INDEX tideflow_instances_workflow ON tideflow_instances USING btree (workflow_id, seq);

CREATE INDEX tideflow_subscriptions_bus ON tideflow_subscriptions USING btree (bus);

CREATE INDEX tideflow_timers_ended ON tideflow_timers USING btree (touched_at) WHERE (state <> 'pending'::text);

CREATE INDEX tideflow_timers_kind ON tideflow_timers USING btree (kind, state, due_at);

CREATE INDEX tideflow_timers_pending ON tideflow_timers USING btree (due_at) WHERE (state = 'pending'::text);

CREATE INDEX tideflow_timers_touched ON tideflow_timers USING btree (touched_at) WHERE (state = 'pending'::text);

CREATE TRIGGER tideflow_correlation_index AFTER INSERT OR DELETE ON tideflow_event_waits FOR EACH ROW EXECUTE FUNCTION tideflow_correlation_index();

CREATE TRIGGER tideflow_correlation_origin AFTER INSERT ON tideflow_instances REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tideflow_correlation_origin();

ALTER TABLE ONLY tideflow_archived_segments
    ADD CONSTRAINT tideflow_archived_segments_bus_id_fkey FOREIGN KEY (bus_id) REFERENCES tideflow_buses(id) ON DELETE CASCADE;

ALTER TABLE ONLY tideflow_segments
    ADD CONSTRAINT tideflow_segments_bus_id_fkey FOREIGN KEY (bus_id) REFERENCES tideflow_buses(id) ON DELETE CASCADE;
