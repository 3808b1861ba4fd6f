-- The upgrade fixture (tests/support/upgrade_fixture.py): made by tideflow at commit
-- ed7239fb642dd14e4a502d1992d94bf47e986304 (the previous release), killed while these instances waited:
--   upgrade.short-sleep: 01a24ab7-a353-7b9b-95fc-1b6b28d7b3c6
--   upgrade.long-sleep: 01a24ab7-a423-7084-b134-3c9a0d6b0258
--   upgrade.event-wait: 01a24ab7-a4d5-7511-9e9c-d5c0665dd346
--   upgrade.listen: 01a24ab7-a568-7a60-b509-4ee9f58bf361

CREATE FUNCTION public.tideflow_correlation_index() RETURNS trigger
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

CREATE FUNCTION public.tideflow_correlation_origin() RETURNS trigger
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

CREATE FUNCTION public.tideflow_drop_bus_log(p_bus integer) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    EXECUTE format('DROP TABLE IF EXISTS %I', 'tideflow_events_' || p_bus);
END
$$;

CREATE FUNCTION public.tideflow_drop_segment(p_bus integer, p_segment bigint) RETURNS void
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

CREATE FUNCTION public.tideflow_ensure_segments(p_bus integer, p_upto bigint) RETURNS integer
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

CREATE FUNCTION public.tideflow_first_offset_since(p_bus integer, p_since timestamp with time zone) RETURNS bigint
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

CREATE FUNCTION public.tideflow_segment_table(p_bus integer, p_segment bigint) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT 'tideflow_events_' || p_bus || '_' || p_segment
$$;

CREATE TABLE public.tideflow_buses (
    id integer NOT NULL,
    name text NOT NULL,
    max_age interval,
    max_events bigint,
    segment_size bigint NOT NULL,
    next_offset bigint DEFAULT 1 NOT NULL,
    first_offset bigint DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT tideflow_buses_max_events_check CHECK ((max_events > 0)),
    CONSTRAINT tideflow_buses_segment_size_check CHECK ((segment_size > 0))
);

