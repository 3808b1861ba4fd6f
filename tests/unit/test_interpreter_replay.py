"""Replay determinism: a recorded run replayed against its journal asks for the same effects
in the same order and gives the same outcome; golden journals in tests/golden/ stay replayable.

Set ``TIDEFLOW_WRITE_GOLDEN=1`` to (re)record the golden files from the scenarios below.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.unit.interp_support import call, fn, op_state, workflow
from tideflow.errors import FunctionCallError
from tideflow.runtime.fake import ScriptedEffects
from tideflow.runtime.interpreter import Interpreter
from tideflow.runtime.recording import NondeterminismError, RecordingEffects, ReplayEffects
from tideflow.runtime.result import RunResult

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def _flaky(times: int, result: Any) -> Callable[[dict[str, Any]], Any]:
    count = {"n": 0}

    def answer(_: dict[str, Any]) -> Any:
        count["n"] += 1
        if count["n"] <= times:
            raise FunctionCallError("busy", code="503")
        return result

    return answer


async def _never(_: dict[str, Any]) -> None:
    await asyncio.Event().wait()


def _kitchen_sink() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A definition touching most features, its input, and the scripted effects' answers."""
    doc = {
        "id": "sink",
        "version": "1",
        "specVersion": "0.8",
        "start": "Prepare",
        "functions": [
            fn("price"),
            fn("stock"),
            fn("ship"),
            fn("slow"),
            fn("double", "expression", "${ .item * 2 }"),
        ],
        "events": [
            {"name": "Paid", "type": "paid", "source": "pay"},
            {"name": "Shipped", "type": "shipped", "kind": "produced"},
        ],
        "retries": [
            {"name": "R", "delay": "PT1S", "maxAttempts": 5, "multiplier": 2, "jitter": 0.3}
        ],
        "errors": [{"name": "Busy", "code": "503"}],
        "states": [
            {
                "name": "Prepare",
                "type": "inject",
                "data": {"items": [1, 2, 3, 4, 5]},
                "transition": "Quote",
            },
            op_state(
                "Quote",
                [
                    call(
                        "price",
                        retryRef="R",
                        retryableErrors=["Busy"],
                        actionDataFilter={"toStateData": "${ .price }"},
                    ),
                    call("stock", actionDataFilter={"toStateData": "${ .stock }"}),
                ],
                actionMode="parallel",
                transition="Each",
            ),
            {
                "name": "Each",
                "type": "foreach",
                "inputCollection": "${ .items }",
                "outputCollection": "${ .doubled }",
                "batchSize": 2,
                "actions": [
                    call("double"),
                    call(
                        "ship",
                        arguments={"n": "${ .item }"},
                        actionDataFilter={"useResults": False},
                    ),
                ],
                "transition": "Race",
            },
            {
                "name": "Race",
                "type": "parallel",
                "completionType": "atLeast",
                "numCompleted": 1,
                "branches": [
                    {
                        "name": "fast",
                        "actions": [call("stock", actionDataFilter={"toStateData": "${ .raced }"})],
                    },
                    {"name": "slow", "actions": [call("slow")]},
                ],
                "transition": "Pay",
            },
            {
                "name": "Pay",
                "type": "event",
                "onEvents": [
                    {"eventRefs": ["Paid"], "eventDataFilter": {"toStateData": "${ .payment }"}}
                ],
                "timeouts": {"eventTimeout": "PT1H"},
                "transition": {
                    "nextState": "Nap",
                    "produceEvents": [{"eventRef": "Shipped", "data": "${ .payment }"}],
                },
            },
            {"name": "Nap", "type": "sleep", "duration": "PT1S", "end": True},
        ],
    }
    answers = {
        "functions": {
            "price": _flaky(2, 42),
            "stock": {"in_stock": True},
            "ship": {"ok": 1},
            "slow": _never,
        },
        "events": [
            {
                "specversion": "1.0",
                "id": "e1",
                "source": "pay",
                "type": "paid",
                "data": {"amount": 42},
            }
        ],
    }
    return doc, {"customer": "ada"}, answers


def _failing() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    doc = {
        "id": "fails",
        "version": "1",
        "specVersion": "0.8",
        "functions": [fn("charge")],
        "errors": [{"name": "Declined", "code": "402"}],
        "states": [op_state("Charge", [call("charge", arguments={"amount": "${ .amount }"})])],
    }

    def declined(_: dict[str, Any]) -> None:
        raise FunctionCallError("card declined", code="402", retryable=False)

    return doc, {"amount": 10}, {"functions": {"charge": declined}, "events": []}


SCENARIOS = {"kitchen_sink": _kitchen_sink, "failing_charge": _failing}


