-- Workflows as subscribers: the correlation index of waiting instances and the
-- durable buffers of the workflow subscriber (tideflow/triggers/correlation.py).
--
-- tideflow_correlation_keys indexes every open event wait (tideflow_event_waits,
-- written by the durable runtime) by (event type, correlation key): the key is
-- the JSON object {attribute: value} of the wait's bound correlation values
-- (attributes whose value is not bound yet are left out). Triggers keep it in
-- step with the waits, so it survives restarts and costs the runtime nothing.

CREATE TABLE tideflow_correlation_keys (
    event_type text NOT NULL,
    corr jsonb NOT NULL,
    -- '' when the event definition names no source.
    source text NOT NULL,
    instance_id text NOT NULL,
    wait_key text NOT NULL,
    -- The event definition's name within the wait.
    name text NOT NULL,
    all_events boolean NOT NULL,
    PRIMARY KEY (event_type, corr, source, instance_id, wait_key, name)
);

CREATE INDEX tideflow_correlation_keys_wait ON tideflow_correlation_keys (instance_id, wait_key);

-- Events addressed to one wait before it exists: the events that started an instance.
CREATE TABLE tideflow_correlation_inbox (
    instance_id text NOT NULL,
    wait_key text NOT NULL,
    events jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, wait_key)
);

-- Partial sets of a wait for all of its events (exclusive: false), one row per event name.
CREATE TABLE tideflow_correlation_partial (
    instance_id text NOT NULL,
    wait_key text NOT NULL,
    name text NOT NULL,
    event jsonb NOT NULL,
    PRIMARY KEY (instance_id, wait_key, name)
);

-- Partial sets of a non-exclusive start: events with the same correlation values.
CREATE TABLE tideflow_correlation_starts (
    workflow_id text NOT NULL,
    version text NOT NULL,
    corr jsonb NOT NULL,
    name text NOT NULL,
    event jsonb NOT NULL,
    event_offset bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, version, corr, name)
);

-- Consumed events no instance waited for yet, kept for instances that started
-- before them and wait later (the start offset rule); dropped after a while.
CREATE TABLE tideflow_correlation_pending (
    event_type text NOT NULL,
    corr jsonb NOT NULL,
    event_offset bigint NOT NULL,
    source text NOT NULL,
    event jsonb NOT NULL,
    arrived_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_type, corr, event_offset)
);

CREATE INDEX tideflow_correlation_pending_offset ON tideflow_correlation_pending (event_offset);
CREATE INDEX tideflow_correlation_pending_age ON tideflow_correlation_pending (arrived_at);

-- Where each instance starts consuming: the head of the default bus when it was
-- created. Kept events are delivered only to instances that started before them.
CREATE TABLE tideflow_correlation_origins (
    instance_id text PRIMARY KEY,
    start_offset bigint NOT NULL
);

CREATE FUNCTION tideflow_correlation_origin() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tideflow_correlation_origins (instance_id, start_offset)
    SELECT n.id, coalesce((SELECT next_offset - 1 FROM tideflow_buses WHERE name = 'default'), 0)
    FROM new_rows n
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;

CREATE TRIGGER tideflow_correlation_origin
AFTER INSERT ON tideflow_instances
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION tideflow_correlation_origin();

CREATE FUNCTION tideflow_correlation_index() RETURNS trigger
LANGUAGE plpgsql AS $$
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

CREATE TRIGGER tideflow_correlation_index
AFTER INSERT OR DELETE ON tideflow_event_waits
FOR EACH ROW EXECUTE FUNCTION tideflow_correlation_index();
