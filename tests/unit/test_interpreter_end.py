"""End and transitions (terminate, produceEvents, compensate, continueAs), compensation, input."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.interp_support import call, fn, kinds, op_state, run, workflow
from tideflow.runtime.fake import ScriptedEffects
from tideflow.runtime.result import Completed, ContinuedAs, Failed, Terminated

EVENTS = [
    {"name": "Done", "type": "done", "source": "wf", "kind": "produced"},
    {
        "name": "Moved",
        "type": "moved",
        "kind": "produced",
        "correlation": [{"contextAttributeName": "orderid"}],
    },
]


async def test_transition_and_end_produce_events_in_order() -> None:
    states = [
        {
            "name": "A",
            "type": "inject",
            "data": {"id": "o1"},
            "transition": {
                "nextState": "B",
                "produceEvents": [
                    {
                        "eventRef": "Moved",
                        "data": "${ .id }",
                        "contextAttributes": {"orderid": "${ .id }"},
                    }
                ],
            },
        },
        {
            "name": "B",
            "type": "inject",
            "data": {},
            "end": {
                "produceEvents": [{"eventRef": "Done", "data": {"id": "${ .id }", "fixed": 1}}]
            },
        },
    ]
    effects = ScriptedEffects()
    result = await run(workflow(states, events=EVENTS), {}, effects)
    assert isinstance(result, Completed)
    moved, done = effects.emitted
    assert (moved["type"], moved["data"], moved["orderid"]) == ("moved", "o1", "o1")
    assert (done["type"], done["source"], done["data"]) == ("done", "wf", {"id": "o1", "fixed": 1})
    assert moved["id"] != done["id"]
    assert [key for k, key, _ in effects.log] == ["A/transition/event:0", "B/end/event:0"]


async def test_produced_event_ids_are_deterministic() -> None:
    states = [
        {
            "name": "A",
            "type": "inject",
            "data": {},
            "end": {"produceEvents": [{"eventRef": "Done"}]},
        }
    ]
    wf = workflow(states, events=EVENTS)
    first, second = ScriptedEffects(), ScriptedEffects()
    await run(wf, {}, first)
    await run(wf, {}, second)
    assert first.emitted == second.emitted
    assert "data" not in first.emitted[0]


async def test_terminate_ends_with_terminated() -> None:
    wf = workflow([{"name": "A", "type": "inject", "data": {"x": 1}, "end": {"terminate": True}}])
    result = await run(wf, {})
    assert isinstance(result, Terminated)
    assert (result.output, result.reason) == ({"x": 1}, "terminate")


@pytest.mark.parametrize(
    ("continue_as", "expected"),
    [
        (
            "next-wf",
            ContinuedAs(workflow_id="next-wf", version=None, input={"x": 1}, output={"x": 1}),
        ),
        (
            {
                "workflowId": "w2",
                "version": "3",
                "data": "${ {y: .x} }",
                "workflowExecTimeout": {"duration": "PT1M"},
            },
            ContinuedAs(
                workflow_id="w2",
                version="3",
                input={"y": 1},
                workflow_exec_timeout="PT1M",
                output={"x": 1},
            ),
        ),
    ],
)
async def test_continue_as(continue_as: object, expected: ContinuedAs) -> None:
    wf = workflow(
        [{"name": "A", "type": "inject", "data": {"x": 1}, "end": {"continueAs": continue_as}}]
    )
    result = await run(wf, {})
    assert isinstance(result, ContinuedAs)
    assert (result.workflow_id, result.version, result.input, result.workflow_exec_timeout) == (
        expected.workflow_id,
        expected.version,
        expected.input,
        expected.workflow_exec_timeout,
    )


def _booking(compensate_on: str) -> list[dict[str, Any]]:
    end: dict[str, Any] = {"compensate": True} if compensate_on == "end" else {}
    last: dict[str, Any] = {"name": "Last", "type": "inject", "data": {"last": True}}
    if compensate_on == "transition":
        last["transition"] = {"nextState": "After", "compensate": True}
    else:
        last["end"] = end or True
    return [
        op_state(
            "Hotel",
            [call("book", arguments={"what": "hotel"})],
            transition="Flight",
            compensatedBy="UndoHotel",
        ),
        op_state(
            "Flight",
            [call("book", arguments={"what": "flight"})],
            transition="NoUndo",
            compensatedBy="UndoFlight",
        ),
        {"name": "NoUndo", "type": "inject", "data": {"n": 1}, "transition": "Last"},
        last,
        {"name": "After", "type": "inject", "data": {"after": True}, "end": True},
        op_state(
            "UndoHotel", [call("cancel", arguments={"what": "hotel"})], usedForCompensation=True
        ),
        op_state(
            "UndoFlight",
            [call("cancel", arguments={"what": "flight"})],
            usedForCompensation=True,
            transition="UndoFlight2",
        ),
        {
            "name": "UndoFlight2",
            "type": "inject",
            "data": {"flight2": True},
            "usedForCompensation": True,
            "end": True,
        },
    ]


def _logged(log: list[Any], op: str, what: str, key: str) -> dict[str, Any]:
    log.append((op, what))
    return {key: what}


@pytest.mark.parametrize("trigger", ["end", "transition"])
async def test_compensation_runs_in_reverse_completion_order(trigger: str) -> None:
    log: list[Any] = []
    effects = ScriptedEffects(
        {
            "book": lambda a: _logged(log, "book", a["what"], "booked"),
            "cancel": lambda a: _logged(log, "cancel", a["what"], "cancelled"),
        }
    )
    wf = workflow(_booking(trigger), functions=[fn("book"), fn("cancel")])
    result = await run(wf, {}, effects)
    assert isinstance(result, Completed)
    assert log == [("book", "hotel"), ("book", "flight"), ("cancel", "flight"), ("cancel", "hotel")]
    assert result.output["flight2"] is True
    assert result.output["cancelled"] == "hotel"
    assert kinds(result, "compensation") == ["compensation", "compensation"]
    assert result.output.get("after", False) is (trigger == "transition")


async def test_no_compensation_without_trigger() -> None:
    states = _booking("end")
    states[3]["end"] = True
    effects = ScriptedEffects({"book": {}, "cancel": {}})
    await run(workflow(states, functions=[fn("book"), fn("cancel")]), {}, effects)
    assert [a["what"] for k, _, a in effects.log if k == "call"] == ["hotel", "flight"]


async def test_data_input_schema_rejects_bad_input() -> None:
    schema = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
    wf = workflow(
        [{"name": "A", "type": "inject", "data": {}, "end": True}],
        data_input_schema={"schema": schema},
    )
    result = await run(wf, {"name": 3})
    assert isinstance(result, Failed)
    assert (result.error.name, result.error.code) == ("validation", "VALIDATION")
    assert "name" in result.error.message
    ok = await run(wf, {"name": "x"})
    assert isinstance(ok, Completed)


async def test_data_input_schema_without_fail_on_validation_errors_continues() -> None:
    schema = {"type": "object", "required": ["name"]}
    wf = workflow(
        [{"name": "A", "type": "inject", "data": {"ran": True}, "end": True}],
        data_input_schema={"schema": schema, "failOnValidationErrors": False},
    )
    result = await run(wf, {})
    assert isinstance(result, Completed)
    assert result.output == {"ran": True}
    assert "input.invalid" in kinds(result)


async def test_input_must_be_an_object() -> None:
    wf = workflow([{"name": "A", "type": "inject", "data": {}, "end": True}])
    from tideflow.runtime.interpreter import Interpreter

    result = await Interpreter(wf).run([1, 2], ScriptedEffects())
    assert isinstance(result, Failed)
    assert "JSON object" in result.error.message


async def test_state_data_filters_input_and_output() -> None:
    state = {
        "name": "A",
        "type": "inject",
        "data": {"added": 1},
        "stateDataFilter": {"input": "${ .keep }", "output": "${ {result: .added, kept: .k} }"},
        "end": True,
    }
    result = await run(workflow([state]), {"keep": {"k": 2}, "drop": 3})
    assert isinstance(result, Completed)
    assert result.output == {"result": 1, "kept": 2}


async def test_state_ids_may_be_transition_targets_and_revisits_get_new_keys() -> None:
    states = [
        {
            "name": "Loop",
            "type": "switch",
            "dataConditions": [{"condition": "${ .n < 2 }", "transition": "inc-id"}],
            "defaultCondition": {"end": True},
        },
        {
            "name": "Inc",
            "id": "inc-id",
            "type": "operation",
            "actions": [call("inc", arguments={"n": "${ .n }"})],
            "transition": "Loop",
        },
    ]
    effects = ScriptedEffects({"inc": lambda a: {"n": a["n"] + 1}})
    result = await run(workflow(states, functions=[fn("inc")]), {"n": 0}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"n": 2}
    assert [key for _, key, _ in effects.log] == [
        "Inc/action:0/attempt:1",
        "Inc#2/action:0/attempt:1",
    ]


async def test_unhandled_error_in_compensation_fails_the_instance() -> None:
    from tideflow.errors import FunctionCallError

    def broken(_: dict[str, Any]) -> None:
        raise FunctionCallError("cannot cancel", code="409")

    effects = ScriptedEffects({"book": {}, "cancel": broken})
    result = await run(workflow(_booking("end"), functions=[fn("book"), fn("cancel")]), {}, effects)
    assert isinstance(result, Failed)
    assert (result.error.code, result.error.state) == ("409", "UndoFlight")


async def test_compensation_state_may_handle_its_own_errors() -> None:
    from tideflow.errors import FunctionCallError

    def broken(_: dict[str, Any]) -> None:
        raise FunctionCallError("cannot cancel", code="409")

    states = _booking("end")
    undo_flight = next(s for s in states if s["name"] == "UndoFlight")
    undo_flight["onErrors"] = [{"errorRef": "Conflict", "end": True}]
    effects = ScriptedEffects({"book": {}, "cancel": broken})
    wf = workflow(
        states, functions=[fn("book"), fn("cancel")], errors=[{"name": "Conflict", "code": "409"}]
    )
    result = await run(wf, {}, effects)
    assert isinstance(result, Failed)  # UndoHotel's error is not handled
    assert result.error.state == "UndoHotel"
    assert "error.handled" in kinds(result)
