-- Event store: buses, their segments, and the partitioned log.
--
-- tideflow_events is partitioned twice: LIST (bus_id) gives one partitioned
-- table per bus (tideflow_events_<bus>), itself partitioned by RANGE
-- (event_offset) into segments (tideflow_events_<bus>_<n>). Dropping a bus
-- drops one table; retention drops whole segments; a read of one bus prunes
-- to that bus's segments. Offsets are assigned under the bus row's lock
-- (see tideflow/eventstore/gateway.py for why that makes them gap-free).

CREATE TABLE tideflow_buses (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE,
    max_age interval,
    max_events bigint CHECK (max_events > 0),
    segment_size bigint NOT NULL CHECK (segment_size > 0),
    -- Offsets 1 .. next_offset - 1 are committed. The row is locked (FOR
    -- UPDATE) by every appending transaction until it commits.
    next_offset bigint NOT NULL DEFAULT 1,
    -- The first offset still kept: the start of the oldest segment.
    first_offset bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tideflow_segments (
    bus_id integer NOT NULL REFERENCES tideflow_buses (id) ON DELETE CASCADE,
    segment_no bigint NOT NULL,
    start_offset bigint NOT NULL,
    end_offset bigint NOT NULL, -- exclusive
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bus_id, segment_no)
);

CREATE TABLE tideflow_events (
    bus_id integer NOT NULL,
    event_offset bigint NOT NULL,
    ce_source text NOT NULL,
    ce_id text NOT NULL,
    -- 64-bit hash of (source, id), computed by the store: a small index for dedup.
    ce_key bigint NOT NULL,
    stored_at timestamptz NOT NULL,
    -- The structured CloudEvent exactly as received (json keeps the text).
    event json NOT NULL,
    PRIMARY KEY (bus_id, event_offset)
) PARTITION BY LIST (bus_id);

-- Deduplication: not UNIQUE (a unique index on a partitioned table must hold
-- the partition keys); appends of a bus are serialized by its row lock, so a
-- lookup then insert under that lock cannot race. The store compares source
-- and id of every hash match, so a hash collision is never taken as a duplicate.
CREATE INDEX tideflow_events_key ON tideflow_events (bus_id, ce_key);
CREATE INDEX tideflow_events_stored_at ON tideflow_events USING brin (stored_at);

CREATE FUNCTION tideflow_segment_table(p_bus integer, p_segment bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT 'tideflow_events_' || p_bus || '_' || p_segment
$$;

-- Create the bus's log table and every segment up to the one holding p_upto.
-- Callers hold the bus row lock, which serializes segment DDL per bus.
CREATE FUNCTION tideflow_ensure_segments(p_bus integer, p_upto bigint) RETURNS integer
LANGUAGE plpgsql AS $$
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

-- Drop one segment (a whole partition: never row by row) and move first_offset.
CREATE FUNCTION tideflow_drop_segment(p_bus integer, p_segment bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DROP TABLE IF EXISTS %I', tideflow_segment_table(p_bus, p_segment));
    DELETE FROM tideflow_segments WHERE bus_id = p_bus AND segment_no = p_segment;
    UPDATE tideflow_buses b SET first_offset = coalesce(
        (SELECT min(start_offset) FROM tideflow_segments s WHERE s.bus_id = p_bus),
        b.next_offset)
    WHERE id = p_bus;
END
$$;

-- Drop a bus's whole log (all its segments at once).
CREATE FUNCTION tideflow_drop_bus_log(p_bus integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DROP TABLE IF EXISTS %I', 'tideflow_events_' || p_bus);
END
$$;

-- The first offset stored after p_since: a binary search by primary key
-- (stored_at grows with the offset, as batches commit in order), for the
-- events/s figure without scanning the last minute's rows.
CREATE FUNCTION tideflow_first_offset_since(p_bus integer, p_since timestamptz) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
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

-- The bus 'default' is created by PostgresEventStore.start() with the configured segment size.
