"""Quarantine: an instance whose runners keep dying at the same step is failed, not run again.

Real PostgreSQL; each "crash" is :meth:`DurableRuntime.kill` (nothing handed back,
the lease runs out) while the instance is inside a step whose function never
returns until the test lets it -- the way a step that kills its process looks to
the next process that claims the instance.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from tests.integration.durable_support import call_state, deploy, workflow
from tideflow.runtime.hosts.durable import DurableRuntime, RuntimeOptions


class Held:
    """Functions ``inc`` and ``slow``; ``slow`` returns only once its step's gate is open."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.gates = {"B": asyncio.Event(), "C": asyncio.Event()}

    def inc(self, args: dict[str, Any], idempotency_key: str | None = None) -> int:
        self.calls[_step(idempotency_key)] += 1
        return int(args["n"]) + 1

    async def slow(self, args: dict[str, Any], idempotency_key: str | None = None) -> int:
        step = _step(idempotency_key)
        self.calls[step] += 1
        await self.gates[step].wait()
        return int(args["n"]) + 1

    async def runtime(self, pool: asyncpg.Pool) -> DurableRuntime:
        options = RuntimeOptions(
            functions={"inc": self.inc, "slow": self.slow}, lease_seconds=0.5, quarantine_after=2
        )
        rt = DurableRuntime(pool, options)
        await rt.start()
        return rt


def _step(key: str | None) -> str:
    """The state of a call from its idempotency key (``<instance>/<state>/...``)."""
    return (key or "").split("/")[1]


async def _until(predicate: Callable[[], bool | Awaitable[bool]], seconds: float = 15.0) -> None:
    """Poll ``predicate`` (another runtime's progress, not a clock) until true."""
    async with asyncio.timeout(seconds):
        while True:
            found = predicate()
            if found if isinstance(found, bool) else await found:
                return
            await asyncio.sleep(0.02)


STUCK = workflow(
    "stuck",
    [call_state("A", "inc", "B"), call_state("B", "slow", "C"), call_state("C", "inc", None)],
)
TWO_SLOW = workflow(
    "two-slow",
    [call_state("A", "inc", "B"), call_state("B", "slow", "C"), call_state("C", "slow", None)],
)
QUICK = workflow("quick", [call_state("A", "inc", None)])


async def test_an_instance_killing_its_runner_at_one_step_is_quarantined(
    pool: asyncpg.Pool,
) -> None:
    held = Held()
    await deploy(pool, STUCK)
    await deploy(pool, QUICK)
    first = await held.runtime(pool)
    row = await first.start_instance("stuck", {"n": 1})
    await _until(lambda: held.calls["B"] == 1)
    await first.kill()  # crash 1, inside B
    second = await held.runtime(pool)  # claims it once the lease ran out: B again
    await _until(lambda: held.calls["B"] == 2)
    await second.kill()  # crash 2, inside B again
    third = await held.runtime(pool)
    try:
        failed = await third.wait_for_completion(row.id, 15)
        quick = await third.start_instance("quick", {"n": 41})  # the rest runs as usual
        done = await third.wait_for_completion(quick.id, 15)
    finally:
        await third.stop()
    assert failed.status == "failed"
    assert failed.error is not None
    assert (failed.error["name"], failed.error["code"]) == ("quarantined", "QUARANTINED")
    assert "stopped 2 times" in failed.error["message"]
    assert "in state 'B'" in failed.error["message"]
    assert failed.error["state"] == "B"
    assert held.calls == {"A": 2, "B": 2}  # (A: QUICK's) B never a third time, C never
    assert (done.status, done.output) == ("completed", {"n": 42})


async def test_a_crash_after_progress_counts_from_one_again(pool: asyncpg.Pool) -> None:
    held = Held()
    await deploy(pool, TWO_SLOW)
    first = await held.runtime(pool)
    row = await first.start_instance("two-slow", {"n": 1})
    await _until(lambda: held.calls["B"] == 1)
    await first.kill()  # crash 1, inside B
    second = await held.runtime(pool)
    await _until(lambda: held.calls["B"] == 2)
    held.gates["B"].set()  # B finishes this time: the journal moves on
    await _until(lambda: held.calls["C"] == 1)
    await second.kill()  # crash 2, but inside C: a different step
    held.gates["C"].set()
    third = await held.runtime(pool)
    try:
        done = await third.wait_for_completion(row.id, 15)
    finally:
        await third.stop()
    assert (done.status, done.output) == ("completed", {"n": 4})
    assert held.calls == {"A": 1, "B": 2, "C": 2}
