"""History retention against real PostgreSQL: ended instances, their journals and timelines
are deleted after their workflow's retention, in batches; waiting ones never (an injected
clock for "now"; the end times are the database's own)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from tests.integration.durable_support import Calls, call_state, deploy, workflow
from tideflow.clock import SYSTEM_CLOCK
from tideflow.db import load_queries
from tideflow.errors import InstanceNotFound
from tideflow.runtime.gateway import PostgresInstances
from tideflow.runtime.history import HistoryPurger
from tideflow.runtime.hosts.durable import DurableRuntime, RuntimeOptions
from tideflow.runtime.retention import parse_retention
from tideflow.testing import ManualClock

DAY = 86400.0
POLICY = parse_retention(["short.*=P1D", "keeper=forever"])  # the default: 30 days


def _one_call(wf_id: str, function: str = "inc") -> str:
    return workflow(wf_id, [call_state("A", function, None)])


WAITER = workflow(
    "short.wait",
    [
        {"name": "Wait", "type": "event", "onEvents": [{"eventRefs": ["go"]}], "transition": "C"},
        call_state("C", "inc", None),
    ],
    events=[{"name": "go", "type": "go", "source": "test"}],
)


def _boom(args: dict[str, Any], idempotency_key: str | None = None) -> int:
    raise ValueError("fails on purpose")


async def _ended(rt: DurableRuntime, workflow_id: str, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        row = await rt.start_instance(workflow_id, {"n": 0})
        done = await rt.wait_for_completion(row.id, 10)
        assert done.status in ("completed", "failed")
        ids.append(row.id)
    return ids


async def _rows(pool: asyncpg.Pool, table: str, ids: list[str]) -> int:
    column = "id" if table == "tideflow_instances" else "instance_id"
    return int(
        await pool.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = ANY($1)", ids)  # noqa: S608
    )


@pytest.fixture
async def history(pool: asyncpg.Pool) -> dict[str, list[str]]:
    """Ended and waiting instances of four workflows (made by the real durable runtime)."""
    for source in (_one_call("short.done"), _one_call("short.fail", "slow"), WAITER):
        await deploy(pool, source)
    await deploy(pool, _one_call("keeper"))
    await deploy(pool, _one_call("other"))
    calls = Calls()
    rt = DurableRuntime(pool, RuntimeOptions(functions={"inc": calls.inc, "slow": _boom}))
    await rt.start()
    try:
        made = {
            "short": await _ended(rt, "short.done", 3) + await _ended(rt, "short.fail", 1),
            "keeper": await _ended(rt, "keeper", 1),
            "other": await _ended(rt, "other", 1),
        }
        cancelled = await rt.start_instance("short.wait", {"n": 0})
        waiting = await rt.start_instance("short.wait", {"n": 0})
        for row in (cancelled, waiting):
            async with asyncio.timeout(10):
                while (await rt.instances.get(row.id)).status != "waiting":  # noqa: ASYNC110
                    await asyncio.sleep(0.02)  # the runner parks it: progress in the database
        await rt.cancel(cancelled.id)
        made["short"].append(cancelled.id)
        made["waiting"] = [waiting.id]
    finally:
        await rt.stop()
    return made


async def test_ended_instances_go_after_their_workflows_retention_in_batches(
    pool: asyncpg.Pool, history: dict[str, list[str]]
) -> None:
    short, kept = history["short"], history["keeper"] + history["other"] + history["waiting"]
    assert await _rows(pool, "tideflow_journal", short) > 0
    assert await _rows(pool, "tideflow_timeline", short) > 0
    clock = ManualClock(SYSTEM_CLOCK.now())
    purger = HistoryPurger(pool, POLICY, clock=clock, batch=2, batches=2)

    assert await purger.purge() == 0  # everything ended just now
    clock.advance(DAY + 60)
    assert await purger.purge() == 4  # two batches of two: the fifth waits for the next pass
    assert await purger.purge() == 1
    assert await purger.purge() == 0
    for table in ("tideflow_instances", "tideflow_journal", "tideflow_timeline"):
        assert await _rows(pool, table, short) == 0, table
        assert await _rows(pool, table, kept) > 0, table
    with pytest.raises(InstanceNotFound):  # what the API answers with a 404
        await PostgresInstances(pool).get(short[0])
    # the waiting instance keeps its wait (and its correlation rows) whatever its age
    assert await _rows(pool, "tideflow_event_waits", history["waiting"]) == 1

    clock.advance(30 * DAY)
    assert await purger.purge() == 1  # "other", by the 30-day default
    assert await _rows(pool, "tideflow_instances", history["keeper"]) == 1  # kept for ever
    assert await _rows(pool, "tideflow_instances", history["waiting"]) == 1


async def test_the_background_pass_runs_on_its_clock(
    pool: asyncpg.Pool, history: dict[str, list[str]]
) -> None:
    clock = ManualClock(SYSTEM_CLOCK.now() + timedelta(days=2))
    purger = HistoryPurger(pool, POLICY, clock=clock, interval=60)
    await purger.start()
    try:
        assert await _rows(pool, "tideflow_instances", history["short"]) == 5
        clock.advance(60)
        async with asyncio.timeout(10):
            while await _rows(pool, "tideflow_instances", history["short"]):  # noqa: ASYNC110
                await asyncio.sleep(0.02)  # the supervised task's progress, in the database
        assert [h.name for h in purger.supervisor.health()] == ["history.purge"]
        assert all(h.up for h in purger.supervisor.health())
    finally:
        await purger.stop()


async def test_the_purge_finds_its_instances_through_an_index(pool: asyncpg.Pool) -> None:
    purge = load_queries("tideflow.runtime", "history.sql")["purge_history"]
    now = SYSTEM_CLOCK.now()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")  # an empty table: force the choice
        plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {purge}", ["a"], [now], 10))
    assert "tideflow_instances_ended" in plan
