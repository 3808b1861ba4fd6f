"""OpenAPI documents: parsing, operation lookup and argument mapping (no I/O)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tideflow.errors import FunctionCallError
from tideflow.runtime.functions.openapi import (
    Document,
    build_request,
    find_operation,
    parse_document,
    resolve_location,
    split_operation,
)

DOC = (Path(__file__).resolve().parents[1] / "support" / "pets.yaml").read_text()


def _doc(source: str = "http://svc.test/openapi/pets.yaml") -> Document:
    return parse_document(DOC, source)


def test_operations_are_indexed_by_id_with_path_level_parameters() -> None:
    op = find_operation(_doc(), "getPet")
    assert (op.method, op.path) == ("GET", "/pets/{petId}")
    names = {(p.name, p.location, p.required) for p in op.parameters}
    assert ("petId", "path", True) in names  # from the path item, through a $ref
    assert ("X-Request-Id", "header", False) in names


def test_relative_server_resolves_against_the_document_url() -> None:
    assert find_operation(_doc(), "listPets").servers == ("http://svc.test/api",)


def test_arguments_go_where_the_document_declares_them() -> None:
    op = find_operation(_doc(), "getPet")
    parts = build_request(op, {"petId": 7, "verbose": True, "X-Request-Id": "r1"}, "http://h/api")
    assert parts.url == "http://h/api/pets/7"
    assert parts.params == [("verbose", "true")]
    assert parts.headers == {"X-Request-Id": "r1"}
    assert not parts.has_body


def test_list_query_values_repeat_the_parameter() -> None:
    parts = build_request(find_operation(_doc(), "listPets"), {"tag": ["a", "b"]}, "http://h")
    assert parts.params == [("tag", "a"), ("tag", "b")]


def test_remaining_arguments_form_the_body_and_a_lone_body_argument_is_the_body() -> None:
    op = find_operation(_doc(), "updatePet")
    parts = build_request(op, {"petId": 1, "name": "Rex", "tag": "dog"}, "http://h")
    assert parts.body == {"name": "Rex", "tag": "dog"}
    parts = build_request(op, {"petId": 1, "body": [1, 2]}, "http://h")
    assert parts.body == [1, 2]


def test_missing_required_parameter_names_it() -> None:
    with pytest.raises(FunctionCallError, match="'petId'") as info:
        build_request(find_operation(_doc(), "getPet"), {}, "http://h")
    assert info.value.code == "InvalidArguments"
    assert info.value.retryable is False


def test_unknown_argument_on_a_get_is_an_error() -> None:
    with pytest.raises(FunctionCallError, match="nope"):
        build_request(find_operation(_doc(), "echo"), {"nope": 1}, "http://h")


def test_unknown_operation_lists_the_known_ones() -> None:
    with pytest.raises(FunctionCallError, match="getPet") as info:
        find_operation(_doc(), "missing")
    assert info.value.code == "UnknownOperation"


def test_json_documents_parse_too() -> None:
    doc = parse_document(
        '{"paths": {"/x": {"post": {"operationId": "x", "requestBody": {}}}}}', "f.json"
    )
    op = find_operation(doc, "x")
    assert op.has_body
    assert op.servers == ()


def test_garbage_is_a_clear_error() -> None:
    with pytest.raises(FunctionCallError, match="no 'paths'"):
        parse_document("just: text", "f.yaml")


def test_operation_reference_forms(tmp_path: Path) -> None:
    assert split_operation("file://api.yaml#op") == ("file://api.yaml", "op")
    assert resolve_location("file://myapis/a.json", tmp_path) == str(tmp_path / "myapis/a.json")
    assert resolve_location("http://x/a.json", tmp_path) == "http://x/a.json"
    with pytest.raises(FunctionCallError, match="operationId"):
        split_operation("api.yaml")


def test_sonataflow_operation_forms_resolve_in_the_workflow_folder(tmp_path: Path) -> None:
    # SonataFlow: `specs/x.yaml#op` relative to the workflow, `classpath:` from
    # src/main/resources, where its workflows live (URIContentLoaderFactory)
    assert split_operation("specs/orders.yaml#getOrder") == ("specs/orders.yaml", "getOrder")
    here = str(tmp_path / "specs" / "orders.yaml")
    assert resolve_location("specs/orders.yaml", tmp_path) == here
    assert resolve_location("classpath:specs/orders.yaml", tmp_path) == here
    assert resolve_location("classpath:/specs/orders.yaml", tmp_path) == here
