"""SonataFlow's dialect: each leniency with a small workflow in SonataFlow's style.

Every expected output follows SonataFlow's code (the source of each rule is in
docs/spec-coverage.md, section "SonataFlow dialect"); the strict reading of the
same workflow is checked beside it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tideflow.errors import WorkflowValidationError, format_path
from tideflow.runtime.fake import ScriptedEffects
from tideflow.runtime.interpreter import Interpreter
from tideflow.runtime.result import Completed, Failed, RunResult
from tideflow.workflow import load_workflow

SF = "sonataflow"


def _doc(states: list[dict[str, Any]], **top: Any) -> dict[str, Any]:
    return {"id": "sf", "specVersion": "0.8", "start": states[0]["name"], "states": states, **top}


def _errors(doc: dict[str, Any], dialect: str | None) -> list[str]:
    try:
        load_workflow(json.dumps(doc), dialect=dialect)
    except WorkflowValidationError as exc:
        return [format_path(p.path) for p in exc.problems if p.severity == "error"]
    return []


async def _run(
    doc: dict[str, Any], data: Any, effects: ScriptedEffects | None = None, **interp: Any
) -> RunResult:
    wf = load_workflow(json.dumps(doc), dialect=SF)
    return await Interpreter(wf, dialect=SF, **interp).run(data, effects or ScriptedEffects())


def _output(result: RunResult) -> Any:
    assert isinstance(result, Completed), result
    return result.output


def _op(actions: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    return {"name": "Do", "type": "operation", "actions": actions, "end": True, **more}


SYSOUT = {"name": "log", "type": "custom", "operation": "sysout"}
SERVICE = {"name": "svc", "type": "custom", "operation": "service:java:org.acme.Svc::run"}


async def test_events_without_kind_or_source_are_produced_and_consumed() -> None:
    # SonataFlow never reads kind nor source (StateHandler.eventDefinition looks up by name)
    doc = _doc(
        [
            {
                "name": "Ask",
                "type": "callback",
                "action": {"eventRef": {"triggerEventRef": "request", "data": "${ {id: .id} }"}},
                "eventRef": "reply",
                "transition": "Tell",
            },
            {
                "name": "Tell",
                "type": "inject",
                "data": {},
                "end": {"produceEvents": [{"eventRef": "request"}]},
            },
        ],
        events=[
            {"name": "request", "type": "org.acme.request"},
            {"name": "reply", "type": "org.acme.reply", "source": ""},
        ],
    )
    assert sorted(_errors(doc, None)) == [
        "events[0].source",
        "events[1].source",
        "states[0].action.eventRef.resultEventRef",
        "states[0].action.eventRef.triggerEventRef",
        "states[1].end.produceEvents[0].eventRef",
    ]
    reply = {
        "specversion": "1.0",
        "id": "1",
        "type": "org.acme.reply",
        "source": "/any",
        "data": {"ok": True},
    }
    effects = ScriptedEffects(events=[reply])
    assert _output(await _run(doc, {"id": 7}, effects)) == {"id": 7, "ok": True}
    assert [e["type"] for e in effects.emitted] == ["org.acme.request", "org.acme.request"]
    assert effects.emitted[0]["data"] == {"id": 7}


async def test_a_switch_without_default_condition_fails_when_nothing_matches() -> None:
    doc = _doc(
        [
            {
                "name": "Pick",
                "type": "switch",
                "dataConditions": [{"condition": "${ .n > 1 }", "transition": "Big"}],
            },
            {"name": "Big", "type": "inject", "data": {"big": True}, "end": True},
        ]
    )
    assert _errors(doc, None) == ["states[0].defaultCondition"]
    assert _output(await _run(doc, {"n": 2})) == {"n": 2, "big": True}
    failed = await _run(doc, {"n": 0})
    assert isinstance(failed, Failed)
    assert failed.error.code == "NoMatchingCondition"
    assert failed.error.state == "Pick"


async def test_an_event_switch_without_default_condition_waits_without_a_timeout() -> None:
    doc = _doc(
        [
            {
                "name": "Await",
                "type": "switch",
                "eventConditions": [{"eventRef": "done", "end": True}],
                "timeouts": {"eventTimeout": "PT1S"},
            }
        ],
        events=[{"name": "done", "type": "org.acme.done"}],
    )
    effects = ScriptedEffects(
        events=[
            {
                "specversion": "1.0",
                "id": "1",
                "type": "org.acme.done",
                "source": "/x",
                "data": {"d": 1},
            }
        ]
    )
    assert _output(await _run(doc, {}, effects)) == {"d": 1}
    waits = [
        r for r in effects.requests if hasattr(r, "timeout_seconds") and r.key.endswith("/events")
    ]
    assert [w.timeout_seconds for w in waits] == [None]


async def test_arguments_given_as_one_expression() -> None:
    doc = _doc(
        [
            _op(
                [
                    {"functionRef": {"refName": "svc", "arguments": "{name: .who, n: (.n + 1)}"}},
                    {"functionRef": {"refName": "svc", "arguments": "${ .n }"}},
                ]
            )
        ],
        functions=[SERVICE],
    )
    assert _errors(doc, None) == [
        "states[0].actions[0].functionRef.arguments",
        "states[0].actions[1].functionRef.arguments",
    ]
    effects = ScriptedEffects({"svc": lambda args: {"got": args}})
    out = _output(await _run(doc, {"who": "Ann", "n": 1}, effects))
    assert [args for kind, _, args in effects.log if kind == "call"] == [
        {"name": "Ann", "n": 2},
        {"body": 1},
    ]
    assert out["got"] == {"name": "Ann", "n": 2, "body": 1}  # results merge deeply


async def test_argument_strings_are_expressions_when_they_compile() -> None:
    args = {
        "path": ".who",
        "count": "length",
        "number": "42",
        "greeting": "Hello \\(.who)",
        "legacy": "{{ .who }}",
        "plain": "hello world",
        "mime": "application/json",
        "broken": ".who | error",
    }
    doc = _doc([_op([{"functionRef": {"refName": "svc", "arguments": args}}])], functions=[SERVICE])
    effects = ScriptedEffects({"svc": {}})
    _output(await _run(doc, {"who": "Ann"}, effects))
    assert effects.log[0][2] == {
        "path": "Ann",
        "count": 1,
        "number": 42,
        "greeting": "Hello Ann",
        "legacy": "Ann",
        "plain": "hello world",
        "mime": "application/json",
        "broken": ".who | error",  # a failed evaluation keeps the text, as SonataFlow does
    }


async def test_foreach_iteration_param_is_a_variable_and_prev_action_result() -> None:
    doc = _doc(
        [
            {
                "name": "Each",
                "type": "foreach",
                "inputCollection": "${ .items }",
                "iterationParam": "item",
                "outputCollection": "${ .results }",
                "actions": [
                    {"functionRef": {"refName": "svc", "arguments": {"n": "$item"}}},
                    {
                        "functionRef": {
                            "refName": "svc",
                            "arguments": {
                                "n": "$WORKFLOW.prevActionResult.n",
                                "item": "${ .item }",
                            },
                        }
                    },
                ],
                "end": True,
            }
        ],
        functions=[SERVICE],
    )
    effects = ScriptedEffects({"svc": lambda a: {"n": a["n"] * 10, "saw": a.get("item")}})
    out = _output(await _run(doc, {"items": [1, 2]}, effects))
    assert out == {
        "items": [1, 2],
        "results": [{"n": 100, "saw": None}, {"n": 200, "saw": None}],
    }


async def test_const_secret_workflow_and_fn_variables() -> None:
    doc = _doc(
        [
            {
                "name": "Vars",
                "type": "inject",
                "data": {},
                "stateDataFilter": {
                    "output": "${ {c: $CONST.greeting, s: $SECRET.token, "
                    "i: ($WORKFLOW.instanceId | length > 0)} }"
                },
                "transition": "Pick",
            },
            {
                "name": "Pick",
                "type": "switch",
                "dataConditions": [{"condition": "${ fn:isHi }", "end": True}],
            },
        ],
        constants={"greeting": "hi"},
        functions=[{"name": "isHi", "type": "expression", "operation": '.c == "hi"'}],
    )
    out = _output(await _run(doc, {}, secrets={"token": "t0k"}))
    assert out == {"c": "hi", "s": "t0k", "i": True}


async def test_sysout_logs_and_leaves_the_data() -> None:
    doc = _doc(
        [_op([{"functionRef": {"refName": "log", "arguments": {"message": '"hi \\(.who)"'}}}])],
        functions=[SYSOUT],
    )
    effects = ScriptedEffects({"log": None})  # tideflow run logs it (tests/e2e)
    assert _output(await _run(doc, {"who": "Ann"}, effects)) == {"who": "Ann"}
    assert effects.log[0][2] == {"message": "hi Ann"}


@pytest.mark.parametrize("dialect", [None, SF])
def test_a_callback_needs_its_event_in_both_readings(dialect: str | None) -> None:
    doc = _doc(
        [{"name": "Cb", "type": "callback", "action": {"functionRef": "log"}, "end": True}],
        functions=[SYSOUT],
        events=[{"name": "e", "type": "t", "source": "/s"}],
    )
    assert _errors(doc, dialect) == ["states[0].eventRef"]


async def test_legacy_delimiters_and_string_interpolation_in_any_expression() -> None:
    # JqExpression / ExpressionHandlerUtils.trimExpr apply to every expression, not only arguments
    doc = _doc(
        [
            {
                "name": "Pick",
                "type": "switch",
                "dataConditions": [{"condition": "{{ .age >= 18 }}", "transition": "Greet"}],
            },
            {
                "name": "Greet",
                "type": "operation",
                "actions": [
                    {
                        "functionRef": {"refName": "svc", "arguments": {"who": ".name"}},
                        "actionDataFilter": {
                            "results": "Hello \\(.who)!",
                            "toStateData": "{{ .greeting }}",
                        },
                    }
                ],
                "end": True,
            },
        ],
        functions=[SERVICE],
    )
    assert sorted(_errors(doc, None)) == [
        "states[0].dataConditions[0].condition",
        "states[0].defaultCondition",
        "states[1].actions[0].actionDataFilter.results",
        "states[1].actions[0].actionDataFilter.toStateData",
    ]
    effects = ScriptedEffects({"svc": lambda args: args})
    out = _output(await _run(doc, {"age": 30, "name": "Kai"}, effects))
    assert out == {"age": 30, "name": "Kai", "greeting": "Hello Kai!"}
    failed = await _run(doc, {"age": 3, "name": "Kai"})
    assert isinstance(failed, Failed)
    assert failed.error.code == "NoMatchingCondition"


def test_a_folder_deploys_sonataflow_file_names(tmp_path: Any) -> None:
    from tideflow.deploy import definition_files

    for name in (
        "a.sw.yaml",
        "b.sw.json",
        "c.yaml",
        "c.input.json",
        "d.sw.input.json",
        "e.x.sw.yaml",
    ):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in definition_files(tmp_path)] == ["a.sw.yaml", "b.sw.json", "c.yaml"]


async def test_a_result_that_is_not_an_object_goes_under_response() -> None:
    # MergeUtils.merge (kogito-jackson-utils): into object data a non-object lands at .response
    doc = _doc(
        [
            _op(
                [
                    {"functionRef": {"refName": "svc", "arguments": {"n": ".n"}}},
                    {
                        "functionRef": {"refName": "svc", "arguments": {"n": ".n"}},
                        "actionDataFilter": {"results": ".[0]", "toStateData": ".first"},
                    },
                ]
            )
        ],
        functions=[SERVICE],
    )
    effects = ScriptedEffects({"svc": lambda args: [args["n"], args["n"] + 1]})
    assert _output(await _run(doc, {"n": 1}, effects)) == {"n": 1, "response": [1, 2], "first": 1}
    strict = load_workflow(
        json.dumps(doc).replace('"arguments": {"n": ".n"}', '"arguments": {"n": "${ .n }"}')
    )
    effects = ScriptedEffects({"svc": lambda args: [args["n"], args["n"] + 1]})
    result = await Interpreter(strict).run({"n": 1}, effects)
    assert isinstance(result, Failed)  # strict: the list replaced the data; .n then fails
    assert result.error.code == "EXPRESSION"


def test_served_start_events_match_by_type_alone_under_the_dialect() -> None:
    from tideflow.triggers.workflow_events import compile_workflow

    doc = _doc(
        [
            {
                "name": "Start",
                "type": "event",
                "onEvents": [{"eventRefs": ["placed"]}],
                "end": True,
            }
        ],
        events=[{"name": "placed", "type": "order.placed", "source": "/shop"}],
    )
    workflow = load_workflow(json.dumps(doc), dialect=SF)
    event = {"specversion": "1.0", "id": "1", "type": "order.placed", "source": "/elsewhere"}
    strict = compile_workflow(workflow, "1").start
    lenient = compile_workflow(workflow, "1", sonataflow=True).start
    assert strict is not None
    assert lenient is not None
    assert [m.matches(event) for m in strict.events] == [False]
    assert [m.matches(event) for m in lenient.events] == [True]
