"""Property: any run, however its results arrive, replays to the same outcome and calls.

Hypothesis builds chains of operation (sequential or parallel), parallel,
foreach and switch states over scripted functions whose answers arrive after
uneven real delays; the run is recorded, replayed against its journal by step
key, and must give the same outcome and ask for the same set of effects.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.interp_support import call, fn, workflow
from tideflow.errors import FunctionCallError
from tideflow.runtime.fake import ScriptedEffects
from tideflow.runtime.interpreter import Interpreter
from tideflow.runtime.recording import RecordingEffects, ReplayEffects
from tideflow.runtime.result import RunResult

FUNCTIONS = ["f0", "f1", "f2"]


def _action(state: int, fname: str) -> dict[str, Any]:
    # Every action of a state writes the same location: merge order shows.
    return call(
        fname, arguments={"n": "${ .n }"}, actionDataFilter={"toStateData": f"${{ .r{state} }}"}
    )


@st.composite
def _states(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(min_value=1, max_value=5))
    states: list[dict[str, Any]] = []
    for i in range(count):
        kind = draw(st.sampled_from(["operation", "parallel", "foreach", "switch"]))
        fnames = draw(st.lists(st.sampled_from(FUNCTIONS), min_size=1, max_size=3, unique=True))
        name = f"S{i}"
        state: dict[str, Any]
        if kind == "operation":
            mode = draw(st.sampled_from(["sequential", "parallel"]))
            actions = [_action(i, f) for f in fnames]
            state = {"name": name, "type": "operation", "actionMode": mode, "actions": actions}
        elif kind == "parallel":
            branches = [{"name": f"b{j}", "actions": [_action(i, f)]} for j, f in enumerate(fnames)]
            state = {"name": name, "type": "parallel", "branches": branches}
        elif kind == "foreach":
            batch: int = draw(st.integers(min_value=1, max_value=4))
            state = {
                "name": name,
                "type": "foreach",
                "inputCollection": "${ [range(0; 4)] }",
                "outputCollection": f"${{ .out{i} }}",
                "batchSize": batch,
                "actions": [call(fnames[0], arguments={"n": "${ .item }"})],
            }
        else:
            by_f0 = f'${{ (.r{max(0, i - 1)}.by // "") == "f0" }}'
            state = {
                "name": name,
                "type": "switch",
                "dataConditions": [{"condition": by_f0, "transition": "F0"}],
            }
        states.append(state)
    for i, state in enumerate(states):
        following = states[i + 1]["name"] if i + 1 < len(states) else "Even"
        if state["type"] == "switch":
            state["defaultCondition"] = {"transition": following}
        else:
            state["transition"] = following
            state["onErrors"] = [{"errorRef": "Any", "transition": following}]
    states.append({"name": "F0", "type": "inject", "data": {"f0": True}, "end": True})
    states.append({"name": "Even", "type": "inject", "data": {"done": True}, "end": True})
    return states


def _script(seed: int) -> dict[str, Any]:
    import random

    rng = random.Random(seed)

    def make(fname: str) -> Any:
        async def answer(arguments: dict[str, Any]) -> Any:
            await asyncio.sleep(rng.random() / 2000)
            if rng.random() < 0.03:
                raise FunctionCallError(f"{fname} failed", code="E")
            return {"n": int(arguments.get("n") or 0) + len(fname), "by": fname}

        return answer

    return {f: make(f) for f in FUNCTIONS}


def _outcome(result: RunResult) -> str:
    return json.dumps(
        {"status": result.status, "output": getattr(result, "output", None)}, sort_keys=True
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(states=_states(), seed=st.integers(min_value=0, max_value=10_000))
def test_random_workflows_replay_identically(states: list[dict[str, Any]], seed: int) -> None:
    wf = workflow(
        states,
        functions=[fn(f) for f in FUNCTIONS],
        errors=[{"name": "Any", "code": "E"}],
    )

    async def scenario() -> None:
        recorder = RecordingEffects(ScriptedEffects(_script(seed)))
        original = await Interpreter(wf).run({"n": 1}, recorder)
        replay = ReplayEffects(recorder.journal)
        replayed = await Interpreter(wf).run({"n": 1}, replay)
        assert _outcome(replayed) == _outcome(original)
        recorded = sorted((e["op"], e["key"]) for e in recorder.journal if e["key"])
        assert sorted(replay.calls) == recorded

    asyncio.run(scenario())
