"""A plain ``def`` function on a Temporal worker holds its call only, not the worker.

The worker's event loop runs every activity, local activity and heartbeat of the
worker, so the invoker of a Temporal worker runs plain ``def`` callables on its own
threads (``FunctionInvoker(sync_threads=...)``). Here one instance's function
blocks (on a ``threading.Event``, bounded) until the test lets it go; another
instance, started after it blocked, must complete meanwhile. On the event loop the
first call would hold the worker: the second instance could not run until the
first gave up, and the first would answer that it was never released.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support.temporal import DevServer
from tideflow import ids
from tideflow.deploy import deploy_definition
from tideflow.runtime.functions import FunctionInvoker
from tideflow.runtime.gateway import PostgresRegistry
from tideflow.runtime.hosts.temporal import (
    WORKFLOW_TYPE,
    InstanceActivities,
    InstanceStart,
    instance_worker,
)

HOLD_AT_MOST = 30.0
"""Seconds the blocking function waits to be let go (only a failing run waits this long)."""


class Gate:
    """What the blocking function and the test share."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.threads: list[str] = []

    def hold(self, args: dict[str, Any]) -> dict[str, Any]:
        """Block until released (a slow plain ``def``); answer whether it was."""
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        return {"released": self.release.wait(HOLD_AT_MOST), "n": args["n"]}

    def quick(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"n": args["n"] + 1}


def _calling(wf_id: str, function: str) -> dict[str, Any]:
    return {
        "id": wf_id,
        "version": "1",
        "specVersion": "0.8",
        "start": "Call",
        "functions": [{"name": function, "type": "custom", "operation": "rest:post:http://x/y"}],
        "states": [
            {
                "name": "Call",
                "type": "operation",
                "actions": [{"functionRef": {"refName": function, "arguments": {"n": "${ .n }"}}}],
                "end": True,
            }
        ],
    }


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
async def activities(pool: Any, tmp_path: Path, gate: Gate) -> AsyncIterator[InstanceActivities]:
    async def publish(_: str, batch: Sequence[dict[str, Any]]) -> None:
        pass

    invoker = FunctionInvoker(overrides={"hold": gate.hold, "quick": gate.quick}, sync_threads=4)
    yield InstanceActivities(PostgresRegistry(pool), invoker, publish, base_dir=tmp_path)
    gate.release.set()  # a failed test's blocked thread ends
    await invoker.aclose()


async def test_a_blocking_def_function_does_not_stall_another_instance(
    pool: Any, temporal_server: DevServer, activities: InstanceActivities, gate: Gate
) -> None:
    from temporalio.client import Client

    registry = PostgresRegistry(pool)
    for wf_id, function in (("sync-hold", "hold"), ("sync-quick", "quick")):
        text = json.dumps(_calling(wf_id, function))
        await deploy_definition(registry, text, "application/json")
    client = await Client.connect(temporal_server.address, namespace=temporal_server.namespace)
    queue = f"sync-{ids.new_id()}"
    async with instance_worker(client, queue, activities):

        async def start(wf_id: str, n: int) -> Any:
            instance_id = ids.new_id()
            begin = InstanceStart(workflow_id=wf_id, input={"n": n}, instance_id=instance_id)
            return await client.start_workflow(
                WORKFLOW_TYPE, begin, id=instance_id, task_queue=queue
            )

        held = await start("sync-hold", 1)
        assert await asyncio.to_thread(gate.entered.wait, HOLD_AT_MOST)
        quick = await start("sync-quick", 41)
        async with asyncio.timeout(HOLD_AT_MOST * 2):
            quick_done = await quick.result()
            released_before = gate.release.is_set()
            gate.release.set()
            held_done = await held.result()
    assert quick_done["output"] == {"n": 42}
    assert not released_before
    # the blocked call was let go by the test, after the other instance completed
    assert held_done["output"] == {"released": True, "n": 1}
    (thread,) = gate.threads
    assert thread.startswith("tideflow-function")