ALTER TABLE public.tideflow_buses ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.tideflow_buses_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.tideflow_connectors (
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

CREATE TABLE public.tideflow_correlation_inbox (
    instance_id text NOT NULL,
    wait_key text NOT NULL,
    events jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.tideflow_correlation_keys (
    event_type text NOT NULL,
    corr jsonb NOT NULL,
    source text NOT NULL,
    instance_id text NOT NULL,
    wait_key text NOT NULL,
    name text NOT NULL,
    all_events boolean NOT NULL
);

CREATE TABLE public.tideflow_correlation_origins (
    instance_id text NOT NULL,
    start_offset bigint NOT NULL
);

CREATE TABLE public.tideflow_correlation_partial (
    instance_id text NOT NULL,
    wait_key text NOT NULL,
    name text NOT NULL,
    event jsonb NOT NULL
);

CREATE TABLE public.tideflow_correlation_pending (
    event_type text NOT NULL,
    corr jsonb NOT NULL,
    event_offset bigint NOT NULL,
    source text NOT NULL,
    event jsonb NOT NULL,
    arrived_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.tideflow_correlation_starts (
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

CREATE TABLE public.tideflow_event_waits (
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

CREATE TABLE public.tideflow_events (
    bus_id integer NOT NULL,
    event_offset bigint NOT NULL,
    ce_source text NOT NULL,
    ce_id text NOT NULL,
    ce_key bigint NOT NULL,
    stored_at timestamp with time zone NOT NULL,
    event json NOT NULL
)
PARTITION BY LIST (bus_id);

CREATE TABLE public.tideflow_events_1 (
    bus_id integer NOT NULL,
    event_offset bigint NOT NULL,
    ce_source text NOT NULL,
    ce_id text NOT NULL,
    ce_key bigint NOT NULL,
    stored_at timestamp with time zone NOT NULL,
    event json NOT NULL
)
PARTITION BY RANGE (event_offset);

CREATE TABLE public.tideflow_events_1_0 (
    bus_id integer NOT NULL,
    event_offset bigint NOT NULL,
    ce_source text NOT NULL,
    ce_id text NOT NULL,
    ce_key bigint NOT NULL,
    stored_at timestamp with time zone NOT NULL,
    event json NOT NULL
);

CREATE TABLE public.tideflow_events_1_1 (
    bus_id integer NOT NULL,
    event_offset bigint NOT NULL,
    ce_source text NOT NULL,
    ce_id text NOT NULL,
    ce_key bigint NOT NULL,
    stored_at timestamp with time zone NOT NULL,
    event json NOT NULL
);

CREATE TABLE public.tideflow_events_2 (
    bus_id integer NOT NULL,
    event_offset bigint NOT NULL,
    ce_source text NOT NULL,
    ce_id text NOT NULL,
    ce_key bigint NOT NULL,
    stored_at timestamp with time zone NOT NULL,
    event json NOT NULL
)
PARTITION BY RANGE (event_offset);

CREATE TABLE public.tideflow_events_2_0 (
    bus_id integer NOT NULL,
    event_offset bigint NOT NULL,
    ce_source text NOT NULL,
    ce_id text NOT NULL,
    ce_key bigint NOT NULL,
    stored_at timestamp with time zone NOT NULL,
    event json NOT NULL
);

CREATE TABLE public.tideflow_events_2_1 (
    bus_id integer NOT NULL,
    event_offset bigint NOT NULL,
    ce_source text NOT NULL,
    ce_id text NOT NULL,
    ce_key bigint NOT NULL,
    stored_at timestamp with time zone NOT NULL,
    event json NOT NULL
);

CREATE TABLE public.tideflow_events_3 (
    bus_id integer NOT NULL,
    event_offset bigint NOT NULL,
    ce_source text NOT NULL,
    ce_id text NOT NULL,
    ce_key bigint NOT NULL,
    stored_at timestamp with time zone NOT NULL,
    event json NOT NULL
)
PARTITION BY RANGE (event_offset);

CREATE TABLE public.tideflow_events_3_0 (
    bus_id integer NOT NULL,
    event_offset bigint NOT NULL,
    ce_source text NOT NULL,
    ce_id text NOT NULL,
    ce_key bigint NOT NULL,
    stored_at timestamp with time zone NOT NULL,
    event json NOT NULL
);

CREATE TABLE public.tideflow_events_3_1 (
    bus_id integer NOT NULL,
    event_offset bigint NOT NULL,
    ce_source text NOT NULL,
    ce_id text NOT NULL,
    ce_key bigint NOT NULL,
    stored_at timestamp with time zone NOT NULL,
    event json NOT NULL
);

CREATE TABLE public.tideflow_instances (
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
    CONSTRAINT tideflow_instances_requested_check CHECK ((requested = ANY (ARRAY['cancel'::text, 'suspend'::text]))),
    CONSTRAINT tideflow_instances_status_check CHECK ((status = ANY (ARRAY['running'::text, 'waiting'::text, 'suspended'::text, 'completed'::text, 'failed'::text, 'cancelled'::text])))
)
WITH (fillfactor='50');

ALTER TABLE public.tideflow_instances ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.tideflow_instances_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.tideflow_journal (
    instance_id text NOT NULL,
    run_no integer NOT NULL,
    seq bigint NOT NULL,
    op text NOT NULL,
    step_key text NOT NULL,
    entry jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE public.tideflow_journal ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.tideflow_journal_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.tideflow_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL,
    checksum text
);

CREATE TABLE public.tideflow_schedules (
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

CREATE TABLE public.tideflow_secret_grants (
    pattern text NOT NULL,
    secrets text[] NOT NULL,
    created_at timestamp with time zone NOT NULL
);

CREATE TABLE public.tideflow_segments (
    bus_id integer NOT NULL,
    segment_no bigint NOT NULL,
    start_offset bigint NOT NULL,
    end_offset bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.tideflow_subscriptions (
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

CREATE TABLE public.tideflow_timeline (
    instance_id text NOT NULL,
    seq bigint NOT NULL,
    run_no integer NOT NULL,
    kind text NOT NULL,
    step_key text NOT NULL,
    state text,
    detail jsonb DEFAULT '{}'::jsonb NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE public.tideflow_timeline ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.tideflow_timeline_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.tideflow_timers (
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

CREATE TABLE public.tideflow_tokens (
    id text NOT NULL,
    name text NOT NULL,
    scopes text[] NOT NULL,
    digest text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone,
    rate text
);

CREATE TABLE public.tideflow_workflow_versions (
    workflow_id text NOT NULL,
    version text NOT NULL,
    seq integer NOT NULL,
    source_text text NOT NULL,
    content_type text NOT NULL,
    definition jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    resolved jsonb
);

CREATE TABLE public.tideflow_workflows (
    id text NOT NULL,
    latest_version text NOT NULL,
    deleted_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY public.tideflow_events ATTACH PARTITION public.tideflow_events_1 FOR VALUES IN (1);

ALTER TABLE ONLY public.tideflow_events_1 ATTACH PARTITION public.tideflow_events_1_0 FOR VALUES FROM ('1') TO ('1000001');

ALTER TABLE ONLY public.tideflow_events_1 ATTACH PARTITION public.tideflow_events_1_1 FOR VALUES FROM ('1000001') TO ('2000001');

ALTER TABLE ONLY public.tideflow_events ATTACH PARTITION public.tideflow_events_2 FOR VALUES IN (2);

ALTER TABLE ONLY public.tideflow_events_2 ATTACH PARTITION public.tideflow_events_2_0 FOR VALUES FROM ('1') TO ('1000001');

ALTER TABLE ONLY public.tideflow_events_2 ATTACH PARTITION public.tideflow_events_2_1 FOR VALUES FROM ('1000001') TO ('2000001');

ALTER TABLE ONLY public.tideflow_events ATTACH PARTITION public.tideflow_events_3 FOR VALUES IN (3);

ALTER TABLE ONLY public.tideflow_events_3 ATTACH PARTITION public.tideflow_events_3_0 FOR VALUES FROM ('1') TO ('1000001');

ALTER TABLE ONLY public.tideflow_events_3 ATTACH PARTITION public.tideflow_events_3_1 FOR VALUES FROM ('1000001') TO ('2000001');

INSERT INTO public.tideflow_buses OVERRIDING SYSTEM VALUE VALUES (1, 'default', NULL, NULL, 1000000, 1, 1, '2026-12-06 09:37:56.683454+00');
INSERT INTO public.tideflow_buses OVERRIDING SYSTEM VALUE VALUES (2, 'tideflow.audit', NULL, NULL, 1000000, 5, 1, '2026-12-06 09:37:56.845539+00');
INSERT INTO public.tideflow_buses OVERRIDING SYSTEM VALUE VALUES (3, 'tideflow.lifecycle', NULL, NULL, 1000000, 9, 1, '2026-12-06 09:37:56.976235+00');

INSERT INTO public.tideflow_correlation_keys VALUES ('com.example.upgrade.go', '{}', '/upgrade', '01a24ab7-a4d5-7511-9e9c-d5c0665dd346', 'Await/events', 'Go', false);
INSERT INTO public.tideflow_correlation_keys VALUES ('com.example.upgrade.dsl1', '{}', '', '01a24ab7-a568-7a60-b509-4ee9f58bf361', 'wait/events', 'filter:0', false);

INSERT INTO public.tideflow_correlation_origins VALUES ('01a24ab7-a353-7b9b-95fc-1b6b28d7b3c6', 0);
INSERT INTO public.tideflow_correlation_origins VALUES ('01a24ab7-a423-7084-b134-3c9a0d6b0258', 0);
INSERT INTO public.tideflow_correlation_origins VALUES ('01a24ab7-a4d5-7511-9e9c-d5c0665dd346', 0);
INSERT INTO public.tideflow_correlation_origins VALUES ('01a24ab7-a568-7a60-b509-4ee9f58bf361', 0);

INSERT INTO public.tideflow_event_waits VALUES ('01a24ab7-a4d5-7511-9e9c-d5c0665dd346', 'Await/events', 1, false, '[{"name": "Go", "type": "com.example.upgrade.go", "source": "/upgrade", "correlation": {}}]', '{com.example.upgrade.go}', '[]', NULL, '2026-12-06 09:37:59.01738+00');
INSERT INTO public.tideflow_event_waits VALUES ('01a24ab7-a568-7a60-b509-4ee9f58bf361', 'wait/events', 1, false, '[{"name": "filter:0", "type": "com.example.upgrade.dsl1", "source": null, "correlation": {}}]', '{com.example.upgrade.dsl1}', '[]', NULL, '2026-12-06 09:37:59.176576+00');

INSERT INTO public.tideflow_events_2_0 VALUES (2, 1, '/tideflow/audit', 'ac9f6193-216f-4b8b-a2a8-bdf8fc29ab11', -2804751755578797997, '2026-12-06 09:37:58.391407+00', '{"specversion":"1.0","id":"ac9f6193-216f-4b8b-a2a8-bdf8fc29ab11","source":"/tideflow/audit","type":"io.tideflow.audit.workflow.deployed","subject":"/workflows/upgrade.short-sleep","time":"2026-12-06T09:37:58.391181Z","datacontenttype":"application/json","data":{"workflowId":"upgrade.short-sleep","version":"1","action":"workflow.deployed","target":"/workflows/upgrade.short-sleep","actor":{"tokenId":null,"name":"insecure-local"}}}');
INSERT INTO public.tideflow_events_2_0 VALUES (2, 2, '/tideflow/audit', '3a6082b8-06bb-4946-8d8d-1d59d1fe9879', -5638224309150733006, '2026-12-06 09:37:58.787805+00', '{"specversion":"1.0","id":"3a6082b8-06bb-4946-8d8d-1d59d1fe9879","source":"/tideflow/audit","type":"io.tideflow.audit.workflow.deployed","subject":"/workflows/upgrade.long-sleep","time":"2026-12-06T09:37:58.787666Z","datacontenttype":"application/json","data":{"workflowId":"upgrade.long-sleep","version":"1","action":"workflow.deployed","target":"/workflows/upgrade.long-sleep","actor":{"tokenId":null,"name":"insecure-local"}}}');
INSERT INTO public.tideflow_events_2_0 VALUES (2, 3, '/tideflow/audit', '84b0e769-2e5f-4b6d-a462-937e1c9aeb20', 2249669152062532487, '2026-12-06 09:37:58.968764+00', '{"specversion":"1.0","id":"84b0e769-2e5f-4b6d-a462-937e1c9aeb20","source":"/tideflow/audit","type":"io.tideflow.audit.workflow.deployed","subject":"/workflows/upgrade.event-wait","time":"2026-12-06T09:37:58.968630Z","datacontenttype":"application/json","data":{"workflowId":"upgrade.event-wait","version":"1","action":"workflow.deployed","target":"/workflows/upgrade.event-wait","actor":{"tokenId":null,"name":"insecure-local"}}}');
INSERT INTO public.tideflow_events_2_0 VALUES (2, 4, '/tideflow/audit', 'f8186adc-23c8-43bd-b1b6-6ccb21496023', 8990233071253441536, '2026-12-06 09:37:59.10574+00', '{"specversion":"1.0","id":"f8186adc-23c8-43bd-b1b6-6ccb21496023","source":"/tideflow/audit","type":"io.tideflow.audit.workflow.deployed","subject":"/workflows/upgrade.listen","time":"2026-12-06T09:37:59.105549Z","datacontenttype":"application/json","data":{"workflowId":"upgrade.listen","version":"1.0.0","action":"workflow.deployed","target":"/workflows/upgrade.listen","actor":{"tokenId":null,"name":"insecure-local"}}}');

INSERT INTO public.tideflow_events_3_0 VALUES (3, 1, '/tideflow/workflows/upgrade.short-sleep', '01a24ab7-a353-7b9b-95fc-1b6b28d7b3c6/1/started', 1559217575121424780, '2026-12-06 09:37:58.673999+00', '{"specversion":"1.0","id":"01a24ab7-a353-7b9b-95fc-1b6b28d7b3c6/1/started","source":"/tideflow/workflows/upgrade.short-sleep","type":"io.tideflow.instance.started","subject":"01a24ab7-a353-7b9b-95fc-1b6b28d7b3c6","time":"2026-12-06T09:37:58.671766Z","datacontenttype":"application/json","data":{"instanceId":"01a24ab7-a353-7b9b-95fc-1b6b28d7b3c6","workflowId":"upgrade.short-sleep","version":"1","status":"running"}}');
INSERT INTO public.tideflow_events_3_0 VALUES (3, 2, '/tideflow/workflows/upgrade.short-sleep', '01a24ab7-a353-7b9b-95fc-1b6b28d7b3c6/1/state.entered/Nap', -2071871184049920577, '2026-12-06 09:37:58.723224+00', '{"specversion":"1.0","id":"01a24ab7-a353-7b9b-95fc-1b6b28d7b3c6/1/state.entered/Nap","source":"/tideflow/workflows/upgrade.short-sleep","type":"io.tideflow.instance.state.entered","subject":"01a24ab7-a353-7b9b-95fc-1b6b28d7b3c6","time":"2026-12-06T09:37:58.673165Z","datacontenttype":"application/json","data":{"instanceId":"01a24ab7-a353-7b9b-95fc-1b6b28d7b3c6","workflowId":"upgrade.short-sleep","version":"1","status":"running","state":"Nap"}}');
INSERT INTO public.tideflow_events_3_0 VALUES (3, 3, '/tideflow/workflows/upgrade.long-sleep', '01a24ab7-a423-7084-b134-3c9a0d6b0258/1/started', -4444354905688232047, '2026-12-06 09:37:58.877814+00', '{"specversion":"1.0","id":"01a24ab7-a423-7084-b134-3c9a0d6b0258/1/started","source":"/tideflow/workflows/upgrade.long-sleep","type":"io.tideflow.instance.started","subject":"01a24ab7-a423-7084-b134-3c9a0d6b0258","time":"2026-12-06T09:37:58.831342Z","datacontenttype":"application/json","data":{"instanceId":"01a24ab7-a423-7084-b134-3c9a0d6b0258","workflowId":"upgrade.long-sleep","version":"1","status":"running"}}');
INSERT INTO public.tideflow_events_3_0 VALUES (3, 4, '/tideflow/workflows/upgrade.long-sleep', '01a24ab7-a423-7084-b134-3c9a0d6b0258/1/state.entered/Nap', -7944327119427297906, '2026-12-06 09:37:58.877814+00', '{"specversion":"1.0","id":"01a24ab7-a423-7084-b134-3c9a0d6b0258/1/state.entered/Nap","source":"/tideflow/workflows/upgrade.long-sleep","type":"io.tideflow.instance.state.entered","subject":"01a24ab7-a423-7084-b134-3c9a0d6b0258","time":"2026-12-06T09:37:58.859484Z","datacontenttype":"application/json","data":{"instanceId":"01a24ab7-a423-7084-b134-3c9a0d6b0258","workflowId":"upgrade.long-sleep","version":"1","status":"running","state":"Nap"}}');
INSERT INTO public.tideflow_events_3_0 VALUES (3, 5, '/tideflow/workflows/upgrade.event-wait', '01a24ab7-a4d5-7511-9e9c-d5c0665dd346/1/started', -3223236134506160227, '2026-12-06 09:37:59.020493+00', '{"specversion":"1.0","id":"01a24ab7-a4d5-7511-9e9c-d5c0665dd346/1/started","source":"/tideflow/workflows/upgrade.event-wait","type":"io.tideflow.instance.started","subject":"01a24ab7-a4d5-7511-9e9c-d5c0665dd346","time":"2026-12-06T09:37:59.015645Z","datacontenttype":"application/json","data":{"instanceId":"01a24ab7-a4d5-7511-9e9c-d5c0665dd346","workflowId":"upgrade.event-wait","version":"1","status":"running"}}');
INSERT INTO public.tideflow_events_3_0 VALUES (3, 6, '/tideflow/workflows/upgrade.event-wait', '01a24ab7-a4d5-7511-9e9c-d5c0665dd346/1/state.entered/Await', -219415134093843128, '2026-12-06 09:37:59.088505+00', '{"specversion":"1.0","id":"01a24ab7-a4d5-7511-9e9c-d5c0665dd346/1/state.entered/Await","source":"/tideflow/workflows/upgrade.event-wait","type":"io.tideflow.instance.state.entered","subject":"01a24ab7-a4d5-7511-9e9c-d5c0665dd346","time":"2026-12-06T09:37:59.016680Z","datacontenttype":"application/json","data":{"instanceId":"01a24ab7-a4d5-7511-9e9c-d5c0665dd346","workflowId":"upgrade.event-wait","version":"1","status":"running","state":"Await"}}');
INSERT INTO public.tideflow_events_3_0 VALUES (3, 7, '/tideflow/workflows/upgrade.listen', '01a24ab7-a568-7a60-b509-4ee9f58bf361/1/started', 1749331233896312988, '2026-12-06 09:37:59.176555+00', '{"specversion":"1.0","id":"01a24ab7-a568-7a60-b509-4ee9f58bf361/1/started","source":"/tideflow/workflows/upgrade.listen","type":"io.tideflow.instance.started","subject":"01a24ab7-a568-7a60-b509-4ee9f58bf361","time":"2026-12-06T09:37:59.175129Z","datacontenttype":"application/json","data":{"instanceId":"01a24ab7-a568-7a60-b509-4ee9f58bf361","workflowId":"upgrade.listen","version":"1.0.0","status":"running"}}');
INSERT INTO public.tideflow_events_3_0 VALUES (3, 8, '/tideflow/workflows/upgrade.listen', '01a24ab7-a568-7a60-b509-4ee9f58bf361/1/started/standard', 8565410260993787909, '2026-12-06 09:37:59.176555+00', '{"specversion":"1.0","id":"01a24ab7-a568-7a60-b509-4ee9f58bf361/1/started/standard","source":"/tideflow/workflows/upgrade.listen","type":"io.serverlessworkflow.workflow.started.v1","subject":"01a24ab7-a568-7a60-b509-4ee9f58bf361","time":"2026-12-06T09:37:59.175129Z","datacontenttype":"application/json","data":{"startedAt":"2026-12-06T09:37:59.175129Z","name":"01a24ab7-a568-7a60-b509-4ee9f58bf361","definition":{"id":"upgrade.listen","version":"1.0.0"}}}');

INSERT INTO public.tideflow_instances OVERRIDING SYSTEM VALUE VALUES ('01a24ab7-a353-7b9b-95fc-1b6b28d7b3c6', 1, 'upgrade.short-sleep', '1', 1, 'running', 'Nap', '{"n": 1}', '{"n": 1}', NULL, NULL, NULL, NULL, NULL, false, '2026-12-06 09:37:58.646407+00', '774abb7b-97c4-415e-aa7f-bf008a1e9121', '2026-12-06 09:38:28.674013+00', '2026-12-06 09:37:58.646407+00', '2026-12-06 09:37:58.674013+00', NULL, 0, NULL);
INSERT INTO public.tideflow_instances OVERRIDING SYSTEM VALUE VALUES ('01a24ab7-a423-7084-b134-3c9a0d6b0258', 2, 'upgrade.long-sleep', '1', 1, 'waiting', 'Nap', '{"n": 1}', '{"n": 1}', NULL, NULL, NULL, NULL, NULL, false, NULL, NULL, NULL, '2026-12-06 09:37:58.820116+00', '2026-12-06 09:37:58.887391+00', NULL, 0, NULL);
INSERT INTO public.tideflow_instances OVERRIDING SYSTEM VALUE VALUES ('01a24ab7-a4d5-7511-9e9c-d5c0665dd346', 3, 'upgrade.event-wait', '1', 1, 'waiting', 'Await', '{"n": 1}', '{"n": 1}', NULL, NULL, NULL, NULL, NULL, false, NULL, NULL, NULL, '2026-12-06 09:37:58.997601+00', '2026-12-06 09:37:59.047603+00', NULL, 0, NULL);
INSERT INTO public.tideflow_instances OVERRIDING SYSTEM VALUE VALUES ('01a24ab7-a568-7a60-b509-4ee9f58bf361', 4, 'upgrade.listen', '1.0.0', 1, 'waiting', 'wait', '{"n": 1}', '{"n": 1}', NULL, NULL, NULL, NULL, NULL, false, NULL, NULL, NULL, '2026-12-06 09:37:59.147007+00', '2026-12-06 09:37:59.208401+00', NULL, 0, NULL);

INSERT INTO public.tideflow_journal OVERRIDING SYSTEM VALUE VALUES ('01a24ab7-a353-7b9b-95fc-1b6b28d7b3c6', 1, 1, 'new_id', '', '{"result": "162f7ae4-05c2-4d84-be3f-3739c1bf6cf8"}', '2026-12-06 09:37:58.674013+00');
INSERT INTO public.tideflow_journal OVERRIDING SYSTEM VALUE VALUES ('01a24ab7-a353-7b9b-95fc-1b6b28d7b3c6', 1, 2, 'now', '', '{"result": "2026-12-06T09:37:58.673036+00:00"}', '2026-12-06 09:37:58.674013+00');
INSERT INTO public.tideflow_journal OVERRIDING SYSTEM VALUE VALUES ('01a24ab7-a353-7b9b-95fc-1b6b28d7b3c6', 1, 3, 'timer', 'Nap/sleep', '{"result": "2026-12-06T09:38:01.673254+00:00"}', '2026-12-06 09:37:58.674013+00');
INSERT INTO public.tideflow_journal OVERRIDING SYSTEM VALUE VALUES ('01a24ab7-a423-7084-b134-3c9a0d6b0258', 1, 4, 'new_id', '', '{"result": "d8d6b8f5-e946-4496-ae77-ed83a7eb4ae7"}', '2026-12-06 09:37:58.860045+00');
INSERT INTO public.tideflow_journal OVERRIDING SYSTEM VALUE VALUES ('01a24ab7-a423-7084-b134-3c9a0d6b0258', 1, 5, 'now', '', '{"result": "2026-12-06T09:37:58.846572+00:00"}', '2026-12-06 09:37:58.860045+00');
INSERT INTO public.tideflow_journal OVERRIDING SYSTEM VALUE VALUES ('01a24ab7-a423-7084-b134-3c9a0d6b0258', 1, 6, 'timer', 'Nap/sleep', '{"result": "2026-12-06T09:38:18.859613+00:00"}', '2026-12-06 09:37:58.860045+00');
INSERT INTO public.tideflow_journal OVERRIDING SYSTEM VALUE VALUES ('01a24ab7-a4d5-7511-9e9c-d5c0665dd346', 1, 7, 'new_id', '', '{"result": "d25535dd-04a2-4118-b3fc-73c835d3b628"}', '2026-12-06 09:37:59.01738+00');
INSERT INTO public.tideflow_journal OVERRIDING SYSTEM VALUE VALUES ('01a24ab7-a4d5-7511-9e9c-d5c0665dd346', 1, 8, 'now', '', '{"result": "2026-12-06T09:37:59.016572+00:00"}', '2026-12-06 09:37:59.01738+00');
INSERT INTO public.tideflow_journal OVERRIDING SYSTEM VALUE VALUES ('01a24ab7-a568-7a60-b509-4ee9f58bf361', 1, 9, 'new_id', '', '{"result": "b710b4c6-83f8-44dd-9253-f4109fb4d162"}', '2026-12-06 09:37:59.176576+00');
INSERT INTO public.tideflow_journal OVERRIDING SYSTEM VALUE VALUES ('01a24ab7-a568-7a60-b509-4ee9f58bf361', 1, 10, 'now', '', '{"result": "2026-12-06T09:37:59.176040+00:00"}', '2026-12-06 09:37:59.176576+00');

INSERT INTO public.tideflow_migrations VALUES (1, 'eventstore', '2026-12-06 09:37:55.758772+00', '2cb8e8ea9c232c877225da16350c7d52');
INSERT INTO public.tideflow_migrations VALUES (2, 'timers', '2026-12-06 09:37:55.869021+00', 'b8d8c8e60b7de7656270a12765e58f7c');
INSERT INTO public.tideflow_migrations VALUES (3, 'runtime', '2026-12-06 09:37:55.953119+00', '2d1c5838593d945c5383b68d920d6497');
INSERT INTO public.tideflow_migrations VALUES (4, 'triggers', '2026-12-06 09:37:56.147234+00', '3f3253ff8f9f84d17c29176f42e32efc');
INSERT INTO public.tideflow_migrations VALUES (6, 'correlation', '2026-12-06 09:37:56.198923+00', 'bbd06791f0c8f51b73df952bc7b87e76');
INSERT INTO public.tideflow_migrations VALUES (7, 'runtime_fillfactor', '2026-12-06 09:37:56.315187+00', '383e324255b535345185d2bf22d4361a');
INSERT INTO public.tideflow_migrations VALUES (8, 'correlation_starts', '2026-12-06 09:37:56.330911+00', 'c0973ce3885e2da27aeceac6e3ce3636');
INSERT INTO public.tideflow_migrations VALUES (9, 'tokens', '2026-12-06 09:37:56.383684+00', '00c49ecaa18af687e39c90859abe0c8d');
INSERT INTO public.tideflow_migrations VALUES (10, 'resolved_definitions', '2026-12-06 09:37:56.454759+00', 'eee19f8aa0b05698db2c3a9f60b3cbef');
INSERT INTO public.tideflow_migrations VALUES (11, 'token_rates', '2026-12-06 09:37:56.506741+00', 'a46d3fb48128503d24836abbcbcce0a6');
INSERT INTO public.tideflow_migrations VALUES (12, 'connectors', '2026-12-06 09:37:56.522746+00', '97e1c18af829c3598461ea9bc5b86b03');
INSERT INTO public.tideflow_migrations VALUES (13, 'quarantine', '2026-12-06 09:37:56.571089+00', '2c2271936c2ba98a11d891ab61cc5014');
INSERT INTO public.tideflow_migrations VALUES (14, 'secret_grants', '2026-12-06 09:37:56.579034+00', 'fc8eb3c2dfd8b8cc99fffc90455767ee');

INSERT INTO public.tideflow_segments VALUES (1, 0, 1, 1000001, '2026-12-06 09:37:56.683454+00');
INSERT INTO public.tideflow_segments VALUES (1, 1, 1000001, 2000001, '2026-12-06 09:37:56.683454+00');
INSERT INTO public.tideflow_segments VALUES (2, 0, 1, 1000001, '2026-12-06 09:37:56.845539+00');
INSERT INTO public.tideflow_segments VALUES (2, 1, 1000001, 2000001, '2026-12-06 09:37:56.845539+00');
INSERT INTO public.tideflow_segments VALUES (3, 0, 1, 1000001, '2026-12-06 09:37:56.976235+00');
INSERT INTO public.tideflow_segments VALUES (3, 1, 1000001, 2000001, '2026-12-06 09:37:56.976235+00');

INSERT INTO public.tideflow_subscriptions VALUES ('tideflow.workflows', 'internal', 'default', '{"bus": "default", "from": "latest", "sink": null, "filters": [], "delivery": {"retry": 3, "ordered": false, "timeout": "PT10S", "maxDelay": "PT60S", "maxInFlight": 64, "backoffDelay": "PT1S", "backoffPolicy": "exponential", "deadLetterBus": "default.deadletter"}, "transform": null}', 'active', 1, 0, 0, 0, 0, '2026-12-06 09:37:57.343402+00', '2026-12-06 09:37:57.343402+00');

INSERT INTO public.tideflow_timeline OVERRIDING SYSTEM VALUE VALUES ('01a24ab7-a353-7b9b-95fc-1b6b28d7b3c6', 1, 1, 'state.entered', 'Nap', 'Nap', '{}', '2026-12-06 09:37:58.673126+00');
INSERT INTO public.tideflow_timeline OVERRIDING SYSTEM VALUE VALUES ('01a24ab7-a423-7084-b134-3c9a0d6b0258', 2, 1, 'state.entered', 'Nap', 'Nap', '{}', '2026-12-06 09:37:58.859419+00');
INSERT INTO public.tideflow_timeline OVERRIDING SYSTEM VALUE VALUES ('01a24ab7-a423-7084-b134-3c9a0d6b0258', 3, 1, 'timer.started', 'Nap/sleep', NULL, '{"seconds": 20.0}', '2026-12-06 09:37:58.867972+00');
INSERT INTO public.tideflow_timeline OVERRIDING SYSTEM VALUE VALUES ('01a24ab7-a4d5-7511-9e9c-d5c0665dd346', 4, 1, 'entries', 'Await', 'Await', '[["state.entered", "Await", "Await", "2026-12-06T09:37:59.016660+00:00", {}], ["event.waiting", "Await/events", "Await", "2026-12-06T09:37:59.016731+00:00", {"all": false, "events": ["Go"]}]]', '2026-12-06 09:37:59.01666+00');
INSERT INTO public.tideflow_timeline OVERRIDING SYSTEM VALUE VALUES ('01a24ab7-a568-7a60-b509-4ee9f58bf361', 5, 1, 'task.started', 'wait', 'wait', '{"reference": "/do/0/wait"}', '2026-12-06 09:37:59.176117+00');

INSERT INTO public.tideflow_timers VALUES ('01a24ab7-a476-783f-9981-a91e56b2a7ff', 'tideflow.instance.wake', '2026-12-06 09:38:18.859613+00', '{"key": "Nap/sleep", "run": 1, "instance": "01a24ab7-a423-7084-b134-3c9a0d6b0258"}', 'pending', '01a24ab7-a423-7084-b134-3c9a0d6b0258/1/Nap/sleep', NULL, 0, NULL, '2026-12-06 09:37:58.887391+00', '2026-12-06 09:37:58.887391+00', NULL);

INSERT INTO public.tideflow_workflow_versions VALUES ('upgrade.short-sleep', '1', 1, '{"id": "upgrade.short-sleep", "version": "1", "specVersion": "0.8", "start": "Nap", "states": [{"name": "Nap", "type": "sleep", "duration": "PT3S", "transition": "Done"}, {"name": "Done", "type": "inject", "data": {"woke": "short"}, "end": true}]}', 'application/json', '{"id": "upgrade.short-sleep", "start": "Nap", "states": [{"name": "Nap", "type": "sleep", "duration": "PT3S", "transition": "Done"}, {"end": true, "data": {"woke": "short"}, "name": "Done", "type": "inject"}], "version": "1", "specVersion": "0.8"}', '2026-12-06 09:37:58.246332+00', '{"id": "upgrade.short-sleep", "start": "Nap", "states": [{"name": "Nap", "type": "sleep", "duration": "PT3S", "transition": "Done"}, {"end": true, "data": {"woke": "short"}, "name": "Done", "type": "inject"}], "version": "1", "specVersion": "0.8"}');
INSERT INTO public.tideflow_workflow_versions VALUES ('upgrade.long-sleep', '1', 1, '{"id": "upgrade.long-sleep", "version": "1", "specVersion": "0.8", "start": "Nap", "states": [{"name": "Nap", "type": "sleep", "duration": "PT20S", "transition": "Done"}, {"name": "Done", "type": "inject", "data": {"woke": "long"}, "end": true}]}', 'application/json', '{"id": "upgrade.long-sleep", "start": "Nap", "states": [{"name": "Nap", "type": "sleep", "duration": "PT20S", "transition": "Done"}, {"end": true, "data": {"woke": "long"}, "name": "Done", "type": "inject"}], "version": "1", "specVersion": "0.8"}', '2026-12-06 09:37:58.682737+00', '{"id": "upgrade.long-sleep", "start": "Nap", "states": [{"name": "Nap", "type": "sleep", "duration": "PT20S", "transition": "Done"}, {"end": true, "data": {"woke": "long"}, "name": "Done", "type": "inject"}], "version": "1", "specVersion": "0.8"}');
INSERT INTO public.tideflow_workflow_versions VALUES ('upgrade.event-wait', '1', 1, '{"id": "upgrade.event-wait", "version": "1", "specVersion": "0.8", "start": "Await", "events": [{"name": "Go", "type": "com.example.upgrade.go", "source": "/upgrade"}], "states": [{"name": "Await", "type": "event", "onEvents": [{"eventRefs": ["Go"], "eventDataFilter": {"toStateData": "${ .go }"}}], "end": true}]}', 'application/json', '{"id": "upgrade.event-wait", "start": "Await", "events": [{"name": "Go", "type": "com.example.upgrade.go", "source": "/upgrade"}], "states": [{"end": true, "name": "Await", "type": "event", "onEvents": [{"eventRefs": ["Go"], "eventDataFilter": {"toStateData": "${ .go }"}}]}], "version": "1", "specVersion": "0.8"}', '2026-12-06 09:37:58.846329+00', '{"id": "upgrade.event-wait", "start": "Await", "events": [{"name": "Go", "type": "com.example.upgrade.go", "source": "/upgrade"}], "states": [{"end": true, "name": "Await", "type": "event", "onEvents": [{"eventRefs": ["Go"], "eventDataFilter": {"toStateData": "${ .go }"}}]}], "version": "1", "specVersion": "0.8"}');
INSERT INTO public.tideflow_workflow_versions VALUES ('upgrade.listen', '1.0.0', 1, '{"document": {"dsl": "1.0.0", "namespace": "upgrade", "name": "listen", "version": "1.0.0"}, "do": [{"wait": {"listen": {"to": {"one": {"with": {"type": "com.example.upgrade.dsl1"}}}}}}, {"done": {"set": {"heard": "${ .[0].word }"}}}]}', 'application/json', '{"do": [{"wait": {"listen": {"to": {"one": {"with": {"type": "com.example.upgrade.dsl1"}}}}}}, {"done": {"set": {"heard": "${ .[0].word }"}}}], "document": {"dsl": "1.0.0", "name": "listen", "version": "1.0.0", "namespace": "upgrade"}}', '2026-12-06 09:37:59.042827+00', NULL);

INSERT INTO public.tideflow_workflows VALUES ('upgrade.short-sleep', '1', NULL, '2026-12-06 09:37:58.246332+00', '2026-12-06 09:37:58.246332+00');
INSERT INTO public.tideflow_workflows VALUES ('upgrade.long-sleep', '1', NULL, '2026-12-06 09:37:58.682737+00', '2026-12-06 09:37:58.682737+00');
INSERT INTO public.tideflow_workflows VALUES ('upgrade.event-wait', '1', NULL, '2026-12-06 09:37:58.846329+00', '2026-12-06 09:37:58.846329+00');
INSERT INTO public.tideflow_workflows VALUES ('upgrade.listen', '1.0.0', NULL, '2026-12-06 09:37:59.042827+00', '2026-12-06 09:37:59.042827+00');

SELECT pg_catalog.setval('public.tideflow_buses_id_seq', 3, true);

SELECT pg_catalog.setval('public.tideflow_instances_seq_seq', 4, true);

SELECT pg_catalog.setval('public.tideflow_journal_seq_seq', 10, true);

SELECT pg_catalog.setval('public.tideflow_timeline_seq_seq', 5, true);

ALTER TABLE ONLY public.tideflow_buses
    ADD CONSTRAINT tideflow_buses_name_key UNIQUE (name);

ALTER TABLE ONLY public.tideflow_buses
    ADD CONSTRAINT tideflow_buses_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.tideflow_connectors
    ADD CONSTRAINT tideflow_connectors_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.tideflow_correlation_inbox
    ADD CONSTRAINT tideflow_correlation_inbox_pkey PRIMARY KEY (instance_id, wait_key);

ALTER TABLE ONLY public.tideflow_correlation_keys
    ADD CONSTRAINT tideflow_correlation_keys_pkey PRIMARY KEY (event_type, corr, source, instance_id, wait_key, name);

ALTER TABLE ONLY public.tideflow_correlation_origins
    ADD CONSTRAINT tideflow_correlation_origins_pkey PRIMARY KEY (instance_id);

ALTER TABLE ONLY public.tideflow_correlation_partial
    ADD CONSTRAINT tideflow_correlation_partial_pkey PRIMARY KEY (instance_id, wait_key, name);

ALTER TABLE ONLY public.tideflow_correlation_pending
    ADD CONSTRAINT tideflow_correlation_pending_pkey PRIMARY KEY (event_type, corr, event_offset);

ALTER TABLE ONLY public.tideflow_correlation_starts
    ADD CONSTRAINT tideflow_correlation_starts_pkey PRIMARY KEY (workflow_id, version, event_offset, name);

ALTER TABLE ONLY public.tideflow_event_waits
    ADD CONSTRAINT tideflow_event_waits_pkey PRIMARY KEY (instance_id, wait_key);

ALTER TABLE ONLY public.tideflow_events
    ADD CONSTRAINT tideflow_events_pkey PRIMARY KEY (bus_id, event_offset);

ALTER TABLE ONLY public.tideflow_events_1
    ADD CONSTRAINT tideflow_events_1_pkey PRIMARY KEY (bus_id, event_offset);

ALTER TABLE ONLY public.tideflow_events_1_0
    ADD CONSTRAINT tideflow_events_1_0_pkey PRIMARY KEY (bus_id, event_offset);

ALTER TABLE ONLY public.tideflow_events_1_1
    ADD CONSTRAINT tideflow_events_1_1_pkey PRIMARY KEY (bus_id, event_offset);

ALTER TABLE ONLY public.tideflow_events_2
    ADD CONSTRAINT tideflow_events_2_pkey PRIMARY KEY (bus_id, event_offset);

ALTER TABLE ONLY public.tideflow_events_2_0
    ADD CONSTRAINT tideflow_events_2_0_pkey PRIMARY KEY (bus_id, event_offset);

ALTER TABLE ONLY public.tideflow_events_2_1
    ADD CONSTRAINT tideflow_events_2_1_pkey PRIMARY KEY (bus_id, event_offset);

ALTER TABLE ONLY public.tideflow_events_3
    ADD CONSTRAINT tideflow_events_3_pkey PRIMARY KEY (bus_id, event_offset);

ALTER TABLE ONLY public.tideflow_events_3_0
    ADD CONSTRAINT tideflow_events_3_0_pkey PRIMARY KEY (bus_id, event_offset);

ALTER TABLE ONLY public.tideflow_events_3_1
    ADD CONSTRAINT tideflow_events_3_1_pkey PRIMARY KEY (bus_id, event_offset);

ALTER TABLE ONLY public.tideflow_instances
    ADD CONSTRAINT tideflow_instances_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.tideflow_instances
    ADD CONSTRAINT tideflow_instances_seq_key UNIQUE (seq);

ALTER TABLE ONLY public.tideflow_journal
    ADD CONSTRAINT tideflow_journal_pkey PRIMARY KEY (instance_id, run_no, seq);

ALTER TABLE ONLY public.tideflow_migrations
    ADD CONSTRAINT tideflow_migrations_pkey PRIMARY KEY (version);

ALTER TABLE ONLY public.tideflow_schedules
    ADD CONSTRAINT tideflow_schedules_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.tideflow_secret_grants
    ADD CONSTRAINT tideflow_secret_grants_pkey PRIMARY KEY (pattern);

ALTER TABLE ONLY public.tideflow_segments
    ADD CONSTRAINT tideflow_segments_pkey PRIMARY KEY (bus_id, segment_no);

ALTER TABLE ONLY public.tideflow_subscriptions
    ADD CONSTRAINT tideflow_subscriptions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.tideflow_timeline
    ADD CONSTRAINT tideflow_timeline_pkey PRIMARY KEY (instance_id, seq);

ALTER TABLE ONLY public.tideflow_timers
    ADD CONSTRAINT tideflow_timers_idempotency_key_key UNIQUE (idempotency_key);

ALTER TABLE ONLY public.tideflow_timers
    ADD CONSTRAINT tideflow_timers_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.tideflow_tokens
    ADD CONSTRAINT tideflow_tokens_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.tideflow_workflow_versions
    ADD CONSTRAINT tideflow_workflow_versions_pkey PRIMARY KEY (workflow_id, version);

ALTER TABLE ONLY public.tideflow_workflow_versions
    ADD CONSTRAINT tideflow_workflow_versions_workflow_id_seq_key UNIQUE (workflow_id, seq);

ALTER TABLE ONLY public.tideflow_workflows
    ADD CONSTRAINT tideflow_workflows_pkey PRIMARY KEY (id);

CREATE INDEX tideflow_correlation_keys_wait ON public.tideflow_correlation_keys USING btree (instance_id, wait_key);

CREATE INDEX tideflow_correlation_pending_age ON public.tideflow_correlation_pending USING btree (arrived_at);

CREATE INDEX tideflow_correlation_pending_offset ON public.tideflow_correlation_pending USING btree (event_offset);

CREATE INDEX tideflow_correlation_starts_expiry ON public.tideflow_correlation_starts USING btree (expires_at) WHERE (instance_id IS NULL);

CREATE UNIQUE INDEX tideflow_correlation_starts_open ON public.tideflow_correlation_starts USING btree (workflow_id, version, corr, name) WHERE (instance_id IS NULL);

CREATE INDEX tideflow_correlation_starts_taken ON public.tideflow_correlation_starts USING btree (instance_id) WHERE (instance_id IS NOT NULL);

CREATE INDEX tideflow_event_waits_types ON public.tideflow_event_waits USING gin (event_types);

CREATE INDEX tideflow_events_key ON ONLY public.tideflow_events USING btree (bus_id, ce_key);

CREATE INDEX tideflow_events_1_bus_id_ce_key_idx ON ONLY public.tideflow_events_1 USING btree (bus_id, ce_key);

CREATE INDEX tideflow_events_1_0_bus_id_ce_key_idx ON public.tideflow_events_1_0 USING btree (bus_id, ce_key);

CREATE INDEX tideflow_events_stored_at ON ONLY public.tideflow_events USING brin (stored_at);

CREATE INDEX tideflow_events_1_stored_at_idx ON ONLY public.tideflow_events_1 USING brin (stored_at);

CREATE INDEX tideflow_events_1_0_stored_at_idx ON public.tideflow_events_1_0 USING brin (stored_at);

CREATE INDEX tideflow_events_1_1_bus_id_ce_key_idx ON public.tideflow_events_1_1 USING btree (bus_id, ce_key);

CREATE INDEX tideflow_events_1_1_stored_at_idx ON public.tideflow_events_1_1 USING brin (stored_at);

CREATE INDEX tideflow_events_2_bus_id_ce_key_idx ON ONLY public.tideflow_events_2 USING btree (bus_id, ce_key);

CREATE INDEX tideflow_events_2_0_bus_id_ce_key_idx ON public.tideflow_events_2_0 USING btree (bus_id, ce_key);

CREATE INDEX tideflow_events_2_stored_at_idx ON ONLY public.tideflow_events_2 USING brin (stored_at);

CREATE INDEX tideflow_events_2_0_stored_at_idx ON public.tideflow_events_2_0 USING brin (stored_at);

CREATE INDEX tideflow_events_2_1_bus_id_ce_key_idx ON public.tideflow_events_2_1 USING btree (bus_id, ce_key);

CREATE INDEX tideflow_events_2_1_stored_at_idx ON public.tideflow_events_2_1 USING brin (stored_at);

CREATE INDEX tideflow_events_3_bus_id_ce_key_idx ON ONLY public.tideflow_events_3 USING btree (bus_id, ce_key);

CREATE INDEX tideflow_events_3_0_bus_id_ce_key_idx ON public.tideflow_events_3_0 USING btree (bus_id, ce_key);

CREATE INDEX tideflow_events_3_stored_at_idx ON ONLY public.tideflow_events_3 USING brin (stored_at);

CREATE INDEX tideflow_events_3_0_stored_at_idx ON public.tideflow_events_3_0 USING brin (stored_at);

CREATE INDEX tideflow_events_3_1_bus_id_ce_key_idx ON public.tideflow_events_3_1 USING btree (bus_id, ce_key);

CREATE INDEX tideflow_events_3_1_stored_at_idx ON public.tideflow_events_3_1 USING brin (stored_at);

CREATE INDEX tideflow_instances_claim ON public.tideflow_instances USING btree (wake_at) WHERE (wake_at IS NOT NULL);

CREATE INDEX tideflow_instances_parent ON public.tideflow_instances USING btree (parent_id) WHERE (parent_id IS NOT NULL);

CREATE INDEX tideflow_instances_status ON public.tideflow_instances USING btree (status, seq);

CREATE INDEX tideflow_instances_workflow ON public.tideflow_instances USING btree (workflow_id, seq);

CREATE INDEX tideflow_subscriptions_bus ON public.tideflow_subscriptions USING btree (bus);

CREATE INDEX tideflow_timers_kind ON public.tideflow_timers USING btree (kind, state, due_at);

CREATE INDEX tideflow_timers_pending ON public.tideflow_timers USING btree (due_at) WHERE (state = 'pending'::text);

CREATE INDEX tideflow_timers_touched ON public.tideflow_timers USING btree (touched_at) WHERE (state = 'pending'::text);

ALTER INDEX public.tideflow_events_1_bus_id_ce_key_idx ATTACH PARTITION public.tideflow_events_1_0_bus_id_ce_key_idx;

ALTER INDEX public.tideflow_events_1_pkey ATTACH PARTITION public.tideflow_events_1_0_pkey;

ALTER INDEX public.tideflow_events_1_stored_at_idx ATTACH PARTITION public.tideflow_events_1_0_stored_at_idx;

ALTER INDEX public.tideflow_events_1_bus_id_ce_key_idx ATTACH PARTITION public.tideflow_events_1_1_bus_id_ce_key_idx;

ALTER INDEX public.tideflow_events_1_pkey ATTACH PARTITION public.tideflow_events_1_1_pkey;

ALTER INDEX public.tideflow_events_1_stored_at_idx ATTACH PARTITION public.tideflow_events_1_1_stored_at_idx;

ALTER INDEX public.tideflow_events_key ATTACH PARTITION public.tideflow_events_1_bus_id_ce_key_idx;

ALTER INDEX public.tideflow_events_pkey ATTACH PARTITION public.tideflow_events_1_pkey;

ALTER INDEX public.tideflow_events_stored_at ATTACH PARTITION public.tideflow_events_1_stored_at_idx;

ALTER INDEX public.tideflow_events_2_bus_id_ce_key_idx ATTACH PARTITION public.tideflow_events_2_0_bus_id_ce_key_idx;

ALTER INDEX public.tideflow_events_2_pkey ATTACH PARTITION public.tideflow_events_2_0_pkey;

ALTER INDEX public.tideflow_events_2_stored_at_idx ATTACH PARTITION public.tideflow_events_2_0_stored_at_idx;

ALTER INDEX public.tideflow_events_2_bus_id_ce_key_idx ATTACH PARTITION public.tideflow_events_2_1_bus_id_ce_key_idx;

ALTER INDEX public.tideflow_events_2_pkey ATTACH PARTITION public.tideflow_events_2_1_pkey;

ALTER INDEX public.tideflow_events_2_stored_at_idx ATTACH PARTITION public.tideflow_events_2_1_stored_at_idx;

ALTER INDEX public.tideflow_events_key ATTACH PARTITION public.tideflow_events_2_bus_id_ce_key_idx;

ALTER INDEX public.tideflow_events_pkey ATTACH PARTITION public.tideflow_events_2_pkey;

ALTER INDEX public.tideflow_events_stored_at ATTACH PARTITION public.tideflow_events_2_stored_at_idx;

ALTER INDEX public.tideflow_events_3_bus_id_ce_key_idx ATTACH PARTITION public.tideflow_events_3_0_bus_id_ce_key_idx;

ALTER INDEX public.tideflow_events_3_pkey ATTACH PARTITION public.tideflow_events_3_0_pkey;

ALTER INDEX public.tideflow_events_3_stored_at_idx ATTACH PARTITION public.tideflow_events_3_0_stored_at_idx;

ALTER INDEX public.tideflow_events_3_bus_id_ce_key_idx ATTACH PARTITION public.tideflow_events_3_1_bus_id_ce_key_idx;

ALTER INDEX public.tideflow_events_3_pkey ATTACH PARTITION public.tideflow_events_3_1_pkey;

ALTER INDEX public.tideflow_events_3_stored_at_idx ATTACH PARTITION public.tideflow_events_3_1_stored_at_idx;

ALTER INDEX public.tideflow_events_key ATTACH PARTITION public.tideflow_events_3_bus_id_ce_key_idx;

ALTER INDEX public.tideflow_events_pkey ATTACH PARTITION public.tideflow_events_3_pkey;

ALTER INDEX public.tideflow_events_stored_at ATTACH PARTITION public.tideflow_events_3_stored_at_idx;

CREATE TRIGGER tideflow_correlation_index AFTER INSERT OR DELETE ON public.tideflow_event_waits FOR EACH ROW EXECUTE FUNCTION public.tideflow_correlation_index();

CREATE TRIGGER tideflow_correlation_origin AFTER INSERT ON public.tideflow_instances REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.tideflow_correlation_origin();

ALTER TABLE ONLY public.tideflow_segments
    ADD CONSTRAINT tideflow_segments_bus_id_fkey FOREIGN KEY (bus_id) REFERENCES public.tideflow_buses(id) ON DELETE CASCADE;
