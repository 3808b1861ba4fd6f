-- open_session --
-- Store a new session, deleting the expired ones and the oldest beyond the bound ($6: room kept)
WITH expired AS (
    DELETE FROM tideflow_console_sessions WHERE expires_at <= $4
), oldest AS (
    DELETE FROM tideflow_console_sessions
    WHERE digest IN (SELECT digest FROM tideflow_console_sessions
                     WHERE expires_at > $4
                     ORDER BY created_at DESC, digest
                     OFFSET $6)
)
INSERT INTO tideflow_console_sessions (digest, csrf, sealed, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5);

-- get_session --
-- A session by the digest of its id, unless it has expired
SELECT csrf, sealed, expires_at FROM tideflow_console_sessions
WHERE digest = $1 AND expires_at > $2;

-- close_session --
-- End a session (no row: nothing to end)
DELETE FROM tideflow_console_sessions WHERE digest = $1;
