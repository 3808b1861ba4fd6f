"""Spec coverage: the SonataFlow dialect's inferred events (docs/spec-coverage.md, S8/S9)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tideflow.errors import WorkflowValidationError, format_path
from tideflow.workflow import load_workflow
from tideflow.workflow.dialects import apply_dialect
from tideflow.workflow.model import CallbackState, ForEachState, OperationState, ParallelState

ASK = {"eventRef": {"triggerEventRef": "Ask"}}
DOC: dict[str, Any] = {
    "id": "sf",
    "specVersion": "0.8",
    "functions": [{"name": "f", "type": "custom", "operation": "sysout"}],
    "events": [
        {"name": "Ask", "type": "ask", "kind": "produced"},
        {"name": "Answer", "type": "answer", "source": "/svc"},
    ],
    "states": [
        {"name": "Op", "type": "operation", "actions": [ASK], "transition": "Cb"},
        {"name": "Cb", "type": "callback", "action": ASK, "transition": "Fan"},
        {
            "name": "Fan",
            "type": "parallel",
            "branches": [{"name": "b", "actions": [ASK]}],
            "transition": "Each",
        },
        {
            "name": "Each",
            "type": "foreach",
            "inputCollection": "${ .items }",
            "actions": [ASK],
            "end": True,
        },
    ],
}


def _paths(doc: dict[str, Any], dialect: str | None) -> list[str]:
    with pytest.raises(WorkflowValidationError) as caught:
        load_workflow(json.dumps(doc), dialect=dialect)
    return [format_path(p.path) for p in caught.value.problems if p.severity == "error"]


def test_without_the_dialect_the_missing_events_are_errors() -> None:
    assert _paths(DOC, None) == [
        "states[0].actions[0].eventRef.resultEventRef",
        "states[1].eventRef",
        "states[1].action.eventRef.resultEventRef",
        "states[2].branches[0].actions[0].eventRef.resultEventRef",
        "states[3].actions[0].eventRef.resultEventRef",
    ]


def test_the_dialect_infers_the_only_consumed_event_everywhere() -> None:
    before = copy.deepcopy(DOC)
    apply_dialect(DOC, "sonataflow")
    assert before == DOC  # the caller's document is not changed
    wf = load_workflow(json.dumps(DOC), dialect="sonataflow")
    op, cb, fan, each = (wf.state(name) for name in ("Op", "Cb", "Fan", "Each"))
    assert isinstance(op, OperationState)
    assert isinstance(cb, CallbackState)
    assert isinstance(fan, ParallelState)
    assert isinstance(each, ForEachState)
    actions = [op.actions[0], cb.action, fan.branches[0].actions[0], each.actions[0]]
    assert [a.event_ref.result_event_ref if a.event_ref else None for a in actions] == [
        "Answer"
    ] * 4
    assert cb.event_ref == "Answer"


def test_nothing_is_inferred_when_two_events_could_be_meant() -> None:
    doc = copy.deepcopy(DOC)
    doc["events"].append({"name": "Other", "type": "other", "source": "/svc"})
    assert _paths(doc, "sonataflow") == _paths(doc, None)


def test_written_references_are_kept_and_other_dialects_change_nothing() -> None:
    doc = copy.deepcopy(DOC)
    doc["events"].append({"name": "Spare", "type": "spare", "kind": "produced"})
    doc["states"][1]["eventRef"] = "Answer"
    assert apply_dialect(doc, None) is doc
    applied = apply_dialect(doc, "sonataflow")
    assert applied["states"][1]["eventRef"] == "Answer"
    assert applied["states"][1]["action"]["eventRef"]["resultEventRef"] == "Answer"


async def test_expression_function_arguments_get_the_leniency_too() -> None:
    from tideflow.runtime.fake import ScriptedEffects
    from tideflow.runtime.interpreter import Interpreter
    from tideflow.runtime.result import Completed

    doc = {
        "id": "sf-expr",
        "specVersion": "0.8",
        "functions": [{"name": "echo", "type": "expression", "operation": "{got: .v}"}],
        "states": [
            {
                "name": "S",
                "type": "operation",
                "actions": [{"functionRef": {"refName": "echo", "arguments": {"v": ".name"}}}],
                "end": True,
            }
        ],
    }
    wf = load_workflow(json.dumps(doc))
    outputs = []
    for dialect in (None, "sonataflow"):
        result = await Interpreter(wf, dialect=dialect).run({"name": "Ada"}, ScriptedEffects())
        assert isinstance(result, Completed)
        outputs.append(result.output["got"])
    assert outputs == [".name", "Ada"]
