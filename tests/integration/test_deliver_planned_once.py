"""A consumer's wait session plans ``deliver_claim`` once, not at every event.

``deliver_claim``'s custom plans look cheaper than its generic one (its ``unnest()`` arrays),
so PostgreSQL planned it anew at every delivery -- 0.36-0.5 ms of the served event path, for
longer than it ran (``bench/RESULTS.md``, h13g). The connection a wait session holds now
plans its statements once (``plan_once``), and goes back to the pool with the default.
"""

from __future__ import annotations

import contextlib

import asyncpg

from tests.integration.durable_support import Calls, deploy, runtime
from tests.integration.test_deliver_and_end import EVENT, _parked
from tests.integration.test_journal_linger import WAIT_THEN_END
from tideflow.db import load_queries
from tideflow.runtime.hosts.durable import DurableRuntime
from tideflow.runtime.waits import EventWaits
from tideflow.testing import ManualClock

DELIVERIES = 8  # more than the 5 custom plans PostgreSQL makes before it may choose


async def test_a_wait_sessions_deliveries_are_planned_once(pool: asyncpg.Pool) -> None:
    # Fails on the old code: every delivery was a custom plan, (custom, generic) = (8, 0)
    await deploy(pool, WAIT_THEN_END)
    # A real trigger on the wait's journal row (deliver_claim's insert) notes, in the
    # delivering backend, how often the statement was planned each way so far
    await pool.execute(
        """
        CREATE TABLE seen_plans (n serial, custom bigint, generic bigint);
        CREATE FUNCTION note_plans() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO seen_plans (custom, generic)
            SELECT custom_plans, generic_plans FROM pg_prepared_statements
            WHERE statement LIKE '%AS u(instance_id, wait_key, entry, claimable)%';
            RETURN NEW;
        END $$;
        CREATE TRIGGER note_plans BEFORE INSERT ON tideflow_journal FOR EACH ROW
        WHEN (NEW.op = 'wait') EXECUTE FUNCTION note_plans();
        """
    )
    async with runtime(pool, Calls()) as rt:
        waits = EventWaits(pool, rt.delivery)
        try:
            for _ in range(DELIVERIES):
                instance_id, wait_key = await _parked(rt, "wait_then_end")
                async with waits.session() as session:
                    taken = await session.answer_many([(instance_id, wait_key, [EVENT])])
                assert taken == [True]
                done = await rt.wait_for_completion(instance_id, 10)
                assert done.status == "completed"
        finally:
            await waits.close()
    seen = [tuple(r) for r in await pool.fetch("SELECT custom, generic FROM seen_plans ORDER BY n")]
    assert seen == [(0, n) for n in range(1, DELIVERIES + 1)]
    # The session's own: every connection of the pool (the held one among them) is back to
    # the default
    async with contextlib.AsyncExitStack() as stack:
        conns = [
            await stack.enter_async_context(pool.acquire()) for _ in range(pool.get_max_size())
        ]
        modes = {await conn.fetchval("SHOW plan_cache_mode") for conn in conns}
    assert modes == {"auto"}


async def test_the_held_connections_plans_are_made_again_after_a_second(
    pool: asyncpg.Pool,
) -> None:
    # Fails on the old code: no clock, the plans were never dropped. A plan made while a table
    # was small scans it; made again, it is made for the table as it is then
    clock = ManualClock()
    waits = EventWaits(pool, DurableRuntime(pool).delivery, clock)

    async def last_statement(pid: int) -> str:
        query = await pool.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid)
        lines = [line for line in str(query).splitlines() if not line.startswith("--")]
        return lines[0].split()[0]

    try:
        async with waits.session() as session:
            pass
        pid = await pool.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE '%SET plan_cache_mode%'"
            " AND datname = current_database() AND pid <> pg_backend_pid()"
        )
        first = await last_statement(pid)
        async with waits.session() as session:
            await session.match([])  # a lookup: the plans are kept
        clock.advance(0.5)
        async with waits.session() as session:
            await session.match([])
        kept = await last_statement(pid)
        clock.advance(0.5)
        async with waits.session() as session:
            pass
        again = await last_statement(pid)
    finally:
        await waits.close()
    assert (first, kept, again) == ("SET", "SELECT", "DISCARD")


async def test_the_lookup_probes_each_events_keys_on_its_generic_plan(pool: asyncpg.Pool) -> None:
    # Fails on the old code: with 1,500 open keys, its generic plan (the held connection's)
    # scanned every key for each lookup -- it takes 10 events a call, and 10 probes looked
    # dearer than one scan (0.33 ms a lookup in bench/http_path.py's event part)
    match = load_queries("tideflow.runtime", "waits.sql")["match_waits"]
    await pool.execute(
        "INSERT INTO tideflow_correlation_keys"
        " SELECT 't', jsonb_build_object('k', 'v' || g), '', 'i' || g, 'w', 'e', false"
        " FROM generate_series(1, 1500) g"
    )
    await pool.execute("ANALYZE tideflow_correlation_keys")
    async with pool.acquire() as conn:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE m(int[], text[], jsonb[], text[]) AS {match}")
        rows = await conn.fetch(
            "EXPLAIN EXECUTE m(ARRAY[0], ARRAY['t'], ARRAY['{\"k\": \"v5\"}'::jsonb], ARRAY[''])"
        )
        await conn.execute("DEALLOCATE m; RESET plan_cache_mode")
    plan = "\n".join(r[0] for r in rows)
    assert "Seq Scan on tideflow_correlation_keys k " not in plan
    assert "Index Scan using tideflow_correlation_keys_pkey on tideflow_correlation_keys k " in plan
