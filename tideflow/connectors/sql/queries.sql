-- Connectors (tideflow/connectors; migration 0012_connectors), used by
-- PostgresConnectors (tideflow/connectors/gateway.py).

-- insert_connector --
-- Create a connector; an existing name adds nothing (then no row)
INSERT INTO tideflow_connectors (name, kind, type, bus, spec, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $6)
ON CONFLICT (name) DO NOTHING
RETURNING *;

-- get_connector --
-- One connector by name
SELECT * FROM tideflow_connectors WHERE name = $1;

-- list_connectors --
-- Every connector, by name
SELECT * FROM tideflow_connectors ORDER BY name;

-- connector_versions --
-- Name, state and version of every connector (what a running process compares)
SELECT name, state, version FROM tideflow_connectors;

-- delete_connector --
-- Delete a connector (no row if there was none)
DELETE FROM tideflow_connectors WHERE name = $1 RETURNING name;

-- set_connector_state --
-- Pause or resume a connector
UPDATE tideflow_connectors SET state = $2, updated_at = $3, version = version + 1
WHERE name = $1
RETURNING *;

-- save_position --
-- A source's position after its events committed, with the events it appended
UPDATE tideflow_connectors
SET position = $2::jsonb, events = events + $3, updated_at = $4
WHERE name = $1;

-- add_progress --
-- Add to a connector's counters; a failure also records its message and time
UPDATE tideflow_connectors SET
    events = events + $2,
    errors = errors + $3,
    last_error = COALESCE($4, last_error),
    last_error_at = CASE WHEN $4::text IS NULL THEN last_error_at ELSE $5 END,
    updated_at = $5
WHERE name = $1;

-- apply_connector --
-- Create a connector, or replace the declaration of an existing one if it differs (its position and counters stay; the version is bumped so it restarts)
INSERT INTO tideflow_connectors (name, kind, type, bus, spec, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $6)
ON CONFLICT (name) DO UPDATE SET
    kind = EXCLUDED.kind, type = EXCLUDED.type, bus = EXCLUDED.bus, spec = EXCLUDED.spec,
    updated_at = EXCLUDED.updated_at, version = tideflow_connectors.version + 1
WHERE tideflow_connectors.spec <> EXCLUDED.spec
RETURNING *;
