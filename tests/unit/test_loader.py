"""Loading: YAML and JSON, external documents (paths, file:// URIs, fetched texts), load errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tideflow.errors import WorkflowLoadError, WorkflowValidationError, format_path
from tideflow.workflow import load_and_validate, load_file, load_workflow, parse_document
from tideflow.workflow.loader import Unreadable, build_definition, external_references

WORKFLOW_YAML = """\
id: greet
specVersion: "0.8"
functions: {functions}
states:
  - name: Greet
    type: operation
    actions:
      - functionRef: greetFunction
    end: true
"""
FUNCTIONS = {"functions": [{"name": "greetFunction", "operation": "file://api.json#greet"}]}


def test_yaml_and_json_parse_to_the_same_document() -> None:
    doc = {"id": "x", "states": [{"name": "a", "type": "inject", "data": {}, "end": True}]}
    as_yaml = "id: x\nstates:\n  - {name: a, type: inject, data: {}, end: true}\n"
    assert parse_document(json.dumps(doc), "x.json") == parse_document(as_yaml, "x.yaml") == doc


def test_relative_reference_resolves_against_the_definition_file(tmp_path: Path) -> None:
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "functions.json").write_text(json.dumps(FUNCTIONS))
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW_YAML.format(functions="defs/functions.json"))
    workflow = load_file(path)
    assert workflow.function("greetFunction").operation == "file://api.json#greet"


def test_file_uri_and_bare_list_documents(tmp_path: Path) -> None:
    defs = tmp_path / "fns.yaml"
    defs.write_text("- name: greetFunction\n  operation: http://x/api.json#greet\n")
    text = WORKFLOW_YAML.format(functions=defs.as_uri())
    workflow = load_workflow(text)
    assert workflow.function("greetFunction").type == "rest"


def test_constants_and_secrets_from_files(tmp_path: Path) -> None:
    (tmp_path / "constants.json").write_text(json.dumps({"limit": 5, "nested": {"a": [1]}}))
    (tmp_path / "secrets.yaml").write_text("secrets: [API_KEY]\n")
    text = (
        WORKFLOW_YAML.format(functions="fns.json")
        + "constants: constants.json\nsecrets: secrets.yaml\n"
    )
    (tmp_path / "fns.json").write_text(json.dumps(FUNCTIONS))
    workflow = load_workflow(text, base_dir=tmp_path)
    assert workflow.constants["limit"] == 5
    assert workflow.constants["nested"]["a"] == (1,)
    assert workflow.secrets == ("API_KEY",)


def test_missing_external_file_is_a_problem_at_its_path(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW_YAML.format(functions="x.json"))
    with pytest.raises(WorkflowValidationError) as caught:
        load_file(path)
    problems = [(format_path(p.path), p.message) for p in caught.value.problems]
    # the functions are unknown, so their references are not reported as dangling
    assert problems == [("functions", "cannot read 'x.json': no such file")]


def test_unparseable_external_document_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("functions: [\n")
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW_YAML.format(functions="bad.yaml"))
    with pytest.raises(WorkflowValidationError) as caught:
        load_file(path)
    [problem] = caught.value.problems
    assert problem.path == ("functions",)
    assert problem.message.startswith("cannot parse 'bad.yaml': ")
    assert "YAML syntax error at line 2" in problem.message


def test_the_loader_never_fetches_an_http_reference() -> None:
    url = "http://127.0.0.1:9/functions.json"  # nothing is sent: the loader does no network I/O
    with pytest.raises(WorkflowValidationError) as caught:
        load_workflow(WORKFLOW_YAML.format(functions=url))
    assert [(p.path, p.message) for p in caught.value.problems] == [
        (("functions",), f"cannot read '{url}': not fetched before loading")
    ]


def test_fetched_references_are_taken_as_given() -> None:
    url = "https://example.com/functions.json"
    text = WORKFLOW_YAML.format(functions=url)
    workflow, _ = load_and_validate(text, references={url: json.dumps(FUNCTIONS)})
    assert workflow.function("greetFunction").operation == "file://api.json#greet"
    with pytest.raises(WorkflowValidationError) as caught:
        load_and_validate(text, references={url: Unreadable(f"cannot fetch '{url}': HTTP 404")})
    assert [p.message for p in caught.value.problems] == [f"cannot fetch '{url}': HTTP 404"]


def test_build_definition_keeps_the_resolved_document_before_the_dialect(tmp_path: Path) -> None:
    doc = parse_document(WORKFLOW_YAML.format(functions="fns.json"), "wf.yaml")
    refs = external_references(doc)
    assert [(r.path, r.uri, r.remote) for r in refs] == [(("functions",), "fns.json", False)]
    definition = build_definition(doc, {"fns.json": json.dumps(FUNCTIONS)})
    assert definition.document["functions"] == FUNCTIONS["functions"]
    assert definition.document["states"] == doc["states"]
    again = build_definition(definition.document)  # a stored document needs nothing read
    assert again.workflow == definition.workflow


def test_missing_spec_version_is_read_as_0_8_with_a_warning() -> None:
    text = WORKFLOW_YAML.replace('specVersion: "0.8"\n', "").format(
        functions=json.dumps(FUNCTIONS["functions"])
    )
    workflow, warnings = load_and_validate(text)
    assert workflow.spec_version == "0.8"
    assert [(format_path(w.path), w.severity) for w in warnings] == [("specVersion", "warning")]


def test_a_missing_definition_file_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(WorkflowLoadError, match="no such file"):
        load_file(tmp_path / "absent.yaml")


def test_an_empty_document_is_a_load_error() -> None:
    with pytest.raises(WorkflowLoadError, match="this document is empty"):
        load_workflow("# nothing here\n")


def test_external_document_that_holds_no_definitions(tmp_path: Path) -> None:
    (tmp_path / "notes.yaml").write_text("just some text\n")
    (tmp_path / "empty.json").write_text("")
    text = WORKFLOW_YAML.format(functions="notes.yaml") + "errors: empty.json\n"
    with pytest.raises(WorkflowValidationError) as caught:
        load_workflow(text, base_dir=tmp_path)
    assert [(format_path(p.path), p.message) for p in caught.value.problems] == [
        ("functions", "'notes.yaml' holds a string, not functions"),
        ("errors", "'empty.json' is empty"),
    ]


def test_local_files_can_be_refused(tmp_path: Path) -> None:
    (tmp_path / "fns.json").write_text(json.dumps(FUNCTIONS))
    text = WORKFLOW_YAML.format(functions=str(tmp_path / "fns.json"))
    with pytest.raises(WorkflowValidationError) as caught:
        load_workflow(text, local_files=False)
    [problem] = caught.value.problems
    assert problem.message.endswith("local files are not read here; inline it")
    assert load_workflow(text, local_files=True).functions
