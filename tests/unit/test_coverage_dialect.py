"""Spec coverage: the SonataFlow dialect's event references (docs/spec-coverage.md, S8/S9)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tideflow.errors import WorkflowValidationError, format_path
from tideflow.workflow import load_workflow
from tideflow.workflow.dialects import apply_dialect
from tideflow.workflow.model import CallbackState, ForEachState, OperationState, ParallelState
from tideflow.workflow.validate import load_and_validate

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


def test_the_dialect_lets_event_refs_publish_only_and_infers_no_callback_event() -> None:
    # SonataFlow's eventRef action only sends triggerEventRef (CompositeContextNodeHandler);
    # its callback state looks its eventRef up by name and fails without one.
    before = copy.deepcopy(DOC)
    apply_dialect(DOC, "sonataflow")
    assert before == DOC  # the caller's document is not changed
    assert _paths(DOC, "sonataflow") == ["states[1].eventRef"]
    doc = copy.deepcopy(DOC)
    doc["states"][1]["eventRef"] = "Answer"
    wf = load_workflow(json.dumps(doc), dialect="sonataflow")
    op, cb, fan, each = (wf.state(name) for name in ("Op", "Cb", "Fan", "Each"))
    assert isinstance(op, OperationState)
    assert isinstance(cb, CallbackState)
    assert isinstance(fan, ParallelState)
    assert isinstance(each, ForEachState)
    actions = [op.actions[0], cb.action, fan.branches[0].actions[0], each.actions[0]]
    assert [a.event_ref.result_event_ref if a.event_ref else "?" for a in actions] == [None] * 4
    assert cb.event_ref == "Answer"


def test_a_written_result_event_ref_is_ignored_with_a_warning() -> None:
    doc = copy.deepcopy(DOC)
    doc["states"][1]["eventRef"] = "Answer"
    doc["states"][0]["actions"] = [
        {"eventRef": {"triggerEventRef": "Ask", "resultEventRef": "Answer"}}
    ]
    _, warnings = load_and_validate(json.dumps(doc), dialect="sonataflow")
    assert [format_path(w.path) for w in warnings] == [
        "states[0].actions[0].eventRef.resultEventRef"
    ]
    assert "never waits" in warnings[0].message
    op = load_workflow(json.dumps(doc), dialect="sonataflow").state("Op")
    assert isinstance(op, OperationState)
    assert op.actions[0].event_ref is not None
    assert op.actions[0].event_ref.result_event_ref is None


def test_other_dialects_change_nothing() -> None:
    doc = copy.deepcopy(DOC)
    applied, notes = apply_dialect(doc, None)
    assert applied == doc
    assert notes == []


async def test_expression_function_arguments_are_ignored_as_sonataflow_does() -> None:
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
    # SonataFlow's expression functions never read their arguments (ExpressionTypeHandler)
    assert outputs == [".name", None]
