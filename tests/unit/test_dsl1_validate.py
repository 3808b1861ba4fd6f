"""DSL 1.0 validation: the corpus is valid, broken documents give every problem with its path."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.support.sw1 import SCHEMA, ctk_definitions, example_files, needs_sw1
from tideflow.errors import WorkflowValidationError, format_path
from tideflow.workflow import load_and_validate
from tideflow.workflow.dsl1 import is_dsl1, load_document, validate_document
from tideflow.workflow.loader import load_any
from tideflow.workflow.model import Workflow as Workflow08

BASE: dict[str, Any] = {
    "document": {"dsl": "1.0.3", "namespace": "test", "name": "wf", "version": "1.0.0"},
    "do": [{"first": {"set": {"a": 1}}}],
}


def doc(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(BASE)
    out.update(changes)
    return out


def errors(document: dict[str, Any], **kwargs: Any) -> list[tuple[str, str]]:
    return [
        (format_path(p.path), p.message)
        for p in validate_document(document, **kwargs)
        if p.severity == "error"
    ]


@needs_sw1
@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_every_example_validates(path):
    model, _ = load_any(path, processes=None)
    assert model.spec_version == "1.0"
    assert model.identifier == f"{model.namespace}.{model.name}"


@needs_sw1
@pytest.mark.parametrize(("where", "document"), ctk_definitions(), ids=lambda v: str(v)[:30])
def test_every_ctk_workflow_validates(where, document):
    assert errors(document) == [], where


def test_minimal_document_is_valid_and_built():
    model, warnings = load_document(doc())
    assert warnings == ()
    assert model.identifier == "test.wf"
    assert model.version == "1.0.0"
    assert model.do.tasks[0].reference == "/do/0/first"
    assert model.do.tasks[0].kind == "set"


def test_document_section_problems():
    bad = doc(document={"dsl": "1.0", "namespace": "Not_a_label", "name": "wf"})
    assert sorted(errors(bad)) == [
        ("document.dsl", "'1.0' is not a semantic version"),
        ("document.namespace", "'Not_a_label' is not a DNS label"),
        ("document.version", "missing: the document section needs 'version'"),
    ]


def test_then_must_name_a_task_of_the_same_list():
    bad = doc(
        do=[
            {"a": {"set": {"x": 1}, "then": "c"}},
            {"b": {"do": [{"inner": {"set": {"y": 1}, "then": "a"}}]}},
            {"c": {"switch": [{"one": {"when": ".x", "then": "bb"}}]}},
        ]
    )
    assert errors(bad) == [
        ("do[1].b.do[0].inner.then", "'a' is not a task of this list nor one of "
         "'continue', 'exit', 'end'"),
        ("do[2].c.switch[0].one.then", "'bb' is not a task of this list nor one of "
         "'continue', 'exit', 'end'; did you mean 'b'?"),
    ]  # fmt: skip


def test_task_shape_problems():
    bad = doc(
        do=[
            {"nothing": {"then": "end"}},
            {"both": {"set": {"a": 1}, "wait": "PT1S"}},
            {"dup": {"set": {"a": 1}}},
            {"dup": {"wait": "soon"}},
            {"typo": {"set": {"a": 1}, "thne": "end"}},
        ]
    )
    assert errors(bad) == [
        ("do[0].nothing", "a task needs one of 'call', 'do', 'emit', 'for', 'fork', 'listen', "
         "'raise', 'run', 'set', 'switch', 'try', 'wait'"),
        ("do[1].both.wait", "a task is one of its types: 'set' or 'wait', not both"),
        ("do[3].dup", "task 'dup' is named twice in this list"),
        ("do[3].dup.wait", "'soon' is not an ISO 8601 duration (examples: PT30S, P2D)"),
        ("do[4].typo.thne", "not a property of a set task; did you mean 'then'?"),
    ]  # fmt: skip


def test_use_references_must_resolve():
    bad = doc(
        use={"errors": {"notFound": {"type": "https://e/x", "status": 404}}},
        do=[
            {"r": {"raise": {"error": "notFoud"}}},
            {"t": {"try": [{"c": {"call": "myFunc"}}],
                   "catch": {"retry": "default"}, "timeout": "short"}},
        ],
    )  # fmt: skip
    assert errors(bad) == [
        ("do[0].r.raise.error", "error 'notFoud' is not defined in use.errors; "
         "did you mean 'notFound'?"),
        ("do[1].t.try[0].c.call", "function 'myFunc' is not defined in use.functions"),
        ("do[1].t.catch.retry", "retry policy 'default' is not defined in use.retries"),
        ("do[1].t.timeout", "timeout 'short' is not defined in use.timeouts"),
    ]  # fmt: skip


def test_expressions_are_compiled():
    bad = doc(do=[{"a": {"set": {"x": "${ .a + }"}, "if": ".b ==", "output": {"as": ".ok"}}}])
    found = errors(bad)
    assert sorted(path for path, _ in found) == ["do[0].a.if", "do[0].a.set.x"]
    assert all("invalid expression" in message or "syntax" in message for _, message in found)


def test_processes_and_scripts_follow_the_host_policy():
    shell = doc(do=[{"sh": {"run": {"shell": {"command": "ls"}}}},
                    {"rb": {"run": {"script": {"language": "ruby", "code": "1"}}}},
                    {"js": {"run": {"script": {"language": "js", "code": "1"}}}}])  # fmt: skip
    refused = errors(shell, processes=False)
    assert [p for p, _ in refused] == ["do[0].sh.run.shell", "do[1].rb.run.script.language"]
    assert "disabled unless the host enables it" in refused[0][1]
    assert "Tideflow runs 'python', 'js', 'javascript' scripts only" in refused[1][1]
    assert errors(shell, processes=None) == []
    warned = [p for p in validate_document(shell, processes=None) if p.severity == "warning"]
    assert len(warned) == 2


def test_yaml_on_key_of_schedules_is_read_as_on():
    text = """
