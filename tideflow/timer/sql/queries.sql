-- insert_timer --
-- Add a pending timer; a repeated idempotency key or id adds nothing (then no row)
INSERT INTO tideflow_timers (id, kind, due_at, payload, idempotency_key, schedule_id)
VALUES ($1, $2, $3, $4::jsonb, $5, $6)
ON CONFLICT DO NOTHING
RETURNING *;

-- get_timer --
-- One timer by id
SELECT * FROM tideflow_timers WHERE id = $1;

-- get_timer_by_key --
-- One timer by its idempotency key
SELECT * FROM tideflow_timers WHERE idempotency_key = $1;

-- cancel_timer --
-- Cancel a pending timer (no row if it was not pending)
UPDATE tideflow_timers SET state = 'cancelled', touched_at = now()
WHERE id = $1 AND state = 'pending'
RETURNING *;

-- list_timers --
-- Timers by state (NULL: any) and kind (NULL: any), in due order
SELECT * FROM tideflow_timers
WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR kind = $2)
ORDER BY due_at, id
LIMIT $3;

-- due_soon --
-- Pending timers due by the horizon, earliest first (what the wheel should hold)
SELECT id, kind, due_at FROM tideflow_timers
WHERE state = 'pending' AND due_at <= $1
ORDER BY due_at, id
LIMIT $2;

-- due_soon_since --
-- Pending timers due by the horizon that a loader may not hold yet: due after what it
-- loaded before, or added (or moved) since a database time; earliest first
(SELECT id, kind, due_at FROM tideflow_timers
 WHERE state = 'pending' AND due_at <= $1 AND due_at > $2)
UNION
(SELECT id, kind, due_at FROM tideflow_timers
 WHERE state = 'pending' AND due_at <= $1 AND touched_at >= $3)
ORDER BY due_at, id
LIMIT $4;

-- db_now --
-- The database's clock (touched_at is in it)
SELECT now() AS db_now;

-- lock_due --
-- Claim pending timers for firing; rows another process is firing are skipped
SELECT * FROM tideflow_timers
WHERE id = ANY($1::text[]) AND state = 'pending'
ORDER BY due_at, id
FOR UPDATE SKIP LOCKED;

-- mark_fired --
-- Record firings (in the transaction that claimed them); touched_at is when it ended
UPDATE tideflow_timers
SET state = 'fired', fired_at = $2, attempts = attempts + 1, touched_at = now()
WHERE id = ANY($1::text[]);

-- purge_ended --
-- Delete at most $2 fired or cancelled timers that ended before $1, oldest first (rows
-- another process is deleting are skipped); how many
WITH gone AS (
    DELETE FROM tideflow_timers WHERE id IN (
        SELECT id FROM tideflow_timers
        WHERE state <> 'pending' AND touched_at < $1
        ORDER BY touched_at
        LIMIT $2
        FOR UPDATE SKIP LOCKED)
    RETURNING 1
)
SELECT count(*) AS n FROM gone;

-- retry_later --
-- A handler failed: count the attempt, keep the error, and move the due time
UPDATE tideflow_timers
SET attempts = attempts + 1, last_error = $2, due_at = $3, touched_at = now()
WHERE id = $1 AND state = 'pending'
RETURNING attempts;

-- upsert_schedule --
-- Create or replace a schedule
INSERT INTO tideflow_schedules (id, kind, spec, payload, catch_up, next_tick, state)
VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, $6, CASE WHEN $6::timestamptz IS NULL THEN 'ended' ELSE 'active' END)
ON CONFLICT (id) DO UPDATE SET
    kind = EXCLUDED.kind, spec = EXCLUDED.spec, payload = EXCLUDED.payload,
    catch_up = EXCLUDED.catch_up, next_tick = EXCLUDED.next_tick, state = EXCLUDED.state,
    updated_at = now()
RETURNING *;

-- lock_schedule --
-- A schedule, locked for planning its ticks
SELECT * FROM tideflow_schedules WHERE id = $1 FOR UPDATE;

-- get_schedule --
-- One schedule by id
SELECT * FROM tideflow_schedules WHERE id = $1;

-- list_schedules --
-- Schedules of a kind (NULL: any), by id
SELECT * FROM tideflow_schedules WHERE ($1::text IS NULL OR kind = $1) ORDER BY id;

-- advance_schedule --
-- Store the next tick after planning (NULL ends the schedule)
UPDATE tideflow_schedules
SET next_tick = $2, state = CASE WHEN $2::timestamptz IS NULL THEN 'ended' ELSE state END,
    updated_at = now()
WHERE id = $1;

-- cancel_schedule --
-- Stop a schedule (its already-started ticks are not touched)
UPDATE tideflow_schedules SET state = 'cancelled', next_tick = NULL, updated_at = now()
WHERE id = $1 AND state = 'active'
RETURNING id;

-- list_delayed --
-- Pending timers of a kind whose payload names a bus (held events), in due order
SELECT * FROM tideflow_timers
WHERE kind = $1 AND state = 'pending' AND payload->>'bus' = $2
ORDER BY due_at, id
LIMIT $3;

-- insert_timers --
-- Add many pending timers in one statement; rows whose id or key exists are left out
INSERT INTO tideflow_timers (id, kind, due_at, payload, idempotency_key)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::jsonb[], $5::text[])
ON CONFLICT DO NOTHING
RETURNING *;

-- get_timers_by_keys --
-- Timers by idempotency keys
SELECT * FROM tideflow_timers WHERE idempotency_key = ANY($1::text[]);
