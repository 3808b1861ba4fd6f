"""Expressions that can loop run in worker processes under a time and memory budget."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tideflow import expression_budget
from tideflow.errors import ExpressionError, ExpressionLimitExceeded
from tideflow.expression_budget import Budget, EvaluationPending, deferring, off_loop
from tideflow.workflow.expressions import compile_expression

LOOP = "${ def f: f; f }"
BOMB = "${ def f: [f]; f }"
# Finite, but longer than a deferring caller blocks for (tenths of a second).
SLOW = "${ reduce range(2000000) as $i (0; . + 1) }"


@pytest.fixture
def budget() -> Iterator[Budget]:
    chosen = Budget(seconds=0.5, memory_bytes=64 * 1024 * 1024, workers=2)
    expression_budget.configure(chosen)
    yield chosen
    expression_budget.configure(Budget())


def test_an_endless_loop_fails_with_the_time_limit_and_the_next_evaluation_works(
    budget: Budget,
) -> None:
    with pytest.raises(ExpressionLimitExceeded) as caught:
        compile_expression(LOOP).evaluate({})
    assert caught.value.code == "EXPRESSION_TIME_LIMIT"
    assert caught.value.limit == "expression_time"
    assert caught.value.expression == LOOP
    assert isinstance(caught.value, ExpressionError)  # handled like any failed expression
    assert compile_expression("${ reduce .[] as $x (0; . + $x) }").evaluate([1, 2, 3]) == 6


def test_unbounded_recursion_fails_with_the_memory_limit(budget: Budget) -> None:
    expression_budget.configure(Budget(seconds=60, memory_bytes=64 * 1024 * 1024))
    with pytest.raises(ExpressionLimitExceeded) as caught:
        compile_expression(BOMB).evaluate({})
    assert caught.value.code == "EXPRESSION_MEMORY_LIMIT"
    assert compile_expression("${ [range(.n)] }").evaluate({"n": 3}) == [0, 1, 2]


def test_a_worker_answers_as_jq_in_process_would(budget: Budget) -> None:
    expression = compile_expression("${ . as $d | [$d.a, $CONST.x] }")
    assert not expression.bounded
    assert expression.evaluate({"a": 1}, {"CONST": {"x": 2}}) == [1, 2]
    assert compile_expression("${ .[] as $x | $x }").evaluate_all([1, 2]) == [1, 2]
    assert compile_expression("${ . as $d | .a.b }").path({}) == ("a", "b")
    with pytest.raises(ExpressionError, match="boom") as caught:
        compile_expression('${ . as $d | error("boom") }').evaluate({})
    assert not isinstance(caught.value, ExpressionLimitExceeded)


def test_a_deferring_caller_gets_pending_then_the_remembered_outcome(budget: Budget) -> None:
    expression_budget.configure(Budget(seconds=30))
    expression = compile_expression(SLOW)
    token = deferring.set(True)
    try:
        with pytest.raises(EvaluationPending) as caught:
            expression.evaluate({})
        asyncio.run(caught.value.wait())
        assert expression.evaluate({}) == 2000000  # remembered: no second evaluation
    finally:
        deferring.reset(token)


async def test_off_loop_keeps_the_event_loop_turning(budget: Budget) -> None:
    expression_budget.configure(Budget(seconds=30))
    turns = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal turns
        while not stop.is_set():
            turns += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    value = await off_loop(lambda: compile_expression(SLOW).evaluate({"other": 1}))
    stop.set()
    await task
    assert value == 2000000
    assert turns > 1  # the loop ran other work while the worker evaluated


async def test_off_loop_raises_the_limit(budget: Budget) -> None:
    with pytest.raises(ExpressionLimitExceeded) as caught:
        await off_loop(lambda: compile_expression(LOOP).evaluate({"n": 1}))
    assert caught.value.code == "EXPRESSION_TIME_LIMIT"
