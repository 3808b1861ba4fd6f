"""The model: shorthand forms normalized, spec defaults applied, lookups, immutability."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from tideflow.workflow import load_workflow
from tideflow.workflow.model import (
    CallbackState,
    End,
    EventState,
    ForEachState,
    FunctionRef,
    InjectState,
    OperationState,
    ParallelState,
    SleepState,
    Start,
    SubFlowRef,
    SwitchState,
    Transition,
    Workflow,
    freeze,
    thaw,
)


def _load(doc: dict[str, Any]) -> Workflow:
    return load_workflow(json.dumps({"id": "wf", "specVersion": "0.8", **doc}))


SHORTHAND = {
    "functions": [{"name": "f", "operation": "http://x/api.json#op"}],
    "events": [
        {
            "name": "In",
            "type": "in",
            "source": "/s",
            "correlation": [{"contextAttributeName": "k"}],
        },
        {"name": "Out", "type": "out", "kind": "produced"},
    ],
    "states": [
        {
            "name": "Work",
            "id": "work-id",
            "type": "operation",
            "actions": [{"functionRef": "f"}, {"subFlowRef": "child"}],
            "transition": "Wait",
        },
        {
            "name": "Wait",
            "type": "event",
            "onEvents": [{"eventRefs": ["In"], "actions": []}],
            "end": True,
        },
    ],
}


def test_shorthand_forms_are_normalized() -> None:
    wf = _load(SHORTHAND)
    work = wf.state("Work")
    assert isinstance(work, OperationState)
    assert work.actions[0].function_ref == FunctionRef(ref_name="f")
    assert work.actions[1].sub_flow_ref == SubFlowRef(workflow_id="child")
    assert work.transition == Transition(next_state="Wait")
    assert wf.state("Wait").end == End()
    assert wf.start == Start(state_name="Work")  # no start: the first state


def test_spec_defaults_are_applied() -> None:
    wf = _load(SHORTHAND)
    assert (wf.expression_lang, wf.keep_active, wf.auto_retries) == ("jq", False, False)
    assert wf.function("f").type == "rest"
    assert wf.event("In").kind == "consumed"
    assert wf.event("In").data_only is True
    work = wf.state("Work")
    assert isinstance(work, OperationState)
    assert work.action_mode == "sequential"
    assert work.used_for_compensation is False
    action = work.actions[0]
    assert action.function_ref is not None
    assert action.function_ref.invoke == "sync"
    assert action.action_data_filter.use_results is True
    assert work.actions[1].sub_flow_ref == SubFlowRef(
        workflow_id="child", invoke="sync", on_parent_complete="terminate"
    )
    wait = wf.state("Wait")
    assert isinstance(wait, EventState)
    assert wait.exclusive is True
    assert wait.on_events[0].event_data_filter.use_data is True


def test_lookups_by_name_and_id() -> None:
    wf = _load(SHORTHAND)
    assert wf.state("work-id") is wf.state("Work")
    assert wf.start_state is wf.state("Work")
    assert wf.has_state("Wait")
    assert not wf.has_state("Nope")
    assert wf.event("In").correlation[0].context_attribute_name == "k"
    with pytest.raises(KeyError):
        wf.function("missing")


def test_the_model_is_immutable() -> None:
    wf = _load(SHORTHAND)
    with pytest.raises(dataclasses.FrozenInstanceError):
        wf.id = "other"  # type: ignore[misc]
    assert isinstance(wf.states, tuple)
    with pytest.raises(TypeError):
        wf.metadata["x"] = "y"  # type: ignore[index]


def test_freeze_and_thaw_round_trip() -> None:
    value = {"a": [1, {"b": "${ .c }"}], "d": None}
    frozen = freeze(value)
    with pytest.raises(TypeError):
        frozen["a"] = 2
    assert frozen["a"][1]["b"] == "${ .c }"
    assert thaw(frozen) == value


ALL_STATES = {
    "functions": [{"name": "f", "operation": "http://x/api.json#op"}],
    "events": [{"name": "Cb", "type": "cb", "source": "/s"}],
    "retries": [{"name": "r", "maxAttempts": "3", "delay": "PT1S", "multiplier": 2}],
    "errors": [{"name": "E", "code": 500}],
    "timeouts": {"workflowExecTimeout": "PT1H", "stateExecTimeout": "PT1M"},
    "start": {"stateName": "Sleep", "schedule": {"cron": "0 0/15 * * * ?"}},
    "states": [
        {"name": "Sleep", "type": "sleep", "duration": "PT1S", "transition": "Fan"},
        {
            "name": "Fan",
            "type": "parallel",
            "branches": [{"name": "b", "actions": [{"functionRef": "f"}]}],
            "completionType": "atLeast",
            "numCompleted": 1,
            "transition": "Each",
        },
        {
            "name": "Each",
            "type": "foreach",
            "inputCollection": "${ .items }",
            "iterationParam": "item",
            "actions": [{"functionRef": "f", "sleep": {"before": "PT2S", "after": "PT1S"}}],
            "timeouts": {"stateExecTimeout": {"single": "PT1S", "total": "PT5S"}},
            "transition": "Call",
        },
        {
            "name": "Call",
            "type": "callback",
            "action": {"functionRef": {"refName": "f", "invoke": "async"}},
            "eventRef": "Cb",
            "onErrors": [{"errorRefs": ["E"], "end": {"terminate": True}}],
            "transition": "Pick",
        },
        {
            "name": "Pick",
            "type": "switch",
            "dataConditions": [{"condition": ".ok", "end": {"continueAs": "again"}}],
            "defaultCondition": {"transition": {"nextState": "Add", "compensate": True}},
        },
        {"name": "Add", "type": "inject", "data": {"x": [1, 2]}, "end": True},
    ],
}


def test_every_state_type_is_built() -> None:
    wf = _load(ALL_STATES)
    kinds = [type(s) for s in wf.states]
    expected = [SleepState, ParallelState, ForEachState, CallbackState, SwitchState, InjectState]
    assert kinds == expected
    fan = wf.state("Fan")
    assert isinstance(fan, ParallelState)
    assert fan.num_completed == 1
    each = wf.state("Each")
    assert isinstance(each, ForEachState)
    assert each.mode == "parallel"
    assert each.timeouts.state_exec_timeout is not None
    assert each.timeouts.state_exec_timeout.single == "PT1S"
    assert each.actions[0].sleep is not None
    assert each.actions[0].sleep.after == "PT1S"
    assert each.actions[0].sleep.before == "PT2S"  # both: the schema's oneOf bug is not copied
    call = wf.state("Call")
    assert isinstance(call, CallbackState)
    assert call.on_errors[0].errors == ("E",)
    assert call.on_errors[0].end == End(terminate=True)
    pick = wf.state("Pick")
    assert isinstance(pick, SwitchState)
    assert not pick.is_event_based
    end = pick.data_conditions[0].end
    assert end is not None
    assert end.continue_as is not None
    assert end.continue_as.workflow_id == "again"
    assert pick.default_condition is not None
    default = pick.default_condition.transition
    assert default == Transition(next_state="Add", compensate=True)
    add = wf.state("Add")
    assert isinstance(add, InjectState)
    assert thaw(add.data) == {"x": [1, 2]}


def test_top_level_definitions_are_built() -> None:
    wf = _load(ALL_STATES)
    assert wf.start.schedule is not None
    assert wf.start.schedule.cron is not None
    assert wf.start.schedule.cron.expression == "0 0/15 * * * ?"
    assert wf.retry("r").max_attempts == "3"
    assert wf.error("E").code == "500"
    assert wf.timeouts.workflow_exec_timeout is not None
    assert wf.timeouts.workflow_exec_timeout.duration == "PT1H"
    assert wf.timeouts.workflow_exec_timeout.interrupt is True
    assert wf.timeouts.state_exec_timeout is not None
    assert wf.timeouts.state_exec_timeout.total == "PT1M"


def test_expressions_keep_their_raw_text() -> None:
    wf = _load(ALL_STATES)
    each = wf.state("Each")
    assert isinstance(each, ForEachState)
    assert each.input_collection == "${ .items }"
    pick = wf.state("Pick")
    assert isinstance(pick, SwitchState)
    assert pick.data_conditions[0].condition == ".ok"
