"""``$WORKFLOW.headers`` are stored with the instance: a takeover after a crash sees them."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from tests.integration.durable_support import Calls, call_state, deploy, runtime, workflow
from tideflow.node import hold_node
from tideflow.runtime.hosts.durable import DurableRuntime, RuntimeOptions

HEADERS = {"x-request-source": "billing"}
ECHO = workflow(
    "slow-headers",
    [
        call_state("A", "slow", "B"),
        {
            "name": "B",
            "type": "operation",
            "actions": [],
            "stateDataFilter": {"output": "${ {n, headers: $WORKFLOW.headers} }"},
            "end": True,
        },
    ],
)


async def test_a_takeover_replays_with_the_stored_headers(pool: asyncpg.Pool) -> None:
    calls = Calls()
    calls.gate = asyncio.Event()
    await deploy(pool, ECHO)
    options: dict[str, Any] = {"lease_seconds": 600.0, "take_over": True}
    async with hold_node(pool, "n1") as node:
        first = DurableRuntime(
            pool, RuntimeOptions(functions=calls.functions(), owner=node.owner, **options)
        )
        await first.start()
        row = await first.start_instance("slow-headers", {"n": 1}, headers=HEADERS)
        async with asyncio.timeout(10):
            while not calls.by_key:  # noqa: ASYNC110 -- the runner's task calls it
                await asyncio.sleep(0.02)
        await first.kill()  # a crash mid-call: only the database remembers the headers
    stored = await pool.fetchval("SELECT headers FROM tideflow_instances WHERE id = $1", row.id)
    assert stored is not None
    assert "billing" in stored
    calls.gate.set()
    async with (
        hold_node(pool, "n1") as node,
        runtime(pool, calls, owner=node.owner, **options) as second,
    ):
        assert second.reclaimed == 1
        done = await second.wait_for_completion(row.id, 10)
    assert (done.status, done.output) == ("completed", {"n": 2, "headers": HEADERS})
    assert "headers" not in done.to_json()
