"""Loops of expressions only give the event loop turns (issue 11: ``/healthz`` never waits on them).

Two measures, both without a real clock:

* **By count** (a run without a host's pace): a neighbour task on the same
  event loop counts the passes it gets while a 2,000-item loop whose
  iterations only evaluate expressions runs. Without the yield points it got
  a handful (the iterations never await anything); with them, at least one
  per group of ``ITERATIONS_PER_TURN`` iterations.
* **By the host's clock** (:class:`ClockPace`, what the durable and local
  hosts give): every timeline step costs 1 ms on a :class:`ManualClock` (the
  work an iteration does, simulated), and the neighbour notes the clock at
  each of its passes. The longest the run held the loop -- the longest gap
  between two passes -- is at most the pace's slice plus what one iteration
  costs, however the loop is written; counting iterations would let 16 of
  them hold it.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.unit.interp_support import run, workflow
from tests.unit.test_dsl1_interpreter import workflow as dsl1_workflow
from tideflow.runtime._turns import ITERATIONS_PER_TURN, CountedPace, gather_in_turns
from tideflow.runtime.dsl1 import Interpreter as Dsl1Interpreter
from tideflow.runtime.effects import Pace
from tideflow.runtime.fake import ScriptedEffects
from tideflow.runtime.hosts.plumbing import ClockPace
from tideflow.runtime.result import Completed, RunResult, Step
from tideflow.testing import ManualClock

ITEMS = 2_000
AT_LEAST = ITEMS // ITERATIONS_PER_TURN
STEP_COST = 0.001
"""Simulated seconds each timeline step costs (the clock-paced tests)."""
SLICE = 0.005


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


async def _longest_hold(
    start: Callable[[Callable[[Step], None], Pace], Awaitable[RunResult]],
) -> tuple[RunResult, float]:
    """Run ``start(on_step, pace)`` with every step costing ``STEP_COST`` on a manual
    clock and a :class:`ClockPace` of ``SLICE`` on it; return its result and the longest
    clock time between two passes a neighbour task got."""
    clock = ManualClock()
    stamps: list[float] = []
    done = False

    async def neighbour() -> None:
        while not done:
            await asyncio.sleep(0)
            stamps.append(clock.monotonic())

    ticking = asyncio.create_task(neighbour())
    await asyncio.sleep(0)
    stamps.append(clock.monotonic())
    try:
        result = await start(lambda _: clock.advance(STEP_COST), ClockPace(clock.monotonic, SLICE))
    finally:
        done = True
        await ticking
    stamps.append(clock.monotonic())
    return result, max(b - a for a, b in itertools.pairwise(stamps))


def _one_iteration(result: RunResult, iterations: int) -> float:
    """What one iteration costs: its share of the run's steps (rounded up), in clock time."""
    return math.ceil(len(result.timeline) / iterations) * STEP_COST


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


MODES = pytest.mark.parametrize(
    "mode",
    [{}, {"mode": "sequential"}, {"batchSize": 5}],
    ids=["parallel", "sequential", "batches"],
)

FOR_LOOP = """
do:
  - loop:
      for: {each: n, in: '.numbers'}
      do:
        - add: {set: {sum: '${ .sum + $n }'}}
"""
THEN_LOOP = """
do:
  - count:
      set: {n: '${ .n + 1 }'}
  - again:
      switch:
        - more: {when: '.n < 2000', then: count}
        - done: {then: exit}
"""


@MODES
async def test_an_expression_only_foreach_lets_its_neighbours_run(mode: dict[str, Any]) -> None:
    result, passes = await _passes_during(run(_foreach(**mode), {"items": list(range(ITEMS))}))
    assert isinstance(result, Completed), result
    assert result.output["out"] == [2 * i for i in range(ITEMS)]  # in order, as before
    assert passes >= AT_LEAST


async def test_a_dsl1_for_of_expressions_lets_its_neighbours_run() -> None:
    numbers = list(range(ITEMS))
    result, passes = await _passes_during(
        Dsl1Interpreter(dsl1_workflow(FOR_LOOP)).run(
            {"sum": 0, "numbers": numbers}, ScriptedEffects()
        )
    )
    assert result.output == {"sum": sum(numbers)}
    assert passes >= AT_LEAST


async def test_a_dsl1_then_loop_lets_its_neighbours_run() -> None:
    result, passes = await _passes_during(
        Dsl1Interpreter(dsl1_workflow(THEN_LOOP)).run({"n": 0}, ScriptedEffects())
    )
    assert result.output == {"n": ITEMS}
    assert passes >= AT_LEAST


@MODES
async def test_a_foreach_holds_the_loop_at_most_a_slice_of_the_hosts_clock(
    mode: dict[str, Any],
) -> None:
    definition = _foreach(**mode)
    result, longest = await _longest_hold(
        lambda on_step, pace: run(
            definition, {"items": list(range(ITEMS))}, on_step=on_step, pace=pace
        )
    )
    assert isinstance(result, Completed), result
    assert result.output["out"] == [2 * i for i in range(ITEMS)]
    assert longest <= SLICE + _one_iteration(result, ITEMS) + 1e-9


