"""Benchmark: workflow expressions against the raw ``jq`` package, measured in the same run.

Run by hand: ``python bench/expressions.py``. Prints one JSON object.
Goal (issue 2): a compiled ``.a + .b`` evaluates at least 100,000 times per second.
Issue 11: the same goal with the expression budget on (``.a + .b`` cannot loop: it
stays in-process); an expression that can loop (``def``) is measured through the
budget's worker process and, for comparison, in-process without the budget.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import statistics
import timeit
from collections.abc import Callable
from typing import Any

import jq  # type: ignore[import-not-found]

from tideflow import expression_budget
from tideflow.workflow import expressions
from tideflow.workflow.data_filters import merge_action_result
from tideflow.workflow.expressions import compile_expression

SMALL = {"a": 1, "b": 2}
# About 10 kB of state data, the size of a modest order document.
LARGE: dict[str, Any] = {
    "customer": {"name": "Ann", "address": {"city": "Nara"}},
    "items": [{"sku": f"sku-{i}", "price": i, "tags": ["x", "y"]} for i in range(150)],
    "a": 1,
    "b": 2,
}
VARIABLES = {"CONST": {"x": 1, "urls": {"api": "http://x"}}, "SECRETS": {}, "WORKFLOW": {}}


def _rate(func: Callable[[], Any], number: int) -> float:
    """Calls per second: the best of five runs (the machine is shared)."""
    times = timeit.repeat(func, number=number, repeat=5)
    return number / min(times)


def _median_us(func: Callable[[], Any], number: int) -> float:
    times = timeit.repeat(func, number=number, repeat=5)
    return statistics.median(times) / number * 1e6


def main() -> None:
    raw = jq.compile(".a + .b")
    ours = compile_expression("${ .a + .b }")
    with_var = compile_expression("${ .a + $CONST.x }")
    raw_path = jq.compile(".customer.address.city")
    ours_path = compile_expression("${ .customer.address.city }")
    uncached: Callable[[str, str], Any] = compile_expression.__wrapped__
    figures = {
        "raw_jq_compile_us": _median_us(lambda: jq.compile(".a + .b"), 2_000),
        "ours_compile_uncached_us": _median_us(lambda: uncached("${ .a + .b }", "jq"), 2_000),
        "ours_compile_cached_us": _median_us(lambda: compile_expression("${ .a + .b }"), 50_000),
        "raw_jq_eval_per_s": _rate(lambda: raw.input_value(SMALL).first(), 100_000),
        "ours_eval_per_s": _rate(lambda: ours.evaluate(SMALL), 100_000),
        "ours_eval_with_const_per_s": _rate(lambda: with_var.evaluate(SMALL, VARIABLES), 100_000),
        "raw_jq_path_10kB_per_s": _rate(lambda: raw_path.input_value(LARGE).first(), 2_000),
        "ours_path_10kB_per_s": _rate(lambda: ours_path.evaluate(LARGE), 100_000),
        "ours_merge_action_result_10kB_per_s": _rate(
            lambda: merge_action_result(LARGE, {"ok": True}, "${ .ok }", "${ .result.ok }"),
            20_000,
        ),
    }
    looping = compile_expression("${ def twice: . * 2; .a | twice }")
    figures["ours_loop_capable_budgeted_per_s"] = _rate(lambda: looping.evaluate(SMALL), 2_000)
    expressions.install_evaluator(None)  # the same expression without the budget
    figures["ours_loop_capable_in_process_per_s"] = _rate(lambda: looping.evaluate(SMALL), 100_000)
    expressions.install_evaluator(expression_budget.evaluator)
    goal = 100_000
    print(
        json.dumps(
            {
                "python": platform.python_version(),
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "jq_package": importlib.metadata.version("jq"),
                **{k: round(v, 1) for k, v in figures.items()},
                "goal_eval_per_s": goal,
                "goal_met": figures["ours_eval_per_s"] >= goal,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
