-- Secret grants made through the admin API (tideflow/secrets): subjects whose
-- id matches the pattern (a workflow id or sink:<host>, '*' any run of
-- characters) may receive the secrets named. Only names are kept, never values.

CREATE TABLE tideflow_secret_grants (
    pattern text PRIMARY KEY,
    secrets text[] NOT NULL,
    created_at timestamptz NOT NULL
);
