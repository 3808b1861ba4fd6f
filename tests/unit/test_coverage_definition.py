"""Spec coverage: top-level definition features no other test exercised (docs/spec-coverage.md).

Sections 1, 2 and 4 of the conformance checklist: ``key`` instead of ``id``,
constant ids, metadata and extra properties that must not change a run,
every external document kind resolved from files, ``dataInputSchema`` as a
URI, literal constants, JSONPath workflows, and non-boolean switch conditions.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.interp_support import call, fn, op_state, run, workflow
from tideflow.errors import format_path
from tideflow.runtime.fake import ScriptedEffects
from tideflow.runtime.result import Completed, Failed
from tideflow.workflow import load_file, load_workflow, validate_document

MINIMAL: dict[str, Any] = {
    "id": "wf",
    "specVersion": "0.8",
    "states": [{"name": "A", "type": "inject", "data": {"a": 1}, "end": True}],
}


def _errors(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (format_path(p.path), p.message) for p in validate_document(doc) if p.severity == "error"
    ]


async def test_key_may_replace_id_and_reaches_workflow_variable() -> None:
    doc = {**copy.deepcopy(MINIMAL), "key": "orders-key"}
    del doc["id"]
    doc["functions"] = [fn("f")]
    doc["states"] = [op_state("S", [call("f", arguments={"k": "${ $WORKFLOW.key }"})])]
    assert _errors(doc) == []
    effects = ScriptedEffects({"f": None})
    result = await run(load_workflow(json.dumps(doc)), {}, effects)
    assert isinstance(result, Completed)
    assert effects.log[0][2] == {"k": "orders-key"}


def test_id_must_be_a_constant() -> None:
    doc = {**copy.deepcopy(MINIMAL), "id": "${ .which }"}
    assert ("id", "must be a constant, not an expression") in _errors(doc)
    assert _errors({**doc, "id": "plain-id", "name": "${ .title }"}) == []


async def _outcome(doc: dict[str, Any]) -> tuple[Any, list[Any]]:
    effects = ScriptedEffects({"f": lambda a: {"got": a}})
    result = await run(load_workflow(json.dumps(doc)), {"x": 1}, effects)
    assert isinstance(result, Completed)
    return result.output, effects.log


def _decorated_pair() -> tuple[dict[str, Any], dict[str, Any]]:
    plain: dict[str, Any] = {
        "id": "m",
        "specVersion": "0.8",
        "functions": [fn("f")],
        "events": [{"name": "Out", "type": "out", "kind": "produced"}],
        "states": [
            {
                "name": "Pick",
                "type": "switch",
                "dataConditions": [{"condition": "${ .x == 1 }", "transition": "S"}],
                "defaultCondition": {"end": True},
            },
            op_state("S", [call("f", arguments={"v": "${ .x }"})]),
        ],
    }
    decorated = copy.deepcopy(plain)
    decorated["metadata"] = {"owner": "team-a"}
    decorated["annotations"] = ["orders", "demo"]
    decorated["x-vendor"] = {"anything": [1, 2]}
    decorated["extensions"] = [{"extensionId": "workflow-kpi-extension", "path": "kpi.yaml"}]
    decorated["functions"][0]["metadata"] = {"image": "v2"}
    decorated["events"][0]["metadata"] = {"topic": "out"}
    decorated["states"][0]["metadata"] = {"ui": "diamond"}
    decorated["states"][0]["dataConditions"][0]["metadata"] = {"why": "x is one"}
    decorated["states"][1]["metadata"] = {"ui": "box"}
    return plain, decorated


async def test_metadata_annotations_and_extra_properties_do_not_change_a_run() -> None:
    plain, decorated = _decorated_pair()
    assert _errors(decorated) == []
    assert await _outcome(plain) == await _outcome(decorated)


def test_extensions_are_not_a_workflow_property_but_an_allowed_extra() -> None:
    _, decorated = _decorated_pair()
    problems = [p for p in validate_document(decorated) if p.path[:1] == ("extensions",)]
    assert problems == []  # an extra top-level property: allowed, ignored
    wf = load_workflow(json.dumps(decorated))
    assert not hasattr(wf, "extensions")


EXTERNAL = {
    "functions.json": {"functions": [{"name": "f", "type": "expression", "operation": ".a"}]},
    "events.yaml": {"events": [{"name": "Out", "type": "out", "kind": "produced"}]},
    "retries.json": {"retries": [{"name": "R", "maxAttempts": 2, "delay": "PT1S"}]},
    "errors.json": {"errors": [{"name": "Busy", "code": "503"}]},
    "constants.json": {"limit": 5},
    "secrets.json": {"secrets": ["TOKEN"]},
    "timeouts.json": {"timeouts": {"actionExecTimeout": "PT7S"}},
    "auth.json": {"auth": [{"name": "basic", "properties": {"username": "u", "password": "p"}}]},
    "input-schema.json": {"type": "object", "required": ["a"]},
}


def test_every_external_document_kind_resolves_from_files(tmp_path: Path) -> None:
    for name, content in EXTERNAL.items():
        (tmp_path / name).write_text(json.dumps(content))
    wf_file = tmp_path / "wf.yaml"
    wf_file.write_text(
        "id: ext\nspecVersion: '0.8'\nfunctions: functions.json\nevents: events.yaml\n"
        "retries: retries.json\nerrors: errors.json\nconstants: constants.json\n"
        "secrets: secrets.json\ntimeouts: timeouts.json\nauth: auth.json\n"
        f"dataInputSchema: {(tmp_path / 'input-schema.json').as_uri()}\n"
        "states:\n  - {name: A, type: inject, data: {}, end: true}\n"
    )
    wf = load_file(wf_file)
    assert wf.function("f").type == "expression"
    assert wf.event("Out").kind == "produced"
    assert wf.retry("R").max_attempts == 2
    assert [e.name for e in wf.errors] == ["Busy"]
    assert wf.constants["limit"] == 5
    assert wf.secrets == ("TOKEN",)
    assert wf.timeouts.action_exec_timeout == "PT7S"
    assert [a.name for a in wf.auth] == ["basic"]
    assert wf.data_input_schema is not None
    schema = wf.data_input_schema.schema
    assert not isinstance(schema, str)
    assert schema["required"] == ("a",)


@pytest.mark.parametrize("form", ["string", "object"])
async def test_data_input_schema_uri_validates_the_input(tmp_path: Path, form: str) -> None:
    (tmp_path / "schema.yaml").write_text("type: object\nrequired: [name]\n")
    spec = (
        "schema.yaml" if form == "string" else "{schema: schema.yaml, failOnValidationErrors: true}"
    )
    wf_file = tmp_path / "wf.yaml"
    wf_file.write_text(
        f"id: s\nspecVersion: '0.8'\ndataInputSchema: {spec}\n"
        "states:\n  - {name: A, type: inject, data: {ok: true}, end: true}\n"
    )
    wf = load_file(wf_file)
    bad = await run(wf, {"other": 1})
    assert isinstance(bad, Failed)
    assert (bad.error.code, bad.error.state) == ("VALIDATION", None)
    good = await run(wf, {"name": "n"})
    assert isinstance(good, Completed)
    assert good.output == {"name": "n", "ok": True}


def test_data_input_schema_uri_that_cannot_be_read_is_a_problem(tmp_path: Path) -> None:
    from tideflow.errors import WorkflowValidationError

    wf_file = tmp_path / "wf.yaml"
    wf_file.write_text(
        "id: s\nspecVersion: '0.8'\ndataInputSchema: nowhere.json\n"
        "states:\n  - {name: A, type: inject, data: {}, end: true}\n"
    )
    with pytest.raises(WorkflowValidationError) as caught:
        load_file(wf_file)
    assert [(format_path(p.path), p.message) for p in caught.value.problems] == [
        ("dataInputSchema", "cannot read 'nowhere.json': no such file")
    ]


async def test_constants_are_literal_immutable_data() -> None:
    # Constants "must not contain expressions": Tideflow never evaluates them, so
    # neither state data nor $SECRETS can leak into them.
    wf = workflow(
        [
            op_state(
                "S",
                [call("f", arguments={"c": "${ $CONST }"})],
                transition="T",
            ),
            op_state("T", [call("f", arguments={"c": "${ $CONST }"})]),
        ],
        functions=[fn("f")],
        constants={"text": "${ $SECRETS.TOKEN }", "n": 1},
        secrets=["TOKEN"],
    )
    effects = ScriptedEffects({"f": lambda a: {"n": 99, "text": "changed"}})
    result = await run(wf, {}, effects, secrets={"TOKEN": "s3cret"})
    assert isinstance(result, Completed)
    seen = [entry[2]["c"] for entry in effects.log]
    assert seen == [{"text": "${ $SECRETS.TOKEN }", "n": 1}] * 2  # results never reach $CONST


async def test_jsonpath_workflow_runs_end_to_end() -> None:
    states = [
        op_state(
            "S",
            [
                call(
                    "f",
                    arguments={"who": "${ $.user.name }", "limit": "${ $CONST.limit }"},
                    actionDataFilter={
                        "results": "${ $.greeting }",
                        "toStateData": "${ $.out.greeting }",
                    },
                )
            ],
            transition="Pick",
        ),
        {
            "name": "Pick",
            "type": "switch",
            "dataConditions": [{"condition": "${ $.out[?(@ == 'hi ada')] }", "end": True}],
            "defaultCondition": {"transition": "Never"},
        },
        {"name": "Never", "type": "inject", "data": {"wrong": True}, "end": True},
    ]
    wf = workflow(states, functions=[fn("f")], expression_lang="jsonpath", constants={"limit": 3})
    effects = ScriptedEffects({"f": lambda a: {"greeting": f"hi {a['who']}", "n": a["limit"]}})
    result = await run(wf, {"user": {"name": "ada"}}, effects)
    assert isinstance(result, Completed)
    # the filter over an object must not turn the state data's object into a list
    assert result.output == {"user": {"name": "ada"}, "out": {"greeting": "hi ada"}}


@pytest.mark.parametrize(
    ("value", "target"),
    [(0, "Yes"), ("", "Yes"), ([], "Yes"), (None, "No"), (False, "No")],
)
async def test_non_boolean_switch_conditions_use_jq_truthiness(value: Any, target: str) -> None:
    states = [
        {
            "name": "Sw",
            "type": "switch",
            "dataConditions": [{"condition": "${ .v }", "transition": "Yes"}],
            "defaultCondition": {"transition": "No"},
        },
        {"name": "Yes", "type": "inject", "data": {"to": "Yes"}, "end": True},
        {"name": "No", "type": "inject", "data": {"to": "No"}, "end": True},
    ]
    result = await run(workflow(states), {"v": value})
    assert isinstance(result, Completed)
    assert result.output["to"] == target


async def test_each_state_output_is_the_next_state_input_and_the_last_is_the_output() -> None:
    states = [
        {
            "name": "A",
            "type": "inject",
            "data": {"a": 1},
            "stateDataFilter": {"output": "${ {fromA: .a, in: .x} }"},
            "transition": "B",
        },
        {"name": "B", "type": "inject", "data": {"b": 2}, "end": True},
    ]
    result = await run(workflow(states), {"x": 0})
    assert isinstance(result, Completed)
    assert result.output == {"fromA": 1, "in": 0, "b": 2}
