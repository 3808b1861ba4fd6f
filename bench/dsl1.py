"""DSL 1.0 against 0.8 in the same run: interpreter throughput and load+validate; prints JSON.

Run by hand: ``python bench/dsl1.py``. Measures

* the 10-state benchmark of ``bench/interpreter.py`` (five injects, five
  switches on a jq condition) and the same ten steps written as DSL 1.0 tasks
  (five ``set``, five ``switch`` with ``when``), both on the local host,
  alternated in rounds so both see the same machine load; the figure is the
  ratio of the medians of instances per second;
* loading and validating the largest 1.0 example of the corpus (YAML text to
  the validated model), median of many runs.

Goals (issue 16): the 1.0 workflow runs at >= 0.8 of the 0.8 one's instances/s;
load+validate of the largest 1.0 example < 5 ms.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from tideflow.clock import SYSTEM_CLOCK
from tideflow.runtime.hosts.local import LocalHost, LocalOptions
from tideflow.workflow import load_workflow
from tideflow.workflow.dsl1 import load_and_validate, load_document

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[1] / "shared" / "conformance" / "sw-1.0" / "examples"
ROUNDS = 5
INSTANCES = 1000
LOADS = 300


def ten_states_08() -> Any:
    """Five injects each followed by a switch on the value it injected."""
    states: list[dict[str, Any]] = []
    for i in range(5):
        states.append(
            {"name": f"I{i}", "type": "inject", "data": {f"k{i}": i}, "transition": f"S{i}"}
        )
        step: dict[str, Any] = {"transition": f"I{i + 1}"} if i < 4 else {"end": True}
        condition = {"condition": f"${{ .k{i} == {i} }}", **step}
        states.append({"name": f"S{i}", "type": "switch", "dataConditions": [condition],
                       "defaultCondition": {"end": True}})  # fmt: skip
    doc = {"id": "b", "version": "1", "specVersion": "0.8", "states": states}
    return load_workflow(json.dumps(doc))


def ten_tasks_10() -> Any:
    """The same ten steps as DSL 1.0 tasks: five ``set``, five ``switch``."""
    do: list[dict[str, Any]] = []
    for i in range(5):
        do.append({f"I{i}": {"set": {f"k{i}": i}}})  # literal data, as the inject
        then = f"I{i + 1}" if i < 4 else "end"
        cases = [{"match": {"when": f"${{ .k{i} == {i} }}", "then": then}},
                 {"other": {"then": "end"}}]  # fmt: skip
        do.append({f"S{i}": {"switch": cases}})
    document = {"dsl": "1.0.3", "namespace": "bench", "name": "b", "version": "1.0.0"}
    model, _ = load_document({"document": document, "do": do})
    return model


async def instances_per_s(host: LocalHost, workflow: Any, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        run = await host.run(workflow, {"x": 1}, HERE)
        assert run.result.status == "completed", run.result
    return n / (time.perf_counter() - start)


async def throughput() -> dict[str, Any]:
    old, new = ten_states_08(), ten_tasks_10()
    async with LocalHost(LocalOptions(log=lambda _: None, secrets={})) as host:
        await instances_per_s(host, old, 100)  # warm both: compiled definitions, jq caches
        await instances_per_s(host, new, 100)
        rounds_08, rounds_10 = [], []
        for _ in range(ROUNDS):
            rounds_08.append(await instances_per_s(host, old, INSTANCES))
            rounds_10.append(await instances_per_s(host, new, INSTANCES))
    median_08, median_10 = statistics.median(rounds_08), statistics.median(rounds_10)
    return {
        "instances_per_s_08": [round(r) for r in rounds_08],
        "instances_per_s_10": [round(r) for r in rounds_10],
        "median_08": round(median_08),
        "median_10": round(median_10),
        "ratio_10_to_08": round(median_10 / median_08, 3),
        "goal_ratio": 0.8,
        "goal_met": median_10 / median_08 >= 0.8,
    }


def load_validate() -> dict[str, Any]:
    largest = max(EXAMPLES.glob("*.yaml"), key=lambda p: p.stat().st_size)
    text = largest.read_text(encoding="utf-8")
    yaml.safe_load(text)  # the parser's first-use costs are not the definition's
    times = []
    for _ in range(LOADS):
        start = time.perf_counter()
        load_and_validate(text)
        times.append((time.perf_counter() - start) * 1000)
    median = statistics.median(times)
    return {
        "example": largest.name,
        "bytes": len(text.encode()),
        "median_ms": round(median, 3),
        "p90_ms": round(sorted(times)[int(len(times) * 0.9)], 3),
        "goal_ms": 5.0,
        "goal_met": median < 5.0,
    }


def main() -> dict[str, Any]:
    return {
        "date": SYSTEM_CLOCK.now().isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
        },
        "ten_steps_local_host": asyncio.run(throughput()),
        "load_validate_largest_10_example": load_validate(),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
