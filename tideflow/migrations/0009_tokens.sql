-- API tokens (tideflow/auth): only the SHA-256 digest of a token's text is
-- kept; the text (tf_<id>_<secret>) is shown once, when the token is made.
-- A revoked token stays listed with its revocation time.

CREATE TABLE tideflow_tokens (
    -- The public part of the token's text (12 hex digits).
    id text PRIMARY KEY,
    name text NOT NULL,
    scopes text[] NOT NULL,
    -- SHA-256 (hex) of the token's whole text.
    digest text NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);
