"""A table of invalid documents, each with one mistake, and the problem Tideflow reports."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tideflow.errors import WorkflowLoadError, WorkflowValidationError, format_path
from tideflow.workflow import load_workflow, validate_document

BASE: dict[str, Any] = {
    "id": "table",
    "version": "1.0",
    "specVersion": "0.8",
    "start": "Greet",
    "functions": [
        {"name": "greet", "operation": "http://example.com/openapi.json#greet"},
        {"name": "add", "type": "expression", "operation": ".a + .b"},
    ],
    "events": [
        {"name": "Ping", "type": "ping", "source": "/pinger"},
        {"name": "Done", "type": "done", "kind": "produced"},
    ],
    "retries": [{"name": "again", "maxAttempts": 3, "delay": "PT1S"}],
    "errors": [{"name": "Timeout", "code": "408"}],
    "states": [
        {
            "name": "Greet",
            "type": "operation",
            "actions": [
                {
                    "functionRef": {"refName": "greet", "arguments": {"n": "${ .name }"}},
                    "retryRef": "again",
                    "retryableErrors": ["Timeout"],
                }
            ],
            "onErrors": [{"errorRef": "Timeout", "transition": "Wait"}],
            "transition": "Wait",
        },
        {
            "name": "Wait",
            "type": "event",
            "onEvents": [{"eventRefs": ["Ping"]}],
            "transition": "Choose",
        },
        {
            "name": "Choose",
            "type": "switch",
            "dataConditions": [{"condition": "${ .ok }", "transition": "Approved"}],
            "defaultCondition": {"transition": "Pause"},
        },
        {"name": "Pause", "type": "sleep", "duration": "PT5S", "transition": "Approved"},
        {
            "name": "Approved",
            "type": "inject",
            "data": {"x": 1},
            "end": {"produceEvents": [{"eventRef": "Done"}]},
        },
    ],
}

Edit = Callable[[dict[str, Any]], None]


def put(path: str, value: Any) -> Edit:
    """Set the value at a dotted path (integers index lists)."""

    def edit(doc: dict[str, Any]) -> None:
        *head, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target: Any = doc
        for part in head:
            target = target[part]
        if isinstance(target, list) and last == len(target):
            target.append(value)
        else:
            target[last] = value

    return edit


def drop(path: str) -> Edit:
    """Delete the value at a dotted path."""

    def edit(doc: dict[str, Any]) -> None:
        *head, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target: Any = doc
        for part in head:
            target = target[part]
        del target[last]

    return edit


def loop(path: str, key: str) -> Edit:
    """Make the object at a dotted path contain itself under ``key`` (as a YAML alias can)."""

    def edit(doc: dict[str, Any]) -> None:
        target: Any = doc
        for part in path.split("."):
            target = target[int(part) if part.isdigit() else part]
        target[key] = target

    return edit


def both(*edits: Edit) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        for one in edits:
            one(doc)

    return edit


STATE_PARALLEL = {
    "name": "Fan",
    "type": "parallel",
    "branches": [{"name": "b", "actions": [{"functionRef": "greet"}]}],
    "completionType": "atLeast",
    "end": True,
}
STATE_CALLBACK = {
    "name": "Call",
    "type": "callback",
    "action": {"functionRef": "greet"},
    "end": True,
}
STATE_FOREACH = {
    "name": "Each",
    "type": "foreach",
    "inputCollection": "${ .items }",
    "iterationParam": "${ .item }",
    "actions": [{"functionRef": "greet"}],
    "end": True,
}
UNDO = {"name": "Undo", "type": "operation", "actions": [{"functionRef": "greet"}], "end": True}

CASES: list[tuple[str, Edit, str, str]] = [
    ("no id", drop("id"), "id", "missing: a workflow needs 'id' (or 'key')"),
    ("id and key", put("key", "k"), "key", "a workflow cannot have both 'id', 'key'; keep one"),
    (
        "spec 0.7",
        put("specVersion", "0.7"),
        "specVersion",
        "Tideflow reads Serverless Workflow 0.8, not '0.7'",
    ),
    (
        "expression lang",
        put("expressionLang", "xpath"),
        "expressionLang",
        "must be one of 'jq', 'jsonpath', not 'xpath'",
    ),
    ("no states", drop("states"), "states", "missing: a workflow needs 'states'"),
    ("empty states", put("states", []), "states", "must have at least 1 item(s)"),
    (
        "version number",
        put("version", 1.5),
        "version",
        "must be a string, not a number: quote it ('1.5')",
    ),
    (
        "keepActive text",
        put("keepActive", "yes"),
        "keepActive",
        "must be a boolean (true or false), not a string",
    ),
    ("metadata number", put("metadata", {"n": 3}), "metadata.n", "must be a string, not a number"),
    (
        "state without name",
        drop("states.1.name"),
        "states[1].name",
        "missing: an event state needs 'name'",
    ),
    (
        "state type typo",
        put("states.0.type", "operaton"),
        "states[0].type",
        "did you mean 'operation'?",
    ),
    (
        "state without type",
        drop("states.0.type"),
        "states[0].type",
        "missing: a state needs 'type'",
    ),
    (
        "property typo",
        put("states.3.tranistion", "Approved"),
        "states[3].tranistion",
        "not a property of a sleep state; did you mean 'transition'?",
    ),
    (
        "transition typo",
        put("states.0.transition", "Wiat"),
        "states[0].transition",
        "no state named 'Wiat'; did you mean 'Wait'?",
    ),
    (
        "transition and end",
        put("states.3.end", True),
        "states[3].end",
        "a state cannot both transition and end",
    ),
    (
        "neither transition nor end",
        drop("states.1.transition"),
        "states[1]",
        "state 'Wait' neither transitions nor ends",
    ),
    ("start unknown", put("start", "Begin"), "start", "no state named 'Begin'"),
    (
        "function typo",
        put("states.0.actions.0.functionRef.refName", "gret"),
        "states[0].actions[0].functionRef.refName",
        "no function named 'gret'; did you mean 'greet'?",
    ),
    (
        "event unknown",
        put("states.1.onEvents.0.eventRefs", ["Pong"]),
        "states[1].onEvents[0].eventRefs[0]",
        "no event named 'Pong'; did you mean 'Ping'?",
    ),
    (
        "retry unknown",
        put("states.0.actions.0.retryRef", "twice"),
        "states[0].actions[0].retryRef",
        "no retry named 'twice'",
    ),
    (
        "errorRef unknown",
        put("states.0.onErrors.0.errorRef", "Timout"),
        "states[0].onErrors[0].errorRef",
        "no error named 'Timout'; did you mean 'Timeout'?",
    ),
    (
        "retryable error unknown",
        put("states.0.actions.0.retryableErrors", ["Boom"]),
        "states[0].actions[0].retryableErrors[0]",
        "no error named 'Boom'",
    ),
    (
        "produce a consumed event",
        put("states.4.end.produceEvents.0.eventRef", "Ping"),
        "states[4].end.produceEvents[0].eventRef",
        "event 'Ping' is consumed, but this reference needs a produced event",
    ),
    (
        "wait for a produced event",
        put("states.1.onEvents.0.eventRefs", ["Done"]),
        "states[1].onEvents[0].eventRefs[0]",
        "event 'Done' is produced, but this reference needs a consumed event",
    ),
    (
        "two invocations",
        put("states.0.actions.0.subFlowRef", "other"),
        "states[0].actions[0].subFlowRef",
        "an action cannot have both 'functionRef', 'subFlowRef'; keep one",
    ),
    (
        "no invocation",
        put("states.0.actions", [{"name": "nothing"}]),
        "states[0].actions[0]",
        "an action needs one of 'functionRef', 'eventRef', 'subFlowRef'",
    ),
    (
        "actionMode typo",
        put("states.0.actionMode", "paralel"),
        "states[0].actionMode",
        "must be one of 'sequential', 'parallel', not 'paralel'; did you mean 'parallel'?",
    ),
    (
        "jq syntax error",
        put("states.2.dataConditions.0.condition", "${ .ok ==  }"),
        "states[2].dataConditions[0].condition",
        "invalid jq expression '${ .ok ==  }': syntax error",
    ),
    (
        "jq error in arguments",
        put("states.0.actions.0.functionRef.arguments.n", "${ .name | }"),
        "states[0].actions[0].functionRef.arguments.n",
        "invalid jq expression '${ .name | }': syntax error",
    ),
    (
        "bad expression function",
        put("functions.1.operation", ".a +"),
        "functions[1].operation",
        "invalid jq expression '.a +'",
    ),
    (
        "unknown fn: reference",
        put("states.2.dataConditions.0.condition", "${ fn:nope }"),
        "states[2].dataConditions[0].condition",
        "fn:nope names no expression function",
    ),
    (
        "jsonpath syntax error",
        both(put("expressionLang", "jsonpath"), put("states.2.dataConditions.0.condition", "$.a[")),
        "states[2].dataConditions[0].condition",
        "invalid JSONPath expression '$.a['",
    ),
    (
        "sleep duration",
        put("states.3.duration", "PT2W"),
        "states[3].duration",
        "'PT2W' is not an ISO 8601 duration",
    ),
    (
        "timeout not allowed",
        put("states.0.timeouts", {"eventTimeout": "PT1S"}),
        "states[0].timeouts.eventTimeout",
        "an operation state allows only stateExecTimeout, actionExecTimeout",
    ),
    (
        "timeout at top of state",
        put("states.2.eventTimeout", "PT1S"),
        "states[2].eventTimeout",
        "timeouts belong under 'timeouts' (timeouts.eventTimeout)",
    ),
    (
        "state timeout without total",
        put("states.0.timeouts", {"stateExecTimeout": {"single": "PT1S"}}),
        "states[0].timeouts.stateExecTimeout.total",
        "missing: a state execution timeout needs 'total'",
    ),
    (
        "switch with both condition kinds",
        put("states.2.eventConditions", [{"eventRef": "Ping", "transition": "Pause"}]),
        "states[2].eventConditions",
        "a switch state cannot have both 'dataConditions', 'eventConditions'",
    ),
    (
        "switch without default",
        drop("states.2.defaultCondition"),
        "states[2].defaultCondition",
        "missing: a switch state needs 'defaultCondition'",
    ),
    (
        "switch with end",
        put("states.2.end", True),
        "states[2].end",
        "a switch state moves on through its conditions",
    ),
    (
        "data event timeout",
        put("states.2.timeouts", {"eventTimeout": "PT1S"}),
        "states[2].timeouts.eventTimeout",
        "only an event-based switch state",
    ),
    (
        "asyncapi function with a proto-like operation",
        both(put("functions.0.type", "asyncapi"), put("functions.0.operation", "a.yaml")),
        "functions[0].operation",
        "'a.yaml' is not '<AsyncAPI document>#<operationId>'",
    ),
    (
        "rpc function without Service#Method",
        put("functions.0.type", "rpc"),
        "functions[0].operation",
        "'http://example.com/openapi.json#greet' is not '<proto file>#<Service>#<Method>'",
    ),
    (
        "function type typo",
        put("functions.0.type", "soap"),
        "functions[0].type",
        "must be one of 'rest', 'asyncapi'",
    ),
    (
        "function without operation",
        drop("functions.0.operation"),
        "functions[0].operation",
        "missing: a function definition needs 'operation'",
    ),
    (
        "consumed event without source",
        drop("events.0.source"),
        "events[0].source",
        "missing: a consumed event needs 'source'",
    ),
    (
        "retry without maxAttempts",
        drop("retries.0.maxAttempts"),
        "retries[0].maxAttempts",
        "missing: a retry definition needs 'maxAttempts'",
    ),
    (
        "retry maxAttempts 0",
        put("retries.0.maxAttempts", 0),
        "retries[0].maxAttempts",
        "must be at least 1, not 0",
    ),
    (
        "jitter too big",
        put("retries.0.jitter", 1.5),
        "retries[0].jitter",
        "must be at most 1, not 1.5",
    ),
    (
        "duplicate state",
        put("states.1.name", "Greet"),
        "states[1].name",
        "duplicate state name 'Greet' (see states[0])",
    ),
    (
        "duplicate function",
        put("functions.1.name", "greet"),
        "functions[1].name",
        "duplicate function name 'greet'",
    ),
    (
        "handler without target",
        drop("states.0.onErrors.0.transition"),
        "states[0].onErrors[0]",
        "an error handler needs one of 'transition', 'end'",
    ),
    (
        "compensation not marked",
        both(put("states.0.compensatedBy", "Undo"), put("states.5", dict(UNDO))),
        "states[0].compensatedBy",
        "state 'Undo' compensates another state, so it must set usedForCompensation: true",
    ),
    (
        "transition into compensation",
        both(
            put("states.5", {**UNDO, "usedForCompensation": True}),
            put("states.3.transition", "Undo"),
        ),
        "states[3].transition",
        "state 'Undo' is a compensation state",
    ),
    (
        "runBefore with incoming",
        put("timeouts", {"workflowExecTimeout": {"duration": "PT1H", "runBefore": "Approved"}}),
        "timeouts.workflowExecTimeout.runBefore",
        "state 'Approved' runs before termination, so no state may transition to it",
    ),
    (
        "atLeast without numCompleted",
        put("states.5", STATE_PARALLEL),
        "states[5].numCompleted",
        "missing: completionType 'atLeast' needs numCompleted",
    ),
    (
        "iterationParam expression",
        put("states.5", STATE_FOREACH),
        "states[5].iterationParam",
        "must be a variable name such as 'item', not '${ .item }'",
    ),
    (
        "callback without event",
        put("states.5", STATE_CALLBACK),
        "states[5].eventRef",
        "missing: a callback state needs 'eventRef'",
    ),
    (
        "event state compensation",
        put("states.1.usedForCompensation", True),
        "states[1].usedForCompensation",
        "an event state cannot be used for compensation",
    ),
    (
        "inject data array",
        put("states.4.data", [1]),
        "states[4].data",
        "must be an object, not an array",
    ),
    (
        "continueAs no terminate",
        put("states.4.end", {"terminate": False, "continueAs": "next"}),
        "states[4].end.terminate",
        "continueAs implies terminate",
    ),
    (
        "eventRef without result",
        put("states.0.actions", [{"eventRef": {"triggerEventRef": "Done"}}]),
        "states[0].actions[0].eventRef.resultEventRef",
        "missing: an event reference needs 'resultEventRef'",
    ),
    (
        "bad schedule",
        put("start", {"stateName": "Greet", "schedule": "every 2 hours"}),
        "start.schedule",
        "'every 2 hours' is not an ISO 8601 repeating interval",
    ),
    (
        "bad cron",
        put("start", {"stateName": "Greet", "schedule": {"cron": "* *"}}),
        "start.schedule.cron",
        "'* *' is not a cron expression",
    ),
    (
        "bad time zone",
        put(
            "start",
            {"stateName": "Greet", "schedule": {"interval": "R/PT1H", "timezone": "Mars/Olympus"}},
        ),
        "start.schedule.timezone",
        "'Mars/Olympus' is not an IANA time zone",
    ),
    (
        "basic auth without password",
        put("auth", [{"name": "a", "properties": {"username": "u"}}]),
        "auth[0].properties.password",
        "missing: basic auth needs 'password'",
    ),
    (
        "annotations not array",
        put("annotations", "x"),
        "annotations",
        "must be an array, not a string",
    ),
    (
        "data that contains itself",
        loop("states.4.data", "again"),
        "states[4].data.again",
        "refers back to states[4].data, which contains it",
    ),
    (
        "functionRef number",
        put("states.0.actions.0.functionRef", 7),
        "states[0].actions[0].functionRef",
        "must be a string or an object, not a number",
    ),
]


def test_the_table_is_large_and_each_mistake_differs() -> None:
    assert len(CASES) >= 40
    assert len({name for name, *_ in CASES}) == len(CASES)


def test_the_base_document_is_valid() -> None:
    assert validate_document(BASE) == []


@pytest.mark.parametrize(("name", "edit", "path", "message"), CASES, ids=[c[0] for c in CASES])
def test_invalid_document(name: str, edit: Edit, path: str, message: str) -> None:
    doc = copy.deepcopy(BASE)
    edit(doc)
    errors = [p for p in validate_document(doc) if p.severity == "error"]
    found = [(format_path(p.path), p.message) for p in errors]
    assert any(p == path and message in m for p, m in found), found


def test_every_problem_is_reported_at_once() -> None:
    doc = copy.deepcopy(BASE)
    put("states.0.transition", "Nowhere")(doc)
    put("states.3.duration", "soon")(doc)
    put("functions.0.type", "soap")(doc)
    with pytest.raises(WorkflowValidationError) as caught:
        load_workflow(_as_json(doc))
    paths = {format_path(p.path) for p in caught.value.problems}
    assert {"states[0].transition", "states[3].duration", "functions[0].type"} <= paths


def test_yaml_syntax_error_names_the_line() -> None:
    text = "id: broken\nspecVersion: '0.8'\nstates:\n  - name: A\n    type: inject\n   data: {}\n"
    with pytest.raises(WorkflowLoadError) as caught:
        load_workflow(text)
    assert caught.value.line == 6
    assert "YAML syntax error at line 6" in str(caught.value)


def test_a_document_that_is_not_an_object_is_a_load_error() -> None:
    with pytest.raises(WorkflowLoadError, match="must be an object, this document is a list"):
        load_workflow("- a\n- b\n")


def _as_json(doc: dict[str, Any]) -> str:
    import json

    return json.dumps(doc)


def test_a_misspelled_top_level_property_is_a_warning() -> None:
    doc = copy.deepcopy(BASE)
    doc["retires"] = doc.pop("retries")
    problems = [(format_path(p.path), p.message, p.severity) for p in validate_document(doc)]
    assert (
        "retires",
        "not a property of a workflow (ignored); did you mean 'retries'?",
        "warning",
    ) in problems
    doc["x-owner"] = "team"  # other extra top-level properties are allowed silently
    assert not [p for p in validate_document(doc) if p.path == ("x-owner",)]


def test_a_document_that_is_not_an_object() -> None:
    problems = validate_document([1])  # type: ignore[arg-type]
    assert [(p.path, p.message) for p in problems] == [
        ((), "must be a workflow (an object), not an array")
    ]


def test_problems_come_in_document_order() -> None:
    doc = copy.deepcopy(BASE)
    put("states.4.data", [1])(doc)  # structure, late in the document
    put("states.0.transition", "Nowhere")(doc)  # reference, early
    put("functions.0.type", "rpc")(doc)  # before the states: its operation is no proto method
    paths = [format_path(p.path) for p in validate_document(doc)]
    assert paths == ["functions[0].operation", "states[0].transition", "states[4].data"]


def test_an_alias_repeating_a_value_is_no_cycle() -> None:
    text = HEAD + "  - {name: A, type: inject, data: {a: &v {x: 1}, b: *v}, end: true}\n"
    assert load_workflow(text).states[0].name == "A"


def test_a_loop_without_an_exit_is_a_warning() -> None:
    doc = copy.deepcopy(BASE)
    put("states.2.defaultCondition", {"transition": "Greet"})(doc)  # Choose -> Greet or Approved
    drop("states.4.end")(doc)
    put("states.4.transition", "Greet")(doc)  # Approved -> Greet: nothing ends any more
    problems = validate_document(doc)
    assert not [p for p in problems if p.severity == "error"]
    warned = {format_path(p.path) for p in problems if "reaches an end" in p.message}
    assert warned == {"states[0]", "states[1]", "states[2]", "states[4]"}


HEAD = 'id: text\nspecVersion: "0.8"\nstates:\n'
TEXT_CASES: list[tuple[str, str, str]] = [
    (
        "bad indentation",
        HEAD + "  - name: A\n    type: inject\n   data: {}\n    end: true\n",
        "<text>: YAML syntax error at line 6: ",
    ),
    (
        "unclosed quote",
        HEAD + '  - name: "A\n    type: inject\n',
        "<text>: YAML syntax error at line 6: ",
    ),
    (
        "tab indentation",
        HEAD + "  - name: A\n\ttype: inject\n",
        "<text>: YAML syntax error at line 5: ",
    ),
    (
        "unclosed JSON",
        '{"id": "x", "states": [\n',
        "<text>: YAML syntax error at line 2: ",
    ),
    (
        "unquoted version",
        HEAD.replace("id: text\n", "id: text\nversion: 1.0\n")
        + "  - {name: A, type: inject, data: {}, end: true}\n",
        "version: must be a string, not a number: quote it ('1.0')",
    ),
    (
        "unquoted jq with a colon",
        HEAD + "  - name: A\n    type: switch\n    dataConditions:\n"
        "      - condition: ${ .a == {b: 1} }\n        end: true\n"
        "    defaultCondition: {end: true}\n",
        "<text>: YAML syntax error at line 7: ",
    ),
    (
        "YAML alias cycle",
        HEAD + "  - {name: A, type: inject, data: &d {x: *d}, end: true}\n",
        "states[0].data.x: refers back to states[0].data, which contains it: "
        "a definition cannot contain itself (a YAML alias cycle)",
    ),
    (
        "YAML alias cycle, sonataflow dialect",
        "events: [{name: E, type: e, source: /s}]\nfunctions: [{name: f, operation: x#y}]\n"
        + HEAD
        + "  - &s {name: A, type: operation, actions: [{functionRef: f, x: *s}], end: true}\n",
        "states[0].actions[0].x: refers back to states[0], which contains it: "
        "a definition cannot contain itself (a YAML alias cycle)",
    ),
]


@pytest.mark.parametrize(("name", "text", "expected"), TEXT_CASES, ids=[c[0] for c in TEXT_CASES])
def test_invalid_text(name: str, text: str, expected: str) -> None:
    dialect = "sonataflow" if "sonataflow" in name else None
    with pytest.raises((WorkflowLoadError, WorkflowValidationError)) as caught:
        load_workflow(text, dialect=dialect)
    error = caught.value
    if isinstance(error, WorkflowLoadError):
        assert str(error).startswith(expected), name
        assert error.line == int(expected.split("line ")[1].split(":")[0])
    else:
        assert isinstance(error, WorkflowValidationError)
        assert expected in [str(p) for p in error.problems], name
