"""Spec coverage: actions, events and ends no other test exercised (docs/spec-coverage.md).

Sections 1, 5, 6, 7, 10, 11 and 14 of the conformance checklist: the
``resultEventTimeout`` default, ``selectionSet`` expressions, correlation
values written as expressions, a non-exclusive start state's event timeout,
the order of an end's compensate/produceEvents/continueAs, iterations that
cannot hold an end, and ``dataInputSchema`` versus event payloads.
"""

from __future__ import annotations

import json
from typing import Any

from tests.unit.interp_support import call, fn, op_state, run, workflow
from tideflow.errors import format_path
from tideflow.runtime.effects import EventWait, FunctionCall
from tideflow.runtime.fake import ScriptedEffects
from tideflow.runtime.result import Completed, ContinuedAs
from tideflow.workflow import load_workflow, validate_document

EVENTS = [
    {"name": "Ask", "type": "ask", "source": "wf", "kind": "produced"},
    {"name": "Answer", "type": "answer", "source": "svc"},
]


def _ce(kind: str, data: Any, **attrs: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": kind, "source": "svc", "type": kind, "data": data, **attrs}


async def test_result_event_timeout_defaults_to_action_exec_timeout() -> None:
    action = {"eventRef": {"triggerEventRef": "Ask", "resultEventRef": "Answer"}}
    state = op_state("S", [action], timeouts={"actionExecTimeout": "PT4S"})
    effects = ScriptedEffects(events=[_ce("answer", {"a": 1})])
    result = await run(workflow([state], events=EVENTS), {}, effects)
    assert isinstance(result, Completed)
    [wait] = [r for r in effects.requests if isinstance(r, EventWait)]
    assert wait.timeout_seconds == 4.0
    explicit = {
        "eventRef": {
            "triggerEventRef": "Ask",
            "resultEventRef": "Answer",
            "resultEventTimeout": "PT9S",
        }
    }
    state = op_state("S", [explicit], timeouts={"actionExecTimeout": "PT4S"})
    effects = ScriptedEffects(events=[_ce("answer", {"a": 1})])
    await run(workflow([state], events=EVENTS), {}, effects)
    [wait] = [r for r in effects.requests if isinstance(r, EventWait)]
    assert wait.timeout_seconds == 9.0


async def test_selection_set_expressions_are_evaluated_before_the_call() -> None:
    action = {
        "functionRef": {
            "refName": "pet",
            "arguments": {"id": "${ .id }"},
            "selectionSet": '${ "{ " + (.fields | join(" ")) + " }" }',
        }
    }
    wf = workflow(
        [op_state("S", [action])],
        functions=[fn("pet", "graphql", "http://example.com/graphql#query#pet")],
    )
    effects = ScriptedEffects({"pet": {"name": "Rex"}})
    result = await run(wf, {"id": 3, "fields": ["name", "tag"]}, effects)
    assert isinstance(result, Completed)
    [request] = [r for r in effects.requests if isinstance(r, FunctionCall)]
    assert (request.selection_set, dict(request.arguments)) == ("{ name tag }", {"id": 3})


async def test_correlation_value_may_be_an_expression_over_the_state_data() -> None:
    events = [
        {
            "name": "Reading",
            "type": "reading",
            "source": "svc",
            "correlation": [
                {"contextAttributeName": "room", "contextAttributeValue": "${ .room }"}
            ],
        }
    ]
    states = [
        {"name": "First", "type": "inject", "data": {}, "transition": "Wait"},
        {"name": "Wait", "type": "event", "onEvents": [{"eventRefs": ["Reading"]}], "end": True},
    ]
    effects = ScriptedEffects(
        events=[_ce("reading", {"t": 1}, room="b"), _ce("reading", {"t": 2}, room="a")]
    )
    result = await run(workflow(states, events=events), {"room": "a"}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"room": "a", "t": 2}
    [wait] = [r for r in effects.requests if isinstance(r, EventWait)]
    assert wait.events[0].correlation == (("room", "a"),)


async def test_non_exclusive_start_state_passes_its_event_timeout_to_the_host() -> None:
    events = [
        {"name": "A", "type": "a", "source": "svc"},
        {"name": "B", "type": "b", "source": "svc"},
    ]
    state = {
        "name": "Start",
        "type": "event",
        "exclusive": False,
        "onEvents": [{"eventRefs": ["A", "B"]}],
        "timeouts": {"eventTimeout": "PT30S"},
        "end": True,
    }
    effects = ScriptedEffects(events=[_ce("a", {"a": 1}), _ce("b", {"b": 2})])
    result = await run(workflow([state], events=events), {}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"a": 1, "b": 2}
    [wait] = [r for r in effects.requests if isinstance(r, EventWait)]
    assert (wait.all, wait.timeout_seconds) == (True, 30.0)


async def test_an_end_compensates_then_produces_events_then_continues() -> None:
    events = [{"name": "Done", "type": "done", "source": "wf", "kind": "produced"}]
    states = [
        op_state("Book", [call("book")], compensatedBy="Undo", transition="Last"),
        {
            "name": "Last",
            "type": "inject",
            "data": {"last": True},
            "end": {
                "compensate": True,
                "produceEvents": [{"eventRef": "Done", "data": "${ .cancelled }"}],
                "continueAs": "next-run",
            },
        },
        op_state("Undo", [call("cancel")], usedForCompensation=True),
    ]
    effects = ScriptedEffects({"book": {"booked": 1}, "cancel": {"cancelled": 1}})
    wf = workflow(states, events=events, functions=[fn("book"), fn("cancel")])
    result = await run(wf, {}, effects)
    assert isinstance(result, ContinuedAs)
    assert [kind for kind, _, _ in effects.log] == ["call", "call", "emit"]
    assert effects.log[1][1].startswith("compensate:Undo/")
    assert effects.emitted[0]["data"] == 1  # the event saw the compensated data
    assert result.input == {"booked": 1, "last": True, "cancelled": 1}


def test_actions_hold_no_end_so_terminate_cannot_be_inside_an_iteration() -> None:
    doc = {
        "id": "t",
        "specVersion": "0.8",
        "functions": [fn("f")],
        "states": [
            {
                "name": "F",
                "type": "foreach",
                "inputCollection": "${ .items }",
                "actions": [{"functionRef": "f", "end": {"terminate": True}}],
                "end": True,
            }
        ],
    }
    found = [(format_path(p.path), p.message) for p in validate_document(doc)]
    assert [path for path, _ in found] == ["states[0].actions[0].end"]
    assert "not a property of an action" in found[0][1]


async def test_data_input_schema_checks_the_input_not_start_event_payloads() -> None:
    doc = {
        "id": "t",
        "specVersion": "0.8",
        "dataInputSchema": {"schema": {"type": "object", "additionalProperties": False}},
        "events": [{"name": "Answer", "type": "answer", "source": "svc"}],
        "states": [
            {"name": "Start", "type": "event", "onEvents": [{"eventRefs": ["Answer"]}], "end": True}
        ],
    }
    wf = load_workflow(json.dumps(doc))
    effects = ScriptedEffects(events=[_ce("answer", {"not": "in the schema"})])
    result = await run(wf, {}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"not": "in the schema"}


def test_a_schedule_may_start_an_event_state() -> None:
    doc = {
        "id": "t",
        "specVersion": "0.8",
        "start": {"stateName": "Start", "schedule": {"cron": "0 * * * *"}},
        "events": [{"name": "Tick", "type": "tick", "source": "clock"}],
        "states": [
            {"name": "Start", "type": "event", "onEvents": [{"eventRefs": ["Tick"]}], "end": True}
        ],
    }
    assert [p for p in validate_document(doc) if p.severity == "error"] == []
    wf = load_workflow(json.dumps(doc))
    assert wf.start.schedule is not None
    assert wf.start.schedule.cron is not None


async def test_state_timeouts_override_top_level_ones_which_are_inherited_otherwise() -> None:
    states = [
        op_state("Own", [call("f")], timeouts={"actionExecTimeout": "PT2S"}, transition="Inherit"),
        op_state("Inherit", [call("f")]),
    ]
    top = {"actionExecTimeout": "PT7S", "stateExecTimeout": "PT1M"}
    effects = ScriptedEffects({"f": {}})
    result = await run(workflow(states, functions=[fn("f")], timeouts=top), {}, effects)
    assert isinstance(result, Completed)
    calls = [r.timeout_seconds for r in effects.requests if isinstance(r, FunctionCall)]
    assert calls == [2.0, 7.0]
    deadlines = [(key, seconds) for kind, key, seconds in effects.log if kind == "deadline"]
    assert deadlines == [("Own/timeout:state", 60.0), ("Inherit/timeout:state", 60.0)]


async def test_without_timeouts_nothing_is_bounded() -> None:
    effects = ScriptedEffects({"f": {}})
    result = await run(workflow([op_state("S", [call("f")])], functions=[fn("f")]), {}, effects)
    assert isinstance(result, Completed)
    [request] = [r for r in effects.requests if isinstance(r, FunctionCall)]
    assert request.timeout_seconds is None
    assert [kind for kind, _, _ in effects.log] == ["call"]


async def test_a_failure_reported_by_the_result_event_is_data_not_a_workflow_error() -> None:
    action = {"eventRef": {"triggerEventRef": "Ask", "resultEventRef": "Answer"}}
    failure = {"error": {"code": "500", "message": "the remote function failed"}}
    effects = ScriptedEffects(events=[_ce("answer", failure)])
    result = await run(workflow([op_state("S", [action])], events=EVENTS), {"k": 1}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"k": 1, **failure}
