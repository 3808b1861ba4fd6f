"""specs/openapi.json: generated from the app, kept up to date, covering every route."""

from __future__ import annotations

from pathlib import Path

from tideflow.api.openapi import openapi_document, render

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "specs" / "openapi.json"


def test_shipped_document_is_current() -> None:
    assert SHIPPED.read_text() == render(), (
        "specs/openapi.json is out of date; "
        "regenerate: python -m tideflow.api.openapi > specs/openapi.json"
    )


def test_document_has_the_workflow_and_instance_routes() -> None:
    paths = openapi_document()["paths"]
    expected = {
        "/workflows": {"get", "post"},
        "/workflows/{workflow_id}": {"get", "delete"},
        "/workflows/{workflow_id}/versions/{version}": {"get"},
        "/workflows/{workflow_id}/instances": {"post"},
        "/instances": {"get"},
        "/instances/{instance_id}": {"get"},
        "/instances/{instance_id}/timeline": {"get"},
        "/instances/{instance_id}/cancel": {"post"},
        "/instances/{instance_id}/suspend": {"post"},
        "/instances/{instance_id}/resume": {"post"},
        "/healthz": {"get"},
        "/metrics": {"get"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert set(paths[path]) >= methods, path


def test_deploy_documents_yaml_bodies_and_the_422_problem_list() -> None:
    deploy = openapi_document()["paths"]["/workflows"]["post"]
    body = deploy["requestBody"]["content"]
    assert {"application/yaml", "text/yaml", "application/x-yaml", "application/json"} <= set(body)
    invalid = deploy["responses"]["422"]["content"]["application/problem+json"]["schema"]
    schemas = openapi_document()["components"]["schemas"]
    name = invalid["$ref"].rsplit("/", 1)[-1]
    assert {"errors", "detail"} <= set(schemas[name]["properties"])
    instance = schemas["InstanceOut"]["properties"]
    assert {"status", "currentState", "error", "startedAt", "endedAt", "parentId"} <= set(instance)


def test_error_answers_are_documented_as_they_are_sent() -> None:
    """Problems as ``application/problem+json``; a bad parameter is the handler's 400, not
    FastAPI's 422; the access gate's 401, 403 and 421 wherever a token is needed."""
    document = openapi_document()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            responses = operation["responses"]
            for status, response in responses.items():
                if int(status) >= 400 and path not in ("/healthz", "/readyz"):
                    assert set(response["content"]) == {"application/problem+json"}, where
            if operation.get("security") != []:
                assert {"401", "403", "421"} <= set(responses), where
