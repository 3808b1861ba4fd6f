"""``dataInputSchema`` files that ``$ref`` their siblings: read, bundled, checked (issue 17).

The 0.8 bug was ``Unresolvable: complex.json`` at run time: the schema was
inlined but the files it names were not. SonataFlow resolves them against the
schema's own location (``JsonSchemaReader``), and so does Tideflow now.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tideflow.errors import WorkflowValidationError, format_path
from tideflow.runtime._input import InputChecker
from tideflow.workflow.loader import build_definition, load_and_validate, parse_document

DRAFT4 = "http://json-schema.org/draft-04/schema#"
ORDER = {
    "$schema": DRAFT4,
    "type": "object",
    "required": ["customer"],
    "properties": {
        "customer": {"$ref": "customer.json"},
        "lines": {"type": "array", "items": {"$ref": "customer.json#/definitions/line"}},
    },
}
CUSTOMER = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string"},
        "age": {"type": "integer", "minimum": 0, "exclusiveMinimum": True},  # draft-04's form
        "address": {"$ref": "common/address.json"},
    },
    "definitions": {
        "line": {
            "type": "object",
            "required": ["sku"],
            "properties": {"sku": {"$ref": "#/definitions/sku"}},
        },
        "sku": {"type": "string", "pattern": "^[A-Z]"},
    },
}
ADDRESS = {
    "type": "object",
    "required": ["city"],
    "properties": {"back": {"$ref": "../customer.json"}},
}


def _project(tmp_path: Path, schema: Any = "schemas/order.json") -> Path:
    (tmp_path / "schemas" / "common").mkdir(parents=True)
    (tmp_path / "schemas" / "order.json").write_text(json.dumps(ORDER))
    (tmp_path / "schemas" / "customer.json").write_text(json.dumps(CUSTOMER))
    (tmp_path / "schemas" / "common" / "address.json").write_text(json.dumps(ADDRESS))
    wf = {
        "id": "order",
        "specVersion": "0.8",
        "dataInputSchema": schema,
        "states": [{"name": "S", "type": "inject", "data": {}, "end": True}],
    }
    path = tmp_path / "order.sw.json"
    path.write_text(json.dumps(wf))
    return path


def _checker(path: Path) -> InputChecker:
    workflow, _ = load_and_validate(path)
    return InputChecker(workflow)


def test_sibling_files_resolve_against_the_file_that_names_them(tmp_path: Path) -> None:
    checker = _checker(_project(tmp_path))
    good = {"customer": {"id": "c1", "address": {"city": "Porto"}}, "lines": [{"sku": "A1"}]}
    assert checker.problem(good) is None
    assert "customer.age" in (checker.problem({"customer": {"id": "c1", "age": 0}}) or "")
    assert "lines[0].sku" in (
        checker.problem({"customer": {"id": "c"}, "lines": [{"sku": "a"}]}) or ""
    )
    assert "city" in (checker.problem({"customer": {"id": "c", "address": {}}}) or "")


def test_an_inline_schema_names_files_beside_the_workflow(tmp_path: Path) -> None:
    inline = {"schema": {"type": "object", "properties": {"order": {"$ref": "schemas/order.json"}}}}
    checker = _checker(_project(tmp_path, inline))
    assert checker.problem({"order": {"customer": {"id": "c1"}}}) is None
    assert checker.problem({"order": {}}) is not None


def test_the_stored_document_is_self_contained(tmp_path: Path) -> None:
    path = _project(tmp_path)
    doc = parse_document(path.read_text())
    from tideflow.workflow.loader import (
        external_references,
        read_local_references,
        schema_references,
    )

    contents = read_local_references(external_references(doc), tmp_path)
    while more := [r for r in schema_references(doc, contents) if r.uri not in contents]:
        contents |= read_local_references(more, tmp_path)
    stored = build_definition(doc, contents).document
    for file in (tmp_path / "schemas").rglob("*.json"):
        file.unlink()
    again = build_definition(stored)  # a stored version: nothing is read again
    assert InputChecker(again.workflow).problem({"customer": {"id": "c1"}}) is None


def test_a_missing_sibling_is_a_problem_at_its_ref(tmp_path: Path) -> None:
    path = _project(tmp_path)
    (tmp_path / "schemas" / "common" / "address.json").unlink()
    with pytest.raises(WorkflowValidationError) as caught:
        load_and_validate(path)
    [problem] = caught.value.problems
    assert (
        format_path(problem.path)
        == "dataInputSchema.schema.properties.customer.$ref.properties.address.$ref"
    )
    assert "schemas/common/address.json" in problem.message
    assert "no such file" in problem.message


def test_without_local_files_no_sibling_is_read(tmp_path: Path) -> None:
    inline = {"schema": {"type": "object", "properties": {"order": {"$ref": "schemas/order.json"}}}}
    path = _project(tmp_path, inline)
    with pytest.raises(WorkflowValidationError) as caught:
        load_and_validate(path, local_files=False)
    messages = [p.message for p in caught.value.problems]
    assert len(messages) == 1
    assert "local files are not read here" in messages[0]


def test_a_pointer_to_nothing_and_an_invalid_schema_are_problems(tmp_path: Path) -> None:
    bad = {
        "schema": {
            "type": "object",
            "properties": {"a": {"$ref": "#/definitions/none"}, "b": {"type": 5}},
        }
    }
    with pytest.raises(WorkflowValidationError) as caught:
        load_and_validate(_project(tmp_path, bad))
    found = sorted((format_path(p.path), p.message.split(":")[0]) for p in caught.value.problems)
    assert found == [
        ("dataInputSchema.schema.properties.a.$ref", "cannot resolve $ref"),
        ("dataInputSchema.schema.properties.b.type", "not a valid JSON schema"),
    ]