document: {dsl: '1.0.3', namespace: test, name: on-event, version: '1.0.0'}
schedule:
  on:
    one:
      with:
        type: com.example.started
do:
  - first:
      set:
        started: true
"""
    model, _ = load_any(text)
    assert model.schedule is not None
    assert model.schedule["on"]["one"]["with"]["type"] == "com.example.started"


def test_the_08_entry_point_refuses_a_valid_10_document_with_a_path():
    text = yaml.safe_dump(doc())
    with pytest.raises(WorkflowValidationError) as caught:
        load_and_validate(text)
    assert [format_path(p.path) for p in caught.value.problems] == ["document.dsl"]


def test_the_08_entry_point_reports_a_broken_10_document_problems():
    text = yaml.safe_dump(doc(do=[{"a": {"wait": "later"}}]))
    with pytest.raises(WorkflowValidationError) as caught:
        load_and_validate(text)
    assert [format_path(p.path) for p in caught.value.problems] == ["do[0].a.wait"]


def test_load_any_keeps_08_documents_on_the_08_front_end():
    text = """
id: hello
version: '1.0'
specVersion: '0.8'
start: Hello
states:
  - name: Hello
    type: inject
    data: {greeting: hi}
    end: true
"""
    model, _ = load_any(text)
    assert isinstance(model, Workflow08)
    assert not is_dsl1(yaml.safe_load(text))


@needs_sw1
@pytest.mark.parametrize(
    "mutation",
    [
        {"do": [{"a": {"set": {}}}]},
        {"document": {"dsl": "1.0.3", "namespace": "ns", "name": "n"}},
        {"do": [{"a": {"wait": "tomorrow"}}]},
        {"do": [{"a": {"raise": {"error": {"type": "https://x"}}}}]},
        {"do": [{"a": {"call": "http", "with": {"endpoint": "https://x"}}}]},
        {"timeout": {"before": "PT1S"}},
    ],
    ids=["empty set", "no version", "bad duration", "error without status", "no method",
         "timeout.after"],
)  # fmt: skip
def test_documents_the_schema_rejects_are_rejected(mutation):
    jsonschema = pytest.importorskip("jsonschema")
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    broken = doc(**mutation)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(broken)), "the schema accepts it: not a useful case"
    assert errors(broken)
