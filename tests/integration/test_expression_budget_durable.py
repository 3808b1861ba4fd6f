"""The durable host under the expression budget: a runaway fails its own instance only."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import pytest

from tests.integration.durable_support import Calls, call_state, deploy, runtime, workflow
from tideflow import expression_budget
from tideflow.expression_budget import Budget


def _filtered(wf_id: str, expression: str) -> str:
    """A workflow: a call, then an inject state whose output filter is ``expression``."""
    return workflow(
        wf_id,
        [
            call_state("A", "inc", "B"),
            {
                "name": "B",
                "type": "inject",
                "data": {},
                "stateDataFilter": {"output": expression},
                "end": True,
            },
        ],
    )


@pytest.fixture
def budget() -> Iterator[None]:
    expression_budget.configure(Budget(seconds=5, memory_bytes=64 * 1024 * 1024))
    yield
    expression_budget.configure(Budget())


async def test_a_runaway_data_filter_fails_its_instance_with_the_limit_code(
    pool: asyncpg.Pool, budget: None
) -> None:
    calls = Calls()
    await deploy(pool, _filtered("loops", "${ def f: f; f }"))
    await deploy(pool, _filtered("bombs", "${ def f: [f]; f }"))
    await deploy(pool, _filtered("healthy", "${ reduce range(3) as $i (.; .n += $i) }"))
    async with runtime(pool, calls) as rt:
        loops = await rt.start_instance("loops", {"n": 1})
        bombs = await rt.start_instance("bombs", {"n": 1})
        healthy = await rt.start_instance("healthy", {"n": 1})
        looped = await rt.wait_for_completion(loops.id, 20)
        bombed = await rt.wait_for_completion(bombs.id, 20)
        done = await rt.wait_for_completion(healthy.id, 20)
        timeline = await rt.instances.timeline(loops.id)
    assert looped.status == "failed"
    assert looped.error is not None
    assert looped.error["code"] == "EXPRESSION_TIME_LIMIT"
    assert bombed.status == "failed"
    assert bombed.error is not None
    assert bombed.error["code"] == "EXPRESSION_MEMORY_LIMIT"
    assert done.status == "completed"
    assert done.output == {"n": 5}
    entered = [t.step_key for t in timeline if t.kind == "state.entered"]
    assert entered == ["A", "B"]  # the replay after the evaluation wrote no step twice
    assert sorted(calls.by_key.values()) == [1, 1, 1]  # nor called a function again


async def test_a_slow_but_finite_expression_completes_after_its_replay(
    pool: asyncpg.Pool, budget: None
) -> None:
    expression_budget.configure(Budget(seconds=60))
    calls = Calls()
    slow = "${ . + {count: (reduce range(1000000) as $i (0; . + 1))} }"
    await deploy(pool, _filtered("slow", slow))
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("slow", {"n": 1})
        done = await rt.wait_for_completion(row.id, 30)
        timeline = await rt.instances.timeline(row.id)
    assert done.status == "completed"
    assert done.output == {"n": 2, "count": 1000000}
    assert [t.kind for t in timeline].count("state.entered") == 2
    assert list(calls.by_key.values()) == [1]
