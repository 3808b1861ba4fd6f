"""A restart under the same node id takes its own instances back at once, however long
their leases; a second live process with that id takes nothing (``tideflow.node``)."""

from __future__ import annotations

import asyncio
from datetime import datetime

import asyncpg

from tests.integration.durable_support import Calls, call_state, deploy, runtime, workflow
from tideflow.node import hold_node
from tideflow.runtime.hosts.durable import DurableRuntime, RuntimeOptions

SLOW = workflow("slow1", [call_state("A", "slow", None)])
LONG_LEASE = 600.0  # waiting it out would time the test out


class NoWait:
    """A clock whose sleeps end at once (the lock's retries)."""

    def now(self) -> datetime:
        raise NotImplementedError

    def monotonic(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


async def _running(pool: asyncpg.Pool, calls: Calls, owner: str) -> tuple[DurableRuntime, str]:
    """A runtime as ``owner`` with an instance in the middle of its slow call."""
    options = RuntimeOptions(
        functions=calls.functions(), owner=owner, lease_seconds=LONG_LEASE, take_over=True
    )
    rt = DurableRuntime(pool, options)
    await rt.start()
    assert rt.reclaimed == 0  # a first life: nothing to take back
    row = await rt.start_instance("slow1", {"n": 1})
    async with asyncio.timeout(10):
        while not calls.by_key:  # noqa: ASYNC110 -- the call is made by the runner's task
            await asyncio.sleep(0.02)
    return rt, row.id


async def test_a_restart_takes_its_leases_back_at_once(pool: asyncpg.Pool) -> None:
    calls = Calls()
    calls.gate = asyncio.Event()
    await deploy(pool, SLOW)
    async with hold_node(pool, "n1") as node:
        assert (node.held, node.owner) == (True, "n1")
        first, instance_id = await _running(pool, calls, node.owner)
        await first.kill()  # a crash: the lease stays
    calls.gate.set()
    async with hold_node(pool, "n1") as node:
        assert node.held
        options = {"owner": node.owner, "lease_seconds": LONG_LEASE, "take_over": True}
        async with runtime(pool, calls, **options) as second:
            assert second.reclaimed == 1
            done = await second.wait_for_completion(instance_id, 10)
    assert (done.status, done.output) == ("completed", {"n": 2})
    crashes = await pool.fetchval("SELECT crashes FROM tideflow_instances WHERE id = $1", done.id)
    assert crashes == 1  # counted as a crash, for the quarantine


async def test_a_second_live_process_with_the_id_takes_nothing(pool: asyncpg.Pool) -> None:
    calls = Calls()
    calls.gate = asyncio.Event()
    await deploy(pool, SLOW)
    async with hold_node(pool, "n1") as node:
        first, instance_id = await _running(pool, calls, node.owner)
        try:
            async with hold_node(pool, "n1", clock=NoWait()) as twin_node:
                assert not twin_node.held
                assert twin_node.owner.startswith("n1~")
                options = {"owner": twin_node.owner, "take_over": twin_node.held}
                async with runtime(pool, Calls(), **options) as twin:
                    assert twin.reclaimed is None
                    assert not twin.holds(instance_id)
            # the twin's stop released its own leases, not the first's
            lease = "SELECT lease_owner, lease_until > now() FROM tideflow_instances WHERE id = $1"
            assert tuple(await pool.fetchrow(lease, instance_id)) == ("n1", True)
            calls.gate.set()
            done = await first.wait_for_completion(instance_id, 10)
            assert done.status == "completed"
        finally:
            await first.stop()
    async with hold_node(pool, "n1") as again:
        assert again.held  # given back at the end of the block
