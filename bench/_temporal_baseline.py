"""The hand-written Temporal workflows ``bench/temporal.py`` compares Tideflow against.

In a module of its own so that Temporal's sandbox can import it (a workflow
defined in ``__main__`` cannot be re-imported for each run).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import activity, workflow


@activity.defn(name="bench.inc")
async def inc(n: int) -> int:
    """Input plus one: the function of ``seq3``."""
    return n + 1


@workflow.defn(name="bench.seq3")
class Seq3:
    """Three sequential activities, each returning its input plus one."""

    @workflow.run
    async def run(self, n: int) -> int:
        for _ in range(3):
            n = await workflow.execute_activity(
                "bench.inc", n, result_type=int, start_to_close_timeout=timedelta(seconds=30)
            )
        return n


@workflow.defn(name="bench.waiter")
class Waiter:
    """Waits for one signal and completes with it."""

    def __init__(self) -> None:
        self.got: dict[str, Any] | None = None

    @workflow.signal(name="go")
    def go(self, event: dict[str, Any]) -> None:
        self.got = event

    @workflow.run
    async def run(self) -> dict[str, Any] | None:
        await workflow.wait_condition(lambda: self.got is not None)
        return self.got
