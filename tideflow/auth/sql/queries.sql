-- find_token --
-- One token by its public id (revoked ones too)
SELECT * FROM tideflow_tokens WHERE id = $1;

-- insert_token --
-- Store a new token (no row if the id is taken)
INSERT INTO tideflow_tokens (id, name, scopes, digest, created_at, rate)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (id) DO NOTHING
RETURNING id;

-- lock_first_token --
-- Serialise first-token creation between servers starting at once (until the transaction ends)
SELECT pg_advisory_xact_lock(hashtext('tideflow_tokens.first'));

-- insert_first_token --
-- Store a token only if there is none at all (run after lock_first_token, in its transaction)
INSERT INTO tideflow_tokens (id, name, scopes, digest, created_at, rate)
SELECT $1, $2, $3, $4, $5, $6
WHERE NOT EXISTS (SELECT 1 FROM tideflow_tokens)
RETURNING id;

-- list_tokens --
-- Every token, oldest first
SELECT * FROM tideflow_tokens ORDER BY created_at, id;

-- revoke_token --
-- Revoke a token (keeping an earlier revocation time) and tell every server; no row if none
UPDATE tideflow_tokens SET revoked_at = coalesce(revoked_at, $2)
WHERE id = $1
RETURNING *, pg_notify('tideflow_tokens', id) IS NULL AS told;
