"""A batched delivery and the first writes of the runs it resumes are one transaction.

``WaitDelivery.deliver_many`` keeps its transaction open while the instances it claimed
resume here (``tideflow.runtime.journal.Stage``): a run that ends at once ends in the
delivery's commit (one fsync, not two); a run that needs work outside first (a call)
makes it only after the delivery committed; a failed write rolls the delivery back and
leaves the wait open for the event to be delivered again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from tests.integration.durable_support import Calls, approval_workflow, deploy, runtime
from tests.integration.test_journal_linger import WAIT_THEN_END
from tideflow.errors import StoreError
from tideflow.runtime.hosts.durable import DurableRuntime, RuntimeOptions
from tideflow.testing import ManualClock

EVENT = {"specversion": "1.0", "id": "e1", "source": "test", "type": "go", "data": {}}


async def _until(predicate: Any) -> None:
    async with asyncio.timeout(10):
        while not await predicate():  # noqa: ASYNC110 -- progress lives in the database
            await asyncio.sleep(0.02)


async def _parked(rt: DurableRuntime, workflow_id: str) -> tuple[str, str]:
    """Start an instance; once it is parked on its wait: its id and wait key."""
    row = await rt.start_instance(workflow_id, {"n": 0})

    async def parked() -> bool:
        return rt.running == 0 and (await rt.instances.get(row.id)).status == "waiting"

    await _until(parked)
    [wait] = await rt.instances.waits(row.id)
    return row.id, wait["wait_key"]


async def test_a_delivery_and_the_end_it_resumes_commit_together(pool: asyncpg.Pool) -> None:
    # Fails on the old code: the delivery committed alone, the end in a group commit after it
    await deploy(pool, WAIT_THEN_END)
    async with runtime(pool, Calls()) as rt:
        instance_id, wait_key = await _parked(rt, "wait_then_end")
        rt.writer.linger = 3600.0  # nothing of the run is committed alone
        before = rt.writer.commits
        assert await rt.deliver_many([(instance_id, wait_key, [EVENT])]) == [True]
        done = await rt.wait_for_completion(instance_id, 10)
        group_commits = rt.writer.commits - before
    assert done.status == "completed"
    assert group_commits == 0
    # One transaction wrote the wait's result, the resumed run's rows and the end
    delivered = await pool.fetchval(
        "SELECT xmin::text FROM tideflow_journal WHERE instance_id = $1 AND op = 'wait'",
        instance_id,
    )
    ended = await pool.fetchval(
        "SELECT xmin::text FROM tideflow_instances WHERE id = $1", instance_id
    )
    left = await pool.fetchval(
        "SELECT xmin::text FROM tideflow_timeline WHERE instance_id = $1"
        " AND strpos(detail::text, $2) > 0",
        instance_id,
        '"state.left", "Wait"',
    )
    assert (delivered, left) == (ended, ended)


async def test_the_delivery_times_its_commit_on_the_runtimes_clock(pool: asyncpg.Pool) -> None:
    # Fails on the old code: the staged commit was timed on time.monotonic, not the clock
    await deploy(pool, WAIT_THEN_END)
    rt = DurableRuntime(pool, RuntimeOptions(functions=Calls().functions()), clock=ManualClock())
    async with rt:
        instance_id, wait_key = await _parked(rt, "wait_then_end")
        rt.writer.linger = 3600.0  # the run's end goes with the delivery: its only commit
        durations: list[float] = []
        rt.writer.on_commit = durations.append
        assert await rt.deliver_many([(instance_id, wait_key, [EVENT])]) == [True]
        done = await rt.wait_for_completion(instance_id, 10)
    assert done.status == "completed"
    assert durations == [0.0]  # the manual clock never moved


async def test_an_end_that_fails_to_write_leaves_the_wait_open(pool: asyncpg.Pool) -> None:
    await deploy(pool, WAIT_THEN_END)
    async with runtime(pool, Calls()) as rt:
        instance_id, wait_key = await _parked(rt, "wait_then_end")
        # The end's write fails inside the delivery's transaction (a real PostgreSQL error)
        await pool.execute(
            """
            CREATE FUNCTION refuse_end() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'refused'; END $$;
            CREATE TRIGGER refuse_end BEFORE UPDATE ON tideflow_instances FOR EACH ROW
            WHEN (NEW.status = 'completed') EXECUTE FUNCTION refuse_end();
            """
        )
        with pytest.raises(StoreError, match="refused"):
            await rt.deliver_many([(instance_id, wait_key, [EVENT])])

        async def gone() -> bool:
            return rt.running == 0

        await _until(gone)
        row = await rt.instances.get(instance_id)
        assert row.status == "waiting"
        assert row.lease_owner is None
        assert [w["wait_key"] for w in await rt.instances.waits(instance_id)] == [wait_key]
        journaled = await pool.fetchval(
            "SELECT count(*) FROM tideflow_journal WHERE instance_id = $1 AND op = 'wait'",
            instance_id,
        )
        assert journaled == 0
        # The event handed over again (as the subscription does) is taken by the open wait
        await pool.execute("DROP TRIGGER refuse_end ON tideflow_instances")
        assert await rt.deliver_many([(instance_id, wait_key, [EVENT])]) == [True]
        done = await rt.wait_for_completion(instance_id, 10)
    assert done.status == "completed"


class _Observer(Calls):
    """``inc`` notes, at each call, whether the instance's delivery is committed."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__()
        self.pool = pool
        self.seen: list[int] = []

    async def inc_async(self, args: dict[str, Any], idempotency_key: str | None = None) -> int:
        async with self.pool.acquire() as conn:  # another connection: committed rows only
            self.seen.append(
                await conn.fetchval("SELECT count(*) FROM tideflow_journal WHERE op = 'wait'")
            )
        return self.inc(args, idempotency_key)

    def functions(self) -> dict[str, Any]:
        return {**super().functions(), "inc": self.inc_async}


async def test_a_call_after_the_event_is_made_after_the_delivery_committed(
    pool: asyncpg.Pool,
) -> None:
    await deploy(pool, approval_workflow("approval"))
    calls = _Observer(pool)
    async with runtime(pool, calls) as rt:
        instance_id, wait_key = await _parked(rt, "approval")
        event = {**EVENT, "type": "approved", "data": {"ok": True}}
        assert await rt.deliver_many([(instance_id, wait_key, [event])]) == [True]
        done = await rt.wait_for_completion(instance_id, 10)
    assert done.status == "completed"
    assert calls.seen == [0, 1]  # the call on the event's branch saw the delivery committed
