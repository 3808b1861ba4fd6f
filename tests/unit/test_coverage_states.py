"""Spec coverage: state rules no other test exercised (docs/spec-coverage.md).

Sections 3, 5, 9, 15 of the conformance checklist and the "known spec/schema
inconsistencies": which timeouts each state type takes, validation of
compensation states, event data filters on event-based switches, parallel
branches working on copies, timeouts of sleep/foreach/event/callback states,
and the side Tideflow picked on each inconsistency.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.unit.interp_support import call, fn, kinds, op_state, run, workflow
from tideflow.errors import format_path
from tideflow.runtime.effects import EventWait, FunctionCall
from tideflow.runtime.fake import ScriptedEffects
from tideflow.runtime.result import Completed, Failed
from tideflow.workflow import validate_document

ACTION = {"functionRef": "f"}
STATES: dict[str, dict[str, Any]] = {
    "event": {"type": "event", "onEvents": [{"eventRefs": ["In"], "actions": [ACTION]}]},
    "operation": {"type": "operation", "actions": [ACTION]},
    "switch-data": {
        "type": "switch",
        "dataConditions": [{"condition": "${ .a }", "transition": "Z"}],
        "defaultCondition": {"transition": "Z"},
    },
    "switch-event": {
        "type": "switch",
        "eventConditions": [{"eventRef": "In", "transition": "Z"}],
        "defaultCondition": {"transition": "Z"},
    },
    "sleep": {"type": "sleep", "duration": "PT1S"},
    "parallel": {"type": "parallel", "branches": [{"name": "b", "actions": [ACTION]}]},
    "inject": {"type": "inject", "data": {}},
    "foreach": {"type": "foreach", "inputCollection": "${ .items }", "actions": [ACTION]},
    "callback": {"type": "callback", "action": ACTION, "eventRef": "In"},
}
ALLOWED = {
    "event": {"stateExecTimeout", "actionExecTimeout", "eventTimeout"},
    "operation": {"stateExecTimeout", "actionExecTimeout"},
    "switch-data": {"stateExecTimeout"},
    "switch-event": {"stateExecTimeout", "eventTimeout"},
    "sleep": {"stateExecTimeout"},
    "parallel": {"stateExecTimeout", "branchExecTimeout"},
    "inject": {"stateExecTimeout"},
    "foreach": {"stateExecTimeout", "actionExecTimeout"},
    "callback": {"stateExecTimeout", "actionExecTimeout", "eventTimeout"},
}
KEYS = (
    "stateExecTimeout",
    "actionExecTimeout",
    "eventTimeout",
    "branchExecTimeout",
    "workflowExecTimeout",
)


def _doc(kind: str, **more: Any) -> dict[str, Any]:
    state = {"name": "S", **copy.deepcopy(STATES[kind]), **more}
    if not kind.startswith("switch"):
        state["transition"] = "Z"
    return {
        "id": "t",
        "specVersion": "0.8",
        "start": "S",
        "functions": [fn("f")],
        "events": [{"name": "In", "type": "in", "source": "s"}],
        "states": [state, {"name": "Z", "type": "inject", "data": {}, "end": True}],
    }


def _errors(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (format_path(p.path), p.message) for p in validate_document(doc) if p.severity == "error"
    ]


@pytest.mark.parametrize("kind", sorted(STATES))
def test_each_state_type_takes_exactly_its_timeouts(kind: str) -> None:
    for key in KEYS:
        found = _errors(_doc(kind, timeouts={key: "PT1S"}))
        if key in ALLOWED[kind]:
            assert found == [], (kind, key, found)
        else:
            assert [p for p, _ in found] == [f"states[0].timeouts.{key}"], (kind, key, found)


def test_branch_timeouts_are_action_and_branch_only() -> None:
    for key in KEYS:
        branch = {"name": "b", "actions": [ACTION], "timeouts": {key: "PT1S"}}
        found = _errors(_doc("parallel", branches=[branch]))
        if key in ("actionExecTimeout", "branchExecTimeout"):
            assert found == [], (key, found)
        else:
            assert [p for p, _ in found] == [f"states[0].branches[0].timeouts.{key}"], key


def test_on_errors_everywhere_but_inject_and_compensation_everywhere_but_event() -> None:
    handler = {"onErrors": [{"errorRef": "E", "end": True}]}
    for kind in STATES:
        doc = _doc(kind, **handler)
        doc["errors"] = [{"name": "E", "code": "1"}]
        found = _errors(doc)
        assert (found != []) is (kind == "inject"), (kind, found)
    for kind in STATES:
        doc = _doc(kind, compensatedBy="U")
        doc["states"].append(
            {"name": "U", "type": "inject", "data": {}, "usedForCompensation": True}
        )
        assert _errors(doc) == [], kind
        marked = _doc(kind, usedForCompensation=True)
        marked["states"].insert(0, {"name": "First", "type": "inject", "data": {}, "end": True})
        marked["start"] = "First"
        marked["states"][2]["usedForCompensation"] = True  # Z: where S transitions
        found = _errors(marked)
        assert (found != []) is (kind == "event"), (kind, found)


COMPENSATION_CASES = [
    (
        "compensation state without transition or end is valid",
        {"name": "U", "type": "inject", "data": {}, "usedForCompensation": True},
        None,
    ),
    (
        "compensation state transitions to a main-flow state",
        {"name": "U", "type": "inject", "data": {}, "usedForCompensation": True, "transition": "Z"},
        ("states[2].transition", "a compensation state may only transition to compensation"),
    ),
    (
        "compensation state compensated itself",
        {
            "name": "U",
            "type": "inject",
            "data": {},
            "usedForCompensation": True,
            "compensatedBy": "U",
        },
        ("states[2].compensatedBy", "a compensation state cannot itself be compensated"),
    ),
]


@pytest.mark.parametrize(
    ("name", "undo", "problem"), COMPENSATION_CASES, ids=[c[0] for c in COMPENSATION_CASES]
)
def test_compensation_state_rules(name: str, undo: dict[str, Any], problem: Any) -> None:
    doc = _doc("operation", compensatedBy="U")
    doc["states"].append(undo)
    found = _errors(doc)
    if problem is None:
        assert found == []
    else:
        assert any(p == problem[0] and problem[1] in m for p, m in found), found


def test_start_and_run_before_cannot_be_compensation_states() -> None:
    doc = _doc("inject")
    doc["states"][0]["usedForCompensation"] = True
    assert ("start", "the start state cannot be a compensation state") in _errors(doc)
    doc = _doc("inject")
    doc["states"].append({"name": "U", "type": "inject", "data": {}, "usedForCompensation": True})
    doc["timeouts"] = {"workflowExecTimeout": {"duration": "PT1M", "runBefore": "U"}}
    assert (
        "timeouts.workflowExecTimeout.runBefore",
        "a runBefore state cannot be a compensation state",
    ) in _errors(doc)


def test_parallel_branches_hold_actions_only_so_terminate_cannot_be_inside() -> None:
    branch = {"name": "b", "actions": [ACTION], "end": {"terminate": True}}
    assert ("states[0].branches[0].end", "not a property of a branch") in _errors(
        _doc("parallel", branches=[branch])
    )


def test_event_refs_in_on_events_are_unique() -> None:
    doc = _doc("event")
    doc["states"][0]["onEvents"][0]["eventRefs"] = ["In", "In"]
    assert ("states[0].onEvents[0].eventRefs[1]", "'In' is listed twice") in _errors(doc)


# -- inconsistencies: the side Tideflow picked ------------------------------------


def test_inject_state_has_no_on_errors_as_the_schema_says() -> None:
    doc = _doc("inject", onErrors=[{"errorRef": "E", "end": True}])
    doc["errors"] = [{"name": "E"}]
    [(path, message)] = _errors(doc)
    assert path == "states[0].onErrors"
    assert "no error handlers in 0.8" in message


def test_produced_event_context_attributes_are_an_object_as_the_schema_says() -> None:
    doc = _doc("inject")
    doc["events"].append({"name": "Out", "type": "out", "kind": "produced"})
    produce: dict[str, Any] = {"eventRef": "Out", "contextAttributes": [{"orderid": "1"}]}
    doc["states"][1]["end"] = {"produceEvents": [produce]}
    assert (
        "states[1].end.produceEvents[0].contextAttributes",
        "must be an object of strings, not an array",
    ) in _errors(doc)
    produce["contextAttributes"] = {"orderid": "1"}
    assert _errors(doc) == []


def test_action_filter_typo_of_the_simpleadd_example_is_reported() -> None:
    doc = _doc("operation")
    doc["states"][0]["actions"] = [{"functionRef": "f", "actionFilter": {"results": "${ .x }"}}]
    assert (
        "states[0].actions[0].actionFilter",
        "not a property of an action; did you mean 'actionDataFilter'?",
    ) in _errors(doc)


# -- runs ----------------------------------------------------------------------------

EVENTS = [
    {"name": "Approved", "type": "approved", "source": "bank"},
    {"name": "Denied", "type": "denied", "source": "bank"},
]


def _ce(kind: str, data: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": kind, "source": "bank", "type": kind, "data": data}


async def test_event_switch_applies_the_matching_condition_event_data_filter() -> None:
    states = [
        {
            "name": "Wait",
            "type": "switch",
            "eventConditions": [
                {
                    "eventRef": "Approved",
                    "transition": "Done",
                    "eventDataFilter": {"data": "${ .amount }", "toStateData": "${ .approved }"},
                },
                {
                    "eventRef": "Denied",
                    "transition": "Done",
                    "eventDataFilter": {"useData": False},
                },
            ],
            "defaultCondition": {"transition": "Done"},
        },
        {"name": "Done", "type": "inject", "data": {"done": True}, "end": True},
    ]
    wf = workflow(states, events=EVENTS)
    approved = await run(wf, {"k": 1}, ScriptedEffects(events=[_ce("approved", {"amount": 5})]))
    assert isinstance(approved, Completed)
    assert approved.output == {"k": 1, "approved": 5, "done": True}
    denied = await run(wf, {"k": 1}, ScriptedEffects(events=[_ce("denied", {"why": "x"})]))
    assert isinstance(denied, Completed)
    assert denied.output == {"k": 1, "done": True}


async def test_event_state_use_data_false_and_parallel_action_mode() -> None:
    import asyncio

    async def slow(_: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        return {"v": "slow", "s": 1}

    state = {
        "name": "E",
        "type": "event",
        "onEvents": [
            {
                "eventRefs": ["Approved"],
                "actionMode": "parallel",
                "actions": [call("slow"), call("fast")],
                "eventDataFilter": {"useData": False},
            }
        ],
        "end": True,
    }
    effects = ScriptedEffects(
        {"slow": slow, "fast": {"v": "fast", "f": 1}}, events=[_ce("approved", {"amount": 5})]
    )
    wf = workflow([state], events=EVENTS, functions=[fn("slow"), fn("fast")])
    result = await run(wf, {}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"v": "fast", "s": 1, "f": 1}  # no event data, definition order


async def test_parallel_branches_each_get_a_copy_of_the_state_input() -> None:
    seen: list[tuple[str, Any]] = []

    def record(branch: str):  # type: ignore[no-untyped-def]
        def answer(args: dict[str, Any]) -> dict[str, Any]:
            seen.append((branch, args["data"]))
            return {"shared": {branch: True}, "list": [branch]}

        return answer

    state = {
        "name": "P",
        "type": "parallel",
        "branches": [
            {"name": "a", "actions": [call("fa", arguments={"data": "${ . }"}), call("fa2")]},
            {"name": "b", "actions": [call("fb", arguments={"data": "${ . }"})]},
        ],
        "end": True,
    }
    effects = ScriptedEffects({"fa": record("a"), "fa2": {"second": True}, "fb": record("b")})
    wf = workflow([state], functions=[fn("fa"), fn("fa2"), fn("fb")])
    result = await run(wf, {"shared": {"in": 1}, "list": ["in"]}, effects)
    assert isinstance(result, Completed)
    assert sorted(seen, key=lambda s: s[0]) == [
        ("a", {"shared": {"in": 1}, "list": ["in"]}),
        ("b", {"shared": {"in": 1}, "list": ["in"]}),
    ]
    assert result.output == {
        "shared": {"in": 1, "a": True, "b": True},
        "list": ["in", "a", "b"],
        "second": True,
    }


async def test_sleep_state_exec_timeout_is_a_handleable_timeout() -> None:
    states = [
        {
            "name": "Nap",
            "type": "sleep",
            "duration": "PT1H",
            "timeouts": {"stateExecTimeout": "PT1M"},
            "onErrors": [{"errorRef": "Timeout", "transition": "Late"}],
            "transition": "Late",
        },
        {"name": "Late", "type": "inject", "data": {"late": True}, "end": True},
    ]
    wf = workflow(states, errors=[{"name": "Timeout", "code": "TIMEOUT"}])
    effects = ScriptedEffects(expire=["Nap/timeout:state"])
    result = await run(wf, {}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"late": True}
    assert ("deadline", "Nap/timeout:state", 60.0) in effects.log


async def test_foreach_action_exec_timeout_reaches_every_iteration_call() -> None:
    state = {
        "name": "F",
        "type": "foreach",
        "inputCollection": "${ .items }",
        "outputCollection": "${ .out }",
        "actions": [call("f", arguments={"v": "${ .item }"})],
        "timeouts": {"actionExecTimeout": "PT3S", "stateExecTimeout": "PT1M"},
        "end": True,
    }
    effects = ScriptedEffects({"f": lambda a: a["v"]})
    result = await run(workflow([state], functions=[fn("f")]), {"items": [1, 2]}, effects)
    assert isinstance(result, Completed)
    assert result.output["out"] == [1, 2]
    timeouts = [r.timeout_seconds for r in effects.requests if isinstance(r, FunctionCall)]
    assert timeouts == [3.0, 3.0]
    assert ("deadline", "F/timeout:state", 60.0) in effects.log


@pytest.mark.parametrize("kind", ["event", "callback"])
async def test_event_and_callback_states_take_action_event_and_state_timeouts(kind: str) -> None:
    timeouts = {"actionExecTimeout": "PT2S", "eventTimeout": "PT9S", "stateExecTimeout": "PT1M"}
    if kind == "event":
        state: dict[str, Any] = {
            "name": "S",
            "type": "event",
            "onEvents": [{"eventRefs": ["Approved"], "actions": [call("f")]}],
        }
    else:
        state = {"name": "S", "type": "callback", "action": call("f"), "eventRef": "Approved"}
    states = [
        {"name": "First", "type": "inject", "data": {}, "transition": "S"},
        {**state, "timeouts": timeouts, "end": True},
    ]
    effects = ScriptedEffects({"f": {"called": True}}, events=[_ce("approved", {"ok": 1})])
    result = await run(workflow(states, events=EVENTS, functions=[fn("f")]), {}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"called": True, "ok": 1}
    [wait] = [r for r in effects.requests if isinstance(r, EventWait)]
    [action] = [r for r in effects.requests if isinstance(r, FunctionCall)]
    assert (wait.timeout_seconds, action.timeout_seconds) == (9.0, 2.0)
    assert ("deadline", "S/timeout:state", 60.0) in effects.log


async def test_completed_parallel_state_is_compensated_like_any_other() -> None:
    states = [
        {
            "name": "P",
            "type": "parallel",
            "branches": [{"name": "a", "actions": [call("book")]}],
            "compensatedBy": "Undo",
            "transition": "Last",
        },
        {"name": "Last", "type": "inject", "data": {}, "end": {"compensate": True}},
        op_state("Undo", [call("cancel")], usedForCompensation=True),
    ]
    effects = ScriptedEffects({"book": {"booked": True}, "cancel": {"cancelled": True}})
    wf = workflow(states, functions=[fn("book"), fn("cancel")])
    result = await run(wf, {}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"booked": True, "cancelled": True}
    assert kinds(result, "compensation") == ["compensation"]


async def test_unhandled_error_halts_the_instance_at_once() -> None:
    from tideflow.errors import FunctionCallError

    def boom(_: dict[str, Any]) -> None:
        raise FunctionCallError("unknown failure", code="WEIRD")

    states = [
        op_state("S", [call("boom"), call("never")], transition="After"),
        {"name": "After", "type": "inject", "data": {"after": True}, "end": True},
    ]
    effects = ScriptedEffects({"boom": boom, "never": {}})
    result = await run(workflow(states, functions=[fn("boom"), fn("never")]), {}, effects)
    assert isinstance(result, Failed)
    assert (result.error.code, result.error.state) == ("WEIRD", "S")
    assert [key for _, key, _ in effects.log] == ["S/action:0/attempt:1"]
