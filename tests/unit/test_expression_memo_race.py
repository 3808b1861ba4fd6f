"""An expression evaluated off the event loop whose worker answers before its result is
remembered: the memo callback then runs at once in the calling thread, and it must not
wait for a lock that thread holds (it did: ``tideflow serve``'s event loop froze -- no
HTTP answer, no drain -- when a connector's mapping finished that fast under load)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Any

import pytest

from tideflow import expression_budget
from tideflow.workflow.expressions import compile_expression


class _AlreadyDone:
    """An executor whose calls are finished when ``submit`` returns (the race's outcome,
    every time: the worker thread ran the whole call before the caller went on)."""

    def submit(self, call: Any, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(call(*args))
        return future


def test_a_call_finished_before_its_callback_is_added_does_not_deadlock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(expression_budget, "_executor", _AlreadyDone())
    monkeypatch.setattr(expression_budget, "_memo", OrderedDict())
    monkeypatch.setattr(expression_budget, "_pending", {})
    expression = compile_expression("${ .a + 41 }")
    results: list[Any] = []

    def evaluate() -> None:
        token = expression_budget.deferring.set(True)
        try:
            results.append(expression_budget.evaluator(expression, "evaluate", {"a": 1}, {}))
        finally:
            expression_budget.deferring.reset(token)

    caller = threading.Thread(target=evaluate, daemon=True)  # a deadlock must not hang pytest
    caller.start()
    caller.join(timeout=30)
    assert not caller.is_alive(), "the evaluation deadlocked on the memo's lock"
    assert results == [42]
    assert list(expression_budget._memo.values()) == [("ok", 42)]  # remembered once
    assert expression_budget._pending == {}
