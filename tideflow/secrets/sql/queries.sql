-- list_grants --
-- Every grant stored through the admin API, oldest first
SELECT pattern, secrets FROM tideflow_secret_grants ORDER BY created_at, pattern;

-- put_grant --
-- Store a grant, replacing the names of an earlier one with the same pattern; tell every server
INSERT INTO tideflow_secret_grants (pattern, secrets, created_at)
VALUES ($1, $2, $3)
ON CONFLICT (pattern) DO UPDATE SET secrets = EXCLUDED.secrets
RETURNING pattern, pg_notify('tideflow_secret_grants', pattern) IS NULL AS told;

-- delete_grant --
-- Forget the grant of one pattern (no row if there was none); tell every server
DELETE FROM tideflow_secret_grants WHERE pattern = $1
RETURNING pattern, pg_notify('tideflow_secret_grants', pattern) IS NULL AS told;
