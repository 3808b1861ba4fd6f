"""Loops of expressions only give the event loop turns (issue 11: ``/healthz`` never waits on them).

A neighbour task on the same event loop counts the passes it gets while a
2,000-item loop whose iterations only evaluate expressions runs. Without the
yield points it got a handful (the iterations never await anything); with
them, at least one per group of ``ITERATIONS_PER_TURN`` iterations.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest

from tests.unit.interp_support import run, workflow
from tests.unit.test_dsl1_interpreter import run as run_dsl1
from tideflow.runtime._turns import ITERATIONS_PER_TURN, gather_in_turns
from tideflow.runtime.result import Completed

ITEMS = 2_000
AT_LEAST = ITEMS // ITERATIONS_PER_TURN


async def _passes_during(work: Awaitable[Any]) -> tuple[Any, int]:
    """Run ``work`` and count the passes of the event loop a neighbour task got meanwhile."""
    passes = 0
    done = False

    async def neighbour() -> None:
        nonlocal passes
        while not done:
            await asyncio.sleep(0)
            passes += 1

    ticking = asyncio.create_task(neighbour())
    await asyncio.sleep(0)  # the neighbour is waiting for its next pass
    passes = 0
    try:
        result = await work
    finally:
        done = True
        await ticking
    return result, passes


def _foreach(**more: Any) -> Any:
    state = {
        "name": "Each",
        "type": "foreach",
        "inputCollection": "${ .items }",
        "iterationParam": "item",
        "outputCollection": "${ .out }",
        "actions": [{"functionRef": "double"}],
        "end": True,
    }
    functions = [{"name": "double", "type": "expression", "operation": "${ .item * 2 }"}]
    return workflow([state | more], functions=functions)


@pytest.mark.parametrize(
    "mode",
    [{}, {"mode": "sequential"}, {"batchSize": 5}],
    ids=["parallel", "sequential", "batches"],
)
async def test_an_expression_only_foreach_lets_its_neighbours_run(mode: dict[str, Any]) -> None:
    result, passes = await _passes_during(run(_foreach(**mode), {"items": list(range(ITEMS))}))
    assert isinstance(result, Completed), result
    assert result.output["out"] == [2 * i for i in range(ITEMS)]  # in order, as before
    assert passes >= AT_LEAST


async def test_a_dsl1_for_of_expressions_lets_its_neighbours_run() -> None:
    text = """
do:
  - loop:
      for: {each: n, in: '.numbers'}
      do:
        - add: {set: {sum: '${ .sum + $n }'}}
"""
    numbers = list(range(ITEMS))
    result, passes = await _passes_during(run_dsl1(text, {"sum": 0, "numbers": numbers}))
    assert result.output == {"sum": sum(numbers)}
    assert passes >= AT_LEAST


async def test_a_dsl1_then_loop_lets_its_neighbours_run() -> None:
    text = """
do:
  - count:
      set: {n: '${ .n + 1 }'}
  - again:
      switch:
        - more: {when: '.n < 2000', then: count}
        - done: {then: exit}
"""
    result, passes = await _passes_during(run_dsl1(text, {"n": 0}))
    assert result.output == {"n": ITEMS}
    assert passes >= AT_LEAST


async def test_a_failure_in_turns_cancels_the_rest_and_closes_the_unstarted() -> None:
    started: list[int] = []

    async def one(i: int) -> int:
        started.append(i)
        if i == 3:
            raise ValueError("three")
        await asyncio.sleep(3600)  # would hold the test if not cancelled
        return i

    with pytest.raises(ValueError, match="three"):
        await gather_in_turns([one(i) for i in range(ITERATIONS_PER_TURN * 4)])
    assert len(started) < ITERATIONS_PER_TURN * 4  # the last groups never began
