"""Actions: functionRef forms, async invoke, eventRef, subFlowRef, sleep, condition, filters."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.interp_support import call, calls, fn, kinds, op_state, run, workflow
from tideflow.errors import FunctionCallError
from tideflow.runtime.fake import ScriptedEffects
from tideflow.runtime.result import Completed, Failed

EVENTS = [
    {"name": "Ask", "type": "ask", "source": "wf", "kind": "produced"},
    {"name": "Answer", "type": "answer", "source": "svc"},
]


async def test_string_function_ref_is_a_sync_call_without_arguments() -> None:
    effects = ScriptedEffects({"f": {"r": 1}})
    result = await run(workflow([op_state("S", [call("f")])], functions=[fn("f")]), {}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"r": 1}
    assert effects.log == [("call", "S/action:0/attempt:1", {})]


async def test_arguments_are_evaluated_recursively_and_literals_kept() -> None:
    args = {"name": "${ .user.name }", "fixed": 3, "nested": {"l": ["${ .n + 1 }", "x"]}}
    effects = ScriptedEffects({"f": None})
    wf = workflow([op_state("S", [call("f", arguments=args)])], functions=[fn("f")])
    await run(wf, {"user": {"name": "ada"}, "n": 1}, effects)
    assert effects.log[0][2] == {"name": "ada", "fixed": 3, "nested": {"l": [2, "x"]}}


async def test_async_function_is_fire_and_forget_and_errors_are_ignored() -> None:
    def boom(_: dict[str, Any]) -> None:
        raise FunctionCallError("mail server down", code="500")

    action = {"functionRef": {"refName": "mail", "invoke": "async"}}
    effects = ScriptedEffects({"mail": boom})
    result = await run(
        workflow([op_state("S", [action])], functions=[fn("mail")]), {"a": 1}, effects
    )
    assert isinstance(result, Completed)
    assert result.output == {"a": 1}
    assert calls(effects) == ["S/action:0/attempt:1"]
    assert kinds(result, "action.") == ["action.started", "action.completed"]


async def test_action_data_filter_from_state_data_results_to_state_data() -> None:
    action = call(
        "f",
        arguments={"v": "${ .x }"},
        actionDataFilter={
            "fromStateData": "${ .inner }",
            "results": "${ .payload.value }",
            "toStateData": "${ .out.value }",
        },
    )
    effects = ScriptedEffects({"f": lambda a: {"payload": {"value": a["v"] * 2}}})
    wf = workflow([op_state("S", [action])], functions=[fn("f")])
    result = await run(wf, {"inner": {"x": 4}}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"inner": {"x": 4}, "out": {"value": 8}}


async def test_use_results_false_discards_the_result() -> None:
    action = call("f", actionDataFilter={"useResults": False})
    effects = ScriptedEffects({"f": {"ignored": True}})
    result = await run(workflow([op_state("S", [action])], functions=[fn("f")]), {"a": 1}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"a": 1}


@pytest.mark.parametrize(("flag", "called"), [(True, True), (False, False)])
async def test_condition_false_skips_the_action(flag: bool, called: bool) -> None:
    action = call("f", condition="${ .go }")
    effects = ScriptedEffects({"f": {"r": 1}})
    result = await run(
        workflow([op_state("S", [action])], functions=[fn("f")]), {"go": flag}, effects
    )
    assert bool(calls(effects)) is called
    assert ("action.skipped" in kinds(result)) is (not called)


async def test_action_sleep_before_and_after() -> None:
    action = call("f", sleep={"before": "PT1S", "after": "PT2S"})
    effects = ScriptedEffects({"f": 1})
    await run(workflow([op_state("S", [action])], functions=[fn("f")]), {}, effects)
    assert [(k, key) for k, key, _ in effects.log] == [
        ("sleep", "S/action:0/sleep:before"),
        ("call", "S/action:0/attempt:1"),
        ("sleep", "S/action:0/sleep:after"),
    ]


async def test_expression_function_and_fn_reference_with_const() -> None:
    functions = [
        fn("total", "expression", "${ .a + .b + $CONST.bonus }"),
        fn("double", "expression", ".a * 2"),
    ]
    states = [
        op_state(
            "S", [call("total", actionDataFilter={"toStateData": "${ .sum }"})], transition="T"
        ),
        {
            "name": "T",
            "type": "switch",
            "dataConditions": [{"condition": "${ fn:double == 2 }", "transition": "Yes"}],
            "defaultCondition": {"end": True},
        },
        {"name": "Yes", "type": "inject", "data": {"yes": True}, "end": True},
    ]
    wf = workflow(states, functions=functions, constants={"bonus": 10})
    result = await run(wf, {"a": 1, "b": 2})
    assert isinstance(result, Completed)
    assert result.output == {"a": 1, "b": 2, "sum": 13, "yes": True}


async def test_workflow_and_secrets_variables() -> None:
    action = call(
        "f",
        arguments={
            "who": "${ $WORKFLOW.id }",
            "key": "${ $SECRETS.apiKey }",
            "i": "${ $WORKFLOW.instanceId }",
        },
    )
    effects = ScriptedEffects({"f": None})
    wf = workflow([op_state("S", [action])], functions=[fn("f")], secrets=["apiKey"])
    await run(wf, {}, effects, secrets={"apiKey": "s3cret"})
    assert effects.log[0][2] == {"who": "t", "key": "s3cret", "i": "id-1"}


async def test_event_ref_produces_trigger_and_waits_for_result() -> None:
    action = {
        "eventRef": {
            "triggerEventRef": "Ask",
            "resultEventRef": "Answer",
            "data": "${ .question }",
            "contextAttributes": {"orderid": "${ .id }"},
        }
    }
    answer = {"specversion": "1.0", "id": "1", "source": "svc", "type": "answer", "data": {"a": 42}}
    effects = ScriptedEffects(events=[answer])
    wf = workflow([op_state("S", [action])], events=EVENTS)
    result = await run(wf, {"question": {"q": "?"}, "id": "o1"}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"question": {"q": "?"}, "id": "o1", "a": 42}
    produced = effects.emitted[0]
    assert produced["type"] == "ask"
    assert produced["source"] == "wf"
    assert produced["orderid"] == "o1"
    assert produced["data"] == {"q": "?"}
    assert [k for k, _, _ in effects.log] == ["emit", "wait"]


async def test_event_ref_result_timeout_is_a_handleable_timeout_error() -> None:
    action = {
        "eventRef": {
            "triggerEventRef": "Ask",
            "resultEventRef": "Answer",
            "resultEventTimeout": "PT1S",
        }
    }
    state = op_state("S", [action], onErrors=[{"errorRef": "TimedOut", "end": True}])
    wf = workflow([state], events=EVENTS, errors=[{"name": "TimedOut", "code": "TIMEOUT"}])
    effects = ScriptedEffects(expire=["S/action:0/attempt:1/result"])
    result = await run(wf, {"k": 1}, effects)
    assert isinstance(result, Completed)
    assert "error.handled" in kinds(result)
    unhandled = await run(workflow([op_state("S", [action])], events=EVENTS), {}, ScriptedEffects())
    assert isinstance(unhandled, Failed)
    assert (unhandled.error.name, unhandled.error.code) == ("timeout", "TIMEOUT")


async def test_event_ref_async_only_produces() -> None:
    action = {"eventRef": {"triggerEventRef": "Ask", "resultEventRef": "Answer", "invoke": "async"}}
    effects = ScriptedEffects()
    result = await run(workflow([op_state("S", [action])], events=EVENTS), {"x": 1}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"x": 1}
    assert [k for k, _, _ in effects.log] == ["emit"]


async def test_subflow_sync_result_is_merged_and_input_is_action_data() -> None:
    action = {
        "subFlowRef": {"workflowId": "child", "version": "2"},
        "actionDataFilter": {"fromStateData": "${ .order }"},
    }
    effects = ScriptedEffects(subflows={"child": lambda data: {"shipped": data["id"]}})
    result = await run(workflow([op_state("S", [action])]), {"order": {"id": 9}}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"order": {"id": 9}, "shipped": 9}
    assert effects.log == [("subflow", "S/action:0/attempt:1/subflow", "child")]


async def test_subflow_sync_error_propagates_and_async_does_not() -> None:
    def failing(_: object) -> None:
        raise FunctionCallError("child failed", code="CHILD")

    effects = ScriptedEffects(subflows={"child": failing})
    sync = await run(workflow([op_state("S", [{"subFlowRef": "child"}])]), {}, effects)
    assert isinstance(sync, Failed)
    assert sync.error.code == "CHILD"
    action = {
        "subFlowRef": {"workflowId": "child", "invoke": "async", "onParentComplete": "continue"}
    }
    effects = ScriptedEffects(subflows={"child": failing})
    result = await run(workflow([op_state("S", [action])]), {"a": 1}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"a": 1}


async def test_sonataflow_dialect_evaluates_plain_expression_arguments() -> None:
    action = call(
        "f", arguments={"name": ".user.name", "text": "hello", "bad": ".[", "keep": "${ .n }"}
    )
    wf = workflow([op_state("S", [action])], functions=[fn("f")])
    strict = ScriptedEffects({"f": None})
    await run(wf, {"user": {"name": "ada"}, "n": 1}, strict)
    assert strict.log[0][2] == {"name": ".user.name", "text": "hello", "bad": ".[", "keep": 1}
    lenient = ScriptedEffects({"f": None})
    await run(wf, {"user": {"name": "ada"}, "n": 1}, lenient, dialect="sonataflow")
    assert lenient.log[0][2] == {"name": "ada", "text": "hello", "bad": ".[", "keep": 1}


async def test_sonataflow_dialect_passes_state_data_without_arguments() -> None:
    wf = workflow([op_state("S", [call("f")])], functions=[fn("f")])
    strict, lenient = ScriptedEffects({"f": None}), ScriptedEffects({"f": None})
    await run(wf, {"a": 1}, strict)
    await run(wf, {"a": 1}, lenient, dialect="sonataflow")
    assert (strict.log[0][2], lenient.log[0][2]) == ({}, {"a": 1})


async def test_top_level_version_expression_is_evaluated_against_the_input() -> None:
    action = call("f", arguments={"v": "${ $WORKFLOW.version }"})
    wf = workflow([op_state("S", [action])], functions=[fn("f")], version="${ .ver }")
    effects = ScriptedEffects({"f": None})
    await run(wf, {"ver": "2.1"}, effects)
    assert effects.log[0][2] == {"v": "2.1"}
