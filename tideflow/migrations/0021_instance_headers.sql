-- The HTTP headers of the request that started an instance (POST /workflows/{id}/instances),
-- read by SonataFlow workflows as $WORKFLOW.headers. Filtered before they are stored: no
-- credentials (Authorization, Cookie, names holding token/secret/key/password, ...), at most
-- 64 headers and 8 KiB (tideflow/api/start_headers.py). NULL: not started over HTTP ({}).

ALTER TABLE tideflow_instances ADD COLUMN headers jsonb;
