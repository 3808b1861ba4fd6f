"""Interpreter throughput on the local host (no I/O): prints JSON.

Run by hand: ``python bench/interpreter.py``. Measures

* a 10-state inject/switch workflow: instances per second on one core, and
  the cost per state transition, against a baseline measured in the same run
  (the same ten steps written by hand as Python dict merges and comparisons);
* a foreach over 10,000 items calling an expression function (seconds);
* a 10-state operation workflow calling a ``python:``-style override
  (instances per second).

Goals (issue 3): >= 3,000 instances/s; foreach 10,000 < 2 s.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from tideflow.runtime.hosts.local import LocalHost, LocalOptions
from tideflow.runtime.interpreter import Interpreter
from tideflow.workflow import load_workflow

HERE = Path(__file__).resolve().parent


def _inject_switch() -> Any:
    states: list[dict[str, Any]] = []
    for i in range(5):
        states.append(
            {"name": f"I{i}", "type": "inject", "data": {f"k{i}": i}, "transition": f"S{i}"}
        )
        step: dict[str, Any] = {"transition": f"I{i + 1}"} if i < 4 else {"end": True}
        states.append(
            {
                "name": f"S{i}",
                "type": "switch",
                "dataConditions": [{"condition": f"${{ .k{i} == {i} }}", **step}],
                "defaultCondition": {"end": True},
            }
        )
    return load_workflow(
        json.dumps({"id": "b", "version": "1", "specVersion": "0.8", "states": states})
    )


def _operations() -> Any:
    states = [
        {
            "name": f"O{i}",
            "type": "operation",
            "actions": [{"functionRef": {"refName": "add", "arguments": {"n": "${ .n }"}}}],
            **({"transition": f"O{i + 1}"} if i < 9 else {"end": True}),
        }
        for i in range(10)
    ]
    functions = [{"name": "add", "type": "custom", "operation": "python:bench:add"}]
    doc = {
        "id": "o",
        "version": "1",
        "specVersion": "0.8",
        "functions": functions,
        "states": states,
    }
    return load_workflow(json.dumps(doc))


def _foreach() -> Any:
    doc = {
        "id": "f",
        "version": "1",
        "specVersion": "0.8",
        "functions": [{"name": "sq", "type": "expression", "operation": "${ .item * .item }"}],
        "states": [
            {
                "name": "F",
                "type": "foreach",
                "inputCollection": "${ .items }",
                "outputCollection": "${ .out }",
                "actions": [{"functionRef": "sq"}],
                "end": True,
            }
        ],
    }
    return load_workflow(json.dumps(doc))


def _baseline(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        data: dict[str, Any] = {"x": 1}
        for i in range(5):
            data = {**data, f"k{i}": i}
            if data[f"k{i}"] != i:
                break
    return time.perf_counter() - start


async def _host_runs(workflow: Any, n: int, options: LocalOptions, data: Any) -> float:
    host = LocalHost(options)
    start = time.perf_counter()
    for _ in range(n):
        run = await host.run(workflow, data, HERE)
        assert run.result.status == "completed", run.result
    return time.perf_counter() - start


async def main() -> dict[str, Any]:
    n = 3000
    quiet = LocalOptions(log=lambda _: None, secrets={})
    inject_switch = _inject_switch()
    host_seconds = await _host_runs(inject_switch, n, quiet, {"x": 1})
    interp = Interpreter(inject_switch)
    from tideflow.runtime.fake import ScriptedEffects

    start = time.perf_counter()
    for _ in range(n):
        await interp.run({"x": 1}, ScriptedEffects())
    pure_seconds = time.perf_counter() - start
    base = _baseline(n)
    ops = LocalOptions(
        log=lambda _: None, secrets={}, functions={"add": lambda a: {"n": a["n"] + 1}}
    )
    ops_seconds = await _host_runs(_operations(), 1000, ops, {"n": 0})
    start = time.perf_counter()
    await _host_runs(_foreach(), 1, quiet, {"items": list(range(10_000))})
    foreach_seconds = time.perf_counter() - start
    return {
        "inject_switch_10_states": {
            "instances_per_s_local_host": round(n / host_seconds),
            "instances_per_s_interpreter_only": round(n / pure_seconds),
            "us_per_transition_local_host": round(host_seconds / n / 10 * 1e6, 1),
            "baseline_hand_written_us_per_instance": round(base / n * 1e6, 2),
            "goal_instances_per_s": 3000,
            "goal_met": n / host_seconds >= 3000,
        },
        "operation_10_states_python_function": {"instances_per_s": round(1000 / ops_seconds)},
        "foreach_10000_expression_function": {
            "seconds": round(foreach_seconds, 3),
            "goal_seconds": 2.0,
            "goal_met": foreach_seconds < 2.0,
        },
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main()), indent=2))
