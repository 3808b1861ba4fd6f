"""A wait for an instance's end that begins just after the end committed.

The runner of an instance tells the waiters of its end when the end commits,
then its task finishes and it leaves memory. A wait that begins in between
found the runner in memory, waited to be told -- and was never told: it
slept until its timeout (CI: `test_correlation`'s event-ref test, whose
second instance ended in the same group commit as the first).
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from tests.integration.durable_support import Calls, call_state, deploy, runtime, workflow
from tideflow.runtime.gateway import InstanceRow

ONE_CALL = workflow("one-call", [call_state("A", "inc", None)])


async def test_a_wait_begun_while_the_ended_runner_is_still_in_memory_returns_the_end(
    pool: asyncpg.Pool,
) -> None:
    calls = Calls()
    await deploy(pool, ONE_CALL)
    async with runtime(pool, calls) as rt:
        late: list[asyncio.Task[InstanceRow]] = []
        held_then: list[bool] = []
        told = rt.finished

        def finished(instance_id: str, row: Any = None) -> None:
            if row is None:
                # The end's done notification: it may come while the runner is still in
                # memory, when it told nobody (before the fix); here it never comes.
                return
            told(instance_id, row)
            # The end is committed and told; the runner is still in memory: a waiter now.
            held_then.append(rt.holds(instance_id))
            late.append(asyncio.ensure_future(rt.wait_for_completion(instance_id, None)))

        rt.finished = finished  # type: ignore[method-assign]
        row = await rt.start_instance("one-call", {"n": 1})
        first = await rt.wait_for_completion(row.id, 30)
        assert first.status == "completed"
        assert held_then == [True]  # the case under test: the runner was in memory
        # No timeout of its own: without the fix it never returns (the guard fails the test).
        async with asyncio.timeout(30):
            done = await late[0]
    assert done.status == "completed"
    assert done.output == {"n": 2}
