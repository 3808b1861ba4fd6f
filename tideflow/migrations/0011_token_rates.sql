-- A token's own rate limit (tideflow/auth/rates.py), as written: "20/s",
-- "600/m", "1000/h". NULL: the server's --rate-limit applies (unlimited without one).

ALTER TABLE tideflow_tokens ADD COLUMN rate text;
