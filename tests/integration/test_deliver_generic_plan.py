"""The staged delivery's write of the resumed runs runs on a generic plan.

``commit_batch``'s custom plans look cheaper than its generic one (its ``unnest()`` arrays),
so with a few thousand instances PostgreSQL planned it anew at every call -- about as long
as its execution, on the event path (``bench/RESULTS.md``, h13g). ``deliver_claim`` sets
``plan_cache_mode`` for the rest of the staged delivery's transaction only.
"""

from __future__ import annotations

import asyncpg

from tests.integration.durable_support import Calls, deploy, runtime
from tests.integration.test_deliver_and_end import EVENT, _parked
from tests.integration.test_journal_linger import WAIT_THEN_END


async def test_the_resumed_runs_end_is_written_on_a_generic_plan(pool: asyncpg.Pool) -> None:
    # Fails on the old code: the end's write saw plan_cache_mode 'auto'
    await deploy(pool, WAIT_THEN_END)
    # A real trigger notes the setting the end's write (commit_batch's UPDATE) runs under
    await pool.execute(
        """
        CREATE TABLE seen_plan_mode (mode text);
        CREATE FUNCTION note_plan_mode() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO seen_plan_mode VALUES (current_setting('plan_cache_mode'));
            RETURN NEW;
        END $$;
        CREATE TRIGGER note_plan_mode BEFORE UPDATE ON tideflow_instances FOR EACH ROW
        WHEN (NEW.status = 'completed') EXECUTE FUNCTION note_plan_mode();
        """
    )
    async with runtime(pool, Calls()) as rt:
        instance_id, wait_key = await _parked(rt, "wait_then_end")
        rt.writer.linger = 3600.0  # the run's end is written by its delivery only
        staged = rt.writer.staged_commits
        assert await rt.deliver_many([(instance_id, wait_key, [EVENT])]) == [True]
        done = await rt.wait_for_completion(instance_id, 10)
        assert rt.writer.staged_commits == staged + 1
    assert done.status == "completed"
    assert await pool.fetch("SELECT mode FROM seen_plan_mode") == [("force_generic_plan",)]
    # The transaction's own: every connection of the pool is back to the default
    modes = set()
    async with pool.acquire() as a, pool.acquire() as b, pool.acquire() as c:
        for conn in (a, b, c):
            modes.add(await conn.fetchval("SHOW plan_cache_mode"))
    assert modes == {"auto"}


async def test_a_delivery_in_a_callers_transaction_leaves_the_setting_alone(
    pool: asyncpg.Pool,
) -> None:
    await deploy(pool, WAIT_THEN_END)
    async with runtime(pool, Calls()) as rt:
        instance_id, wait_key = await _parked(rt, "wait_then_end")
        async with pool.acquire() as conn, conn.transaction():
            assert await rt.delivery.deliver_many([(instance_id, wait_key, [EVENT])], conn) == [
                True
            ]
            mode = await conn.fetchval("SHOW plan_cache_mode")
        done = await rt.wait_for_completion(instance_id, 10)
    assert done.status == "completed"
    assert mode == "auto"
