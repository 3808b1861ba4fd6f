"""CESQL filter evaluation speed, beside a hand-written Python predicate.

Run by hand: ``python bench/cesql.py [--events 20000] [--rounds 5]``. Prints JSON:
events per second for the 3-clause expression below through the compiled
``matches`` predicate, through ``evaluate`` (value + errors), through the
equivalent Subscriptions API filter list, and for a hand-written Python
function doing the same checks (the baseline), all on the same events in one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from collections.abc import Callable
from typing import Any

from tideflow.triggers.cesql import compile_expression
from tideflow.triggers.filters import compile_filters

EXPRESSION = "type = 'com.example.order' AND source LIKE '/shop/%' AND INT(amount) > 100"
FILTERS = [
    {"exact": {"type": "com.example.order"}},
    {"prefix": {"source": "/shop/"}},
    {"sql": "INT(amount) > 100"},
]


def baseline(event: dict[str, Any]) -> bool:
    """The same predicate written by hand (no CESQL error semantics)."""
    if event.get("type") != "com.example.order":
        return False
    source = event.get("source")
    if not isinstance(source, str) or not source.startswith("/shop/"):
        return False
    try:
        return int(event["amount"]) > 100
    except (KeyError, TypeError, ValueError):
        return False


def make_events(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """A mix: about half pass, the rest fail on one clause or another."""
    rng = random.Random(seed)
    events = []
    for index in range(count):
        events.append(
            {
                "specversion": "1.0",
                "id": f"e-{index}",
                "type": rng.choice(
                    ["com.example.order", "com.example.order", "com.example.refund"]
                ),
                "source": rng.choice(["/shop/eu", "/shop/us", "/blog/1"]),
                "amount": str(rng.randint(0, 300)),
                "datacontenttype": "application/json",
                "data": {"sku": "X-1", "qty": 1},
            }
        )
    return events


def rates(
    predicates: dict[str, Callable[[dict[str, Any]], Any]],
    events: list[dict[str, Any]],
    rounds: int,
) -> dict[str, float]:
    """Best events/second of each predicate; rounds interleave them, so load hits all alike."""
    best = dict.fromkeys(predicates, float("inf"))
    for _ in range(rounds):
        for name, predicate in predicates.items():
            start = time.perf_counter()
            for event in events:
                predicate(event)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: len(events) / seconds for name, seconds in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    events = make_events(args.events)

    start = time.perf_counter()
    expression = compile_expression(EXPRESSION)
    compile_us = (time.perf_counter() - start) * 1e6
    filters = compile_filters(FILTERS)
    agree = all(expression.matches(e) == baseline(e) == filters.matches(e) for e in events)
    passed = sum(map(baseline, events))

    predicates = {
        "baseline_python": baseline,
        "cesql_matches": expression.matches,
        "cesql_evaluate": expression.evaluate,
        "filters_exact_prefix_sql": filters.matches,
    }
    results = rates(predicates, events, args.rounds)
    print(
        json.dumps(
            {
                "bench": "cesql",
                "expression": EXPRESSION,
                "python": platform.python_version(),
                "events": len(events),
                "passing": passed,
                "results_agree": agree,
                "compile_us": round(compile_us, 1),
                "events_per_second": {name: round(value) for name, value in results.items()},
                "cesql_vs_baseline": round(
                    results["cesql_matches"] / results["baseline_python"], 3
                ),
                "filters_vs_baseline": round(
                    results["filters_exact_prefix_sql"] / results["baseline_python"], 3
                ),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
