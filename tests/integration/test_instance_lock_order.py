"""The delivery's claim and the journal's group commit lock instances in one order (by id).

Two statements locking overlapping sets of ``tideflow_instances`` rows in different orders
deadlock (PostgreSQL breaks the cycle after ``deadlock_timeout``, a second, and one of them
is retried). Both statements lock every instance they touch first, in id order: while the
lowest id is held elsewhere, such a statement holds none of the others -- which is what
these tests check, with that row held by a transaction of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import asyncpg

from tests.integration.durable_support import Calls, approval_workflow, deploy, runtime
from tideflow.runtime import gateway
from tideflow.runtime.rows import Commit

APPROVAL = approval_workflow("approval_lock_order")
_PROBES = {
    "tideflow_instances": "SELECT 1 FROM tideflow_instances WHERE id = $1 FOR UPDATE NOWAIT",
    "tideflow_event_waits": (
        "SELECT 1 FROM tideflow_event_waits WHERE instance_id = $1 FOR UPDATE NOWAIT"
    ),
}


async def _parked_three(pool: asyncpg.Pool) -> tuple[list[str], dict[str, str]]:
    """Three instances parked on their event waits (no runtime left): sorted ids, wait keys."""
    await deploy(pool, APPROVAL)
    async with runtime(pool, Calls()) as rt:
        ids = sorted(
            [(await rt.start_instance("approval_lock_order", {"n": n})).id for n in range(3)]
        )
        async with asyncio.timeout(10):
            while rt.running or await pool.fetchval(  # noqa: ASYNC110 -- progress in the database
                "SELECT count(*) FROM tideflow_instances"
                " WHERE id = ANY($1) AND status <> 'waiting'",
                ids,
            ):
                await asyncio.sleep(0.02)
        keys = {i: (await rt.instances.waits(i))[0]["wait_key"] for i in ids}
    return ids, keys


async def _blocked_on_lowest(
    pool: asyncpg.Pool, ids: list[str], statement: Any
) -> tuple[list[str], Any]:
    """Run ``statement(conn)`` while ``ids[0]`` is held.

    Returns:
        The rows it held once it waited (none when it locks in id order), and its result.
    """
    holder = await pool.acquire()
    runner = await pool.acquire()
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT 1 FROM tideflow_instances WHERE id = $1 FOR UPDATE", ids[0])
        pid = runner.get_server_pid()
        task: asyncio.Task[Any] = asyncio.create_task(_awaited(statement(runner)))
        async with asyncio.timeout(10):
            while not await pool.fetchval(  # noqa: ASYNC110 -- the server's lock table
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
            ):
                await asyncio.sleep(0.01)
        held = []
        for other in ids[1:]:
            for table, probe in _PROBES.items():
                try:  # autocommitted: released at once
                    await pool.fetch(probe, other)
                except asyncpg.LockNotAvailableError:
                    held.append(f"{table}:{other}")
        await tx.rollback()
        async with asyncio.timeout(10):
            result = await task
        return held, result
    finally:
        await pool.release(runner)
        await pool.release(holder)


async def _awaited(value: Awaitable[Any]) -> Any:
    return await value


def _event(n: int) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"e{n}", "source": "test", "type": "approved", "data": {}}


async def test_deliver_claim_takes_its_instances_in_id_order_before_the_waits(
    pool: asyncpg.Pool,
) -> None:
    ids, keys = await _parked_three(pool)
    answers = [(i, keys[i], [_event(n)]) for n, i in enumerate(reversed(ids))]  # highest first

    held, rows = await _blocked_on_lowest(
        pool, ids, lambda conn: gateway.deliver_claim(conn, answers, "owner-x", 30, [True] * 3)
    )

    assert held == []  # neither the other instances nor their waits while it waits for the first
    assert sorted(r.id for r in rows) == ids
    assert all(r.claimed for r in rows)


async def test_group_commit_takes_its_instances_in_id_order(pool: asyncpg.Pool) -> None:
    ids, _ = await _parked_three(pool)
    await pool.execute(
        "UPDATE tideflow_instances SET status = 'running', lease_owner = 'owner-x'"
        " WHERE id = ANY($1)",
        ids,
    )
    order = list(reversed(ids))  # the writer sorts them; the statement must not depend on it
    renew = (None, None, False, int(Commit.RENEWED), None, None, None, None)
    params: list[Any] = ["owner-x", 30.0, *([[]] * 6), order]
    params += [[renew[c] for _ in order] for c in range(8)]
    params += [[]] * (5 + 7 + 7 + 1)  # no journal entries, timeline rows, waits, headers

    held, rows = await _blocked_on_lowest(
        pool, ids, lambda conn: gateway.commit_batch(conn, params)
    )

    assert [h for h in held if h.startswith("tideflow_instances")] == []
    assert sorted(r.id for r in rows) == ids
    assert {r.action for r in rows} == {Commit.RENEWED}
