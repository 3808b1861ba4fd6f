"""An in-memory sleep of the durable host never ends before its due time (lateMs >= 0),
even on a clock whose sleeps wake early, as uvloop's millisecond rounding made them."""

from __future__ import annotations

import asyncio

import asyncpg

from tests.integration.durable_support import Calls, call_state, deploy, workflow
from tideflow.clock import SystemClock
from tideflow.runtime.hosts.durable import DurableRuntime, RuntimeOptions

NAP = workflow(
    "nap",
    [
        {"name": "Nap", "type": "sleep", "duration": "PT0.05S", "transition": "C"},
        call_state("C", "inc", None),
    ],
)


class EarlyWaker(SystemClock):
    """The real clock, whose sleeps end 0.9 ms before the time asked for."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds - 0.0009))


async def test_an_in_memory_sleep_is_never_late_negative(pool: asyncpg.Pool) -> None:
    calls = Calls()
    await deploy(pool, NAP)
    rt = DurableRuntime(pool, RuntimeOptions(functions=calls.functions()), clock=EarlyWaker())
    await rt.start()
    try:
        rows = [await rt.start_instance("nap", {"n": i}) for i in range(5)]
        for row in rows:
            assert (await rt.wait_for_completion(row.id, 10)).status == "completed"
        late = [
            entry.detail["lateMs"]
            for row in rows
            for entry in await rt.instances.timeline(row.id)
            if entry.kind == "timer.fired"
        ]
    finally:
        await rt.stop()
    assert len(late) == 5
    assert min(late) >= 0, late
