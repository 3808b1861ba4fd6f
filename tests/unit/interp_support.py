"""Helpers for the interpreter tests: build small workflows, run them on scripted effects."""

from __future__ import annotations

import json
from typing import Any

from tideflow.runtime.fake import ScriptedEffects
from tideflow.runtime.interpreter import Interpreter
from tideflow.runtime.result import RunResult
from tideflow.workflow import load_workflow
from tideflow.workflow.model import Workflow


def fn(name: str, kind: str = "custom", operation: str | None = None) -> dict[str, Any]:
    """A function definition; custom functions get a ``python:`` operation."""
    return {"name": name, "type": kind, "operation": operation or f"python:tests.fake:{name}"}


def workflow(states: list[Any], **top: Any) -> Workflow:
    """A valid workflow with these states (the first one starts)."""
    doc: dict[str, Any] = {"id": "t", "version": "1", "specVersion": "0.8", "states": states}
    doc["start"] = states[0]["name"]
    for key, value in top.items():
        doc[_camel(key)] = value
    return load_workflow(json.dumps(doc))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


async def run(
    wf: Workflow,
    data: Any = None,
    effects: ScriptedEffects | None = None,
    **interp: Any,
) -> RunResult:
    """Run ``wf`` on ``effects`` (an empty script by default).

    ``on_step``/``on_state``/``pace`` go to the run, the other keywords to the interpreter.
    """
    callbacks = {k: interp.pop(k) for k in ("on_step", "on_state", "pace") if k in interp}
    return await Interpreter(wf, **interp).run(
        {} if data is None else data, effects or ScriptedEffects(), **callbacks
    )


def kinds(result: RunResult, prefix: str = "") -> list[str]:
    """The timeline's step kinds (optionally only those starting with ``prefix``)."""
    return [s.kind for s in result.timeline if s.kind.startswith(prefix)]


def calls(effects: ScriptedEffects, op: str | None = None) -> list[str]:
    """Keys of the logged effect calls (of one kind)."""
    return [key for kind, key, _ in effects.log if op is None or kind == op]


def op_state(name: str, actions: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    """An operation state ending the workflow unless ``more`` says otherwise."""
    state = {"name": name, "type": "operation", "actions": actions, **more}
    if "transition" not in state and "end" not in state:
        state["end"] = True
    return state


def call(ref: str, **more: Any) -> dict[str, Any]:
    """An action calling function ``ref``."""
    arguments = more.pop("arguments", None)
    function_ref: Any = {"refName": ref, "arguments": arguments} if arguments else ref
    return {"functionRef": function_ref, **more}