def _outcome(result: RunResult) -> dict[str, Any]:
    out: dict[str, Any] = {"status": result.status}
    if hasattr(result, "output"):
        out["output"] = result.output
    if hasattr(result, "error"):
        out["error"] = result.error.to_json()
    return out


async def _record(name: str) -> dict[str, Any]:
    doc, data, answers = SCENARIOS[name]()
    wf = workflow(doc.pop("states"), **doc)
    recorder = RecordingEffects(ScriptedEffects(answers["functions"], events=answers["events"]))
    result = await Interpreter(wf).run(data, recorder)
    doc, _, _ = SCENARIOS[name]()
    return {
        "workflow": doc,
        "input": data,
        "journal": recorder.journal,
        "outcome": _outcome(result),
    }


async def _replay(golden: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    doc = dict(golden["workflow"])
    wf = workflow(doc.pop("states"), **doc)
    replay = ReplayEffects(golden["journal"])
    result = await Interpreter(wf).run(golden["input"], replay)
    return _outcome(result), replay.calls


def _recorded_calls(journal: list[dict[str, Any]]) -> list[Any]:
    return [(e["op"], e["key"]) for e in journal if e["key"]]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_replay_gives_same_calls_and_outcome(name: str) -> None:
    golden = json.loads(json.dumps(await _record(name)))  # as stored: plain JSON
    outcome, replayed = await _replay(golden)
    assert outcome == golden["outcome"]
    assert replayed == _recorded_calls(golden["journal"])
    if os.environ.get("TIDEFLOW_WRITE_GOLDEN"):
        (GOLDEN / f"{name}.json").write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")


def test_kitchen_sink_exercises_retries_parallel_events_and_cancellation() -> None:
    golden = json.loads((GOLDEN / "kitchen_sink.json").read_text())
    journal = golden["journal"]
    ops = {e["op"] for e in journal}
    assert {"call", "sleep", "wait", "emit", "deadline"} - ops == {"deadline"}
    assert any(e.get("cancelled") for e in journal)
    assert sum(1 for e in journal if e["op"] == "sleep" and "/backoff" in e["key"]) == 2
    assert golden["outcome"]["output"]["doubled"] == [2, 4, 6, 8, 10]


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.json")), ids=lambda p: p.stem)
async def test_golden_journals_replay(path: Path) -> None:
    golden = json.loads(path.read_text())  # noqa: ASYNC240 - a small test fixture file
    outcome, replayed = await _replay(golden)
    assert outcome == golden["outcome"]
    assert replayed == _recorded_calls(golden["journal"])


async def test_replay_detects_a_changed_definition() -> None:
    golden = json.loads((GOLDEN / "failing_charge.json").read_text())
    golden["workflow"]["states"][0]["name"] = "Renamed"
    golden["workflow"]["start"] = "Renamed"
    doc = dict(golden["workflow"])
    wf = workflow(doc.pop("states"), **doc)
    with pytest.raises(NondeterminismError, match="Renamed/action:0/attempt:1"):
        await Interpreter(wf).run(golden["input"], ReplayEffects(golden["journal"]))


async def test_replay_matches_by_key_when_results_arrived_in_another_order() -> None:
    import random

    rng = random.Random(7)
    doc, data, answers = _kitchen_sink()

    def jittered(answer: Any) -> Any:
        async def call(arguments: dict[str, Any]) -> Any:
            await asyncio.sleep(rng.random() / 1000)  # real, uneven arrival order
            value = answer(arguments) if callable(answer) else answer
            return await value if asyncio.iscoroutine(value) else value

        return call

    functions = {name: jittered(answer) for name, answer in answers["functions"].items()}
    wf = workflow(doc.pop("states"), **doc)
    recorder = RecordingEffects(ScriptedEffects(functions, events=answers["events"]))
    original = _outcome(await Interpreter(wf).run(data, recorder))
    replay = ReplayEffects(recorder.journal)
    replayed = _outcome(await Interpreter(wf).run(data, replay))
    assert replayed == original
    assert sorted(replay.calls) == sorted(_recorded_calls(recorder.journal))
    assert original["output"]["doubled"] == [2, 4, 6, 8, 10]


async def test_replay_of_a_journal_without_clock_entries_is_nondeterministic() -> None:
    golden = json.loads((GOLDEN / "failing_charge.json").read_text())
    journal = [e for e in golden["journal"] if e["op"] != "new_id"]
    doc = dict(golden["workflow"])
    wf = workflow(doc.pop("states"), **doc)
    with pytest.raises(NondeterminismError, match="new_id"):
        await Interpreter(wf).run(golden["input"], ReplayEffects(journal))
