-- Timer service: durable one-shot timers and recurring schedules.
--
-- A timer is pending until one process fires it: the firing transaction
-- locks the row (FOR UPDATE SKIP LOCKED, so other processes skip it), runs
-- the kind's handler and marks the row fired before it commits. A crash
-- rolls the transaction back and leaves the timer pending: nothing is lost,
-- and a handler whose effect commits in that same transaction runs exactly
-- once in effect.

CREATE TABLE tideflow_timers (
    id text PRIMARY KEY,
    kind text NOT NULL,
    due_at timestamptz NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    state text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'fired', 'cancelled')),
    -- Optional caller key: adding a timer twice with one key adds it once.
    idempotency_key text UNIQUE,
    -- Set on the timers a schedule starts (one per tick).
    schedule_id text,
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- When the row was added or its due time moved (a retry): what a loader
    -- has not seen yet. Database time, like created_at.
    touched_at timestamptz NOT NULL DEFAULT now(),
    fired_at timestamptz
);

-- The loader's query: pending timers in due order.
CREATE INDEX tideflow_timers_pending ON tideflow_timers (due_at) WHERE state = 'pending';
CREATE INDEX tideflow_timers_kind ON tideflow_timers (kind, state, due_at);
-- The incremental loader's second question: pending timers added or moved lately.
CREATE INDEX tideflow_timers_touched ON tideflow_timers (touched_at) WHERE state = 'pending';

CREATE TABLE tideflow_schedules (
    id text PRIMARY KEY,
    kind text NOT NULL,
    -- The schedule in its serverless-workflow form (cron or interval, timezone, anchor).
    spec jsonb NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    catch_up text NOT NULL DEFAULT 'latest' CHECK (catch_up IN ('skip', 'latest', 'all')),
    -- The first tick not yet started; NULL once the schedule has ended.
    next_tick timestamptz,
    state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'ended', 'cancelled')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
