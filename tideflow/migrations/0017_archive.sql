-- The archive tier: old segments of a bus written as Parquet files, then dropped from the log.
--
-- archive_after/archive_to: a closed segment whose newest event is older than archive_after is
-- written to a file under archive_to (a local folder or an fsspec URL such as s3://bucket/x).
-- tideflow_archived_segments is the manifest: one row per archived segment, inserted in the
-- same transaction that detaches and drops its partition (tideflow_archive_segment), so a
-- segment is always either a partition or a verified file, never both and never neither.

ALTER TABLE tideflow_buses
    ADD COLUMN archive_after interval,
    ADD COLUMN archive_to text,
    ADD CONSTRAINT tideflow_buses_archive CHECK ((archive_after IS NULL) = (archive_to IS NULL));

CREATE TABLE tideflow_archived_segments (
    bus_id integer NOT NULL REFERENCES tideflow_buses (id) ON DELETE CASCADE,
    segment_no bigint NOT NULL,
    start_offset bigint NOT NULL,
    end_offset bigint NOT NULL, -- exclusive
    event_count bigint NOT NULL,
    size_bytes bigint NOT NULL,
    -- sha256 (hex) of the offsets and event texts, as written and as read back
    checksum text NOT NULL,
    -- the file, a full URL or local path
    location text NOT NULL,
    newest_at timestamptz NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bus_id, segment_no)
);

-- Under the bus row lock: record the verified file and drop the partition, or do nothing when
-- the segment is no longer live (another process archived or retention dropped it). Returns
-- whether it archived.
CREATE FUNCTION tideflow_archive_segment(
    p_bus integer, p_segment bigint, p_count bigint, p_bytes bigint, p_checksum text,
    p_location text, p_newest timestamptz
) RETURNS boolean
LANGUAGE plpgsql AS $$
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
