-- The web console (tideflow/console/): its sessions, shared by every process on the database,
-- and the look-up of instances by a correlation value (GET /instances?correlation=KEY:VALUE).
--
-- A session row never holds what a browser presents: `digest` is the SHA-256 of the cookie's
-- session id, and `sealed` is the session's API token encrypted (AES-GCM) under a key derived
-- from that id, so the rows alone sign no one in. Expired rows are deleted by the next login.

CREATE TABLE tideflow_console_sessions (
    digest text PRIMARY KEY,
    csrf text NOT NULL,
    sealed bytea NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX tideflow_console_sessions_expiry ON tideflow_console_sessions (expires_at);

-- `corr @> {"key": "value"}` over every open wait, whatever its event type.
CREATE INDEX tideflow_correlation_keys_corr ON tideflow_correlation_keys USING gin (corr jsonb_path_ops);