async def test_a_loop_of_states_holds_the_loop_at_most_a_slice() -> None:
    states = [
        {"name": "Add", "type": "inject", "data": {}, "transition": "Check",
         "stateDataFilter": {"output": "${ .n += 1 }"}},
        {"name": "Check", "type": "switch",
         "dataConditions": [{"condition": "${ .n < 500 }", "transition": "Add"}],
         "defaultCondition": {"end": True}},
    ]  # fmt: skip
    definition = workflow(states)
    result, longest = await _longest_hold(
        lambda on_step, pace: run(definition, {"n": 0}, on_step=on_step, pace=pace)
    )
    assert isinstance(result, Completed), result
    assert result.output == {"n": 500}
    assert longest <= SLICE + _one_iteration(result, 1_000) + 1e-9  # 1,000 states entered


@pytest.mark.parametrize(
    ("text", "data", "iterations"),
    [(FOR_LOOP, {"sum": 0, "numbers": list(range(ITEMS))}, ITEMS), (THEN_LOOP, {"n": 0}, ITEMS)],
    ids=["for", "then"],
)
async def test_dsl1_loops_hold_the_loop_at_most_a_slice(
    text: str, data: dict[str, Any], iterations: int
) -> None:
    interpreter = Dsl1Interpreter(dsl1_workflow(text))
    result, longest = await _longest_hold(
        lambda on_step, pace: interpreter.run(data, ScriptedEffects(), on_step=on_step, pace=pace)
    )
    assert isinstance(result, Completed), result
    assert longest <= SLICE + _one_iteration(result, iterations) + 1e-9


def test_a_clock_pace_is_due_after_its_slice_until_the_run_is_back() -> None:
    clock = ManualClock()
    pace = ClockPace(clock.monotonic, SLICE)
    clock.advance(SLICE / 2)
    assert not pace.due()
    clock.advance(SLICE / 2)
    first = pace.due()
    assert first
    assert pace.due() == first  # every iteration asking in the same pass waits as well
    clock.advance(SLICE * 3)
    pace.resumed(first)  # the slice starts again when the run has the loop back
    clock.advance(SLICE / 2)
    assert not pace.due()
    pace.resumed(first)  # a second iteration back from the same turn: the slice goes on
    clock.advance(SLICE / 2 + 1e-6)
    second = pace.due()
    assert second
    assert second != first
    pace.resumed(first)  # back from the earlier turn: the new one is still due
    assert pace.due() == second


def test_a_clock_pace_starts_a_new_slice_when_the_run_rested_on_an_effect() -> None:
    clock = ManualClock()
    pace = ClockPace(clock.monotonic, SLICE)
    clock.advance(SLICE * 2)  # a journal commit took longer than a slice
    pace.rested()  # ... and gave the loop its turn meanwhile
    clock.advance(SLICE * 5)  # a garbage collection before the run's next check
    assert not pace.due()  # is not the run's work: its slice is timed from the next check
    clock.advance(SLICE * 5)
    assert not pace.due()  # (a run that checks once between effects never reads the clock)
    clock.advance(SLICE * 1.5)
    turn = pace.due()
    assert turn  # the run has held the loop for a slice since
    pace.rested()  # a parallel branch came back from an effect: the turn was had
    assert not pace.due()
    pace.resumed(turn)  # the iteration that waited for it goes on in the new slice
    assert not pace.due()


def test_a_clock_pace_on_a_clock_that_does_not_move_is_due_after_its_checks() -> None:
    pace = ClockPace(ManualClock().monotonic, SLICE, checks=3)
    assert [bool(pace.due()) for _ in range(3)] == [False, False, True]
    pace.resumed(pace.due())
    assert [bool(pace.due()) for _ in range(3)] == [False, False, True]


async def test_a_failure_in_turns_cancels_the_rest_and_closes_the_unstarted() -> None:
    started: list[int] = []

    async def one(i: int) -> int:
        started.append(i)
        if i == 3:
            raise ValueError("three")
        await asyncio.sleep(3600)  # would hold the test if not cancelled
        return i

    with pytest.raises(ValueError, match="three"):
        await gather_in_turns([one(i) for i in range(ITERATIONS_PER_TURN * 4)], CountedPace())
    assert len(started) < ITERATIONS_PER_TURN * 4  # the last groups never began


async def test_turns_in_a_gather_begin_a_group_once_the_one_before_began() -> None:
    """Iterations that wait on something all begin (none is held back by the groups)."""
    gate = asyncio.Event()
    began: list[int] = []

    async def one(i: int) -> int:
        began.append(i)
        await gate.wait()
        return i

    gathering = asyncio.ensure_future(gather_in_turns([one(i) for i in range(100)], CountedPace()))
    for _ in range(100):  # a pass of the loop each, far more than the groups need
        await asyncio.sleep(0)
    assert sorted(began) == list(range(100))
    assert not gathering.done()
    gate.set()
    assert await gathering == list(range(100))
