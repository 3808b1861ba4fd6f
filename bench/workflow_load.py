"""Benchmark: loading + validating workflow definitions, and jq evaluation, in one run.

Run by hand: ``python bench/workflow_load.py``. Prints one JSON object.
Goals (issue 2): loading + validating the largest valid spec example takes
under 5 ms (median); a compiled ``.a + .b`` evaluates at least 100,000 times
per second. The raw ``jq`` package's own compile and evaluate costs are
measured in the same run as the baseline.
"""

from __future__ import annotations

import contextlib
import json
import platform
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jq  # type: ignore[import-not-found]

from tideflow.errors import WorkflowValidationError
from tideflow.workflow import _compile as compile_module
from tideflow.workflow import expressions as expressions_module
from tideflow.workflow import load_and_validate, parse_document
from tideflow.workflow.expressions import compile_expression
from tideflow.workflow.validate import validate_document

EXAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "conformance" / "sw-0.8"
EXAMPLES = EXAMPLES / "examples"
RUNS = 300


def _median_ms(func: Callable[[], Any], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 3)


def _rate(func: Callable[[], Any], number: int) -> int:
    """Calls per second: the best of five runs (the machine is shared)."""
    return int(number / min(timeit.repeat(func, number=number, repeat=5)))


def _largest_valid_example() -> Path:
    candidates = sorted(
        (
            p
            for p in EXAMPLES.iterdir()
            if p.suffix in (".yaml", ".json") and p.name.count(".") == 1
        ),
        key=lambda p: p.stat().st_size,
        reverse=True,
    )
    for path in candidates:
        try:
            load_and_validate(path)
        except WorkflowValidationError:
            continue
        return path
    raise SystemExit("no valid example found")


def _uncached_load(path: Path) -> None:
    for module in (expressions_module, compile_module):  # every compile cache
        for value in vars(module).values():
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()
    load_and_validate(path)


def loading() -> dict[str, Any]:
    """Figures for loading the largest valid example (and the largest file overall)."""
    path = _largest_valid_example()
    doc = parse_document(path.read_text(), str(path))
    largest = max(EXAMPLES.glob("*.yaml"), key=lambda p: p.stat().st_size)
    busiest = EXAMPLES / "jobmonitoring.yaml"  # the valid example with the most expressions
    return {
        "example": path.name,
        "bytes": path.stat().st_size,
        "load_validate_median_ms": _median_ms(lambda: load_and_validate(path)),
        "load_validate_cold_cache_median_ms": _median_ms(lambda: _uncached_load(path), 100),
        "validate_only_median_ms": _median_ms(lambda: validate_document(doc)),
        "parse_only_median_ms": _median_ms(lambda: parse_document(path.read_text(), "x")),
        "most_expressions_example": busiest.name,
        "most_expressions_count": busiest.read_text().count("${"),
        "most_expressions_median_ms": _median_ms(lambda: load_and_validate(busiest)),
        "most_expressions_cold_cache_median_ms": _median_ms(lambda: _uncached_load(busiest), 30),
        "largest_file": largest.name,
        "largest_file_with_its_errors_median_ms": _median_ms(lambda: _invalid_ok(largest)),
        "goal_ms": 5.0,
    }


def _invalid_ok(path: Path) -> None:
    with contextlib.suppress(WorkflowValidationError):
        load_and_validate(path)


def expressions() -> dict[str, Any]:
    """Figures for ``.a + .b``: ours (compiled, cached) beside the raw jq package."""
    data = {"a": 1, "b": 2}
    raw = jq.compile(".a + .b")
    ours = compile_expression("${ .a + .b }")
    assert ours.evaluate(data) == raw.input_value(data).first() == 3
    uncached = compile_expression.__wrapped__
    return {
        "ours_evaluations_per_s": _rate(lambda: ours.evaluate(data), 20_000),
        "raw_jq_evaluations_per_s": _rate(lambda: raw.input_value(data).first(), 20_000),
        "ours_compile_uncached_us": round(1e6 / _rate(lambda: uncached("${ .a + .b }"), 500), 1),
        "raw_jq_compile_us": round(1e6 / _rate(lambda: jq.compile(".a + .b"), 500), 1),
        "ours_compile_cached_us": round(
            1e6 / _rate(lambda: compile_expression("${ .a + .b }"), 20_000), 3
        ),
        "goal_evaluations_per_s": 100_000,
    }


def main() -> None:
    """Print the figures as one JSON object."""
    if not EXAMPLES.is_dir():
        raise SystemExit(f"conformance examples not found at {EXAMPLES}")
    load = loading()
    expr = expressions()
    result = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "loading": load,
        "expressions": expr,
        "goals_met": {
            "load_validate_under_5ms": load["load_validate_median_ms"] < load["goal_ms"],
            "evaluations_at_least_100k_per_s": expr["ours_evaluations_per_s"]
            >= expr["goal_evaluations_per_s"],
        },
    }
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
