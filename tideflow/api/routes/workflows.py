"""The workflow registry: deploy definitions (YAML or JSON), list, show, delete.

``POST /workflows`` parses and validates the body the same way ``tideflow
validate`` does, except that references to local files are not read (a
server must not open files named by its users); the source is stored as
submitted, beside the older versions of the same id. A ``python:`` function
whose module the server's policy refuses
(:mod:`tideflow.runtime.functions.policy`) is a problem like any other. An
invalid definition gets ``422`` with every problem and its path; an
unparseable one ``400`` with the line.

A zip *bundle* (``Content-Type: application/zip``) carries the definition
with its relative files (:mod:`tideflow.bundle`): its references resolve
inside the bundle and nowhere else, and the resolved document is stored
with the version (with the OpenAPI and AsyncAPI documents its functions
name, so their calls read no file). ``?workflow=`` names the definition when the bundle's
root holds several. A bundle that is unreadable, too large, a zip bomb, or
has a name leaving it (``..``, an absolute path, a symlink) is a 422 with
that name. Multipart uploads are not taken: ``multipart/form-data`` is a
type a web page may send cross-site without a pre-flight
(:mod:`tideflow.auth.hygiene`).

``?dialect=sonataflow`` is kept with the version (as a ``dialect`` parameter
of its stored content type) and turns on SonataFlow's leniencies when its
instances run.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from tideflow.api import audit
from tideflow.api.access import requires
from tideflow.api.errors import PROBLEM_JSON, problem
from tideflow.api.routes.events import json_response
from tideflow.api.schemas import (
    InvalidWorkflow,
    Problem,
    WorkflowDeployed,
    WorkflowList,
    WorkflowOut,
)
from tideflow.api.services import Services, get_services
from tideflow.auth.scopes import DEPLOY, READ
from tideflow.bundle import BUNDLE_TYPES, Bundle, read_bundle
from tideflow.deploy import JSON_TYPES, deploy_definition
from tideflow.egress import EgressPolicy
from tideflow.errors import InvalidArgument, StoreError, WorkflowValidationError
from tideflow.runtime.functions.policy import PythonPolicy

if TYPE_CHECKING:
    from tideflow.runtime.gateway import PostgresRegistry, WorkflowVersion

router = APIRouter(tags=["workflows"])

YAML_TYPES: Final = frozenset({"application/yaml", "text/yaml", "application/x-yaml"})
_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": Problem} for code in (400, 404, 409, 413, 415, 503)
}
_EXAMPLE_JSON: Final = {
    "id": "greeting-json",
    "version": "1.0",
    "specVersion": "0.8",
    "start": "Greet",
    "states": [{"name": "Greet", "type": "inject", "data": {"greeting": "Hello"}, "end": True}],
}
_EXAMPLE_YAML: Final = """\
id: greeting
version: '1.0'
specVersion: '0.8'
start: Greet
states:
  - name: Greet
    type: inject
    data:
      greeting: Hello
    end: true
"""
_DEFINITION_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "description": "A Serverless Workflow 0.8 definition in YAML or JSON.",
        "content": {
            media: {"schema": {"type": "string"}, "example": _EXAMPLE_YAML}
            for media in sorted(YAML_TYPES)
        }
        | {"application/json": {"schema": {"type": "object"}, "example": _EXAMPLE_JSON}}
        | {
            "application/zip": {
                "schema": {
                    "type": "string",
                    "format": "binary",
                    "description": "A bundle: the definition with its relative files.",
                }
            }
        },
    }
}

WorkflowId = Annotated[str, Path(description="The workflow's `id`.")]
Services_ = Annotated[Services, Depends(get_services)]


def registry_of(services: Services) -> PostgresRegistry:
    """The registry, or a 503 problem when this server runs without one."""
    if services.registry is None:
        raise StoreError("this server has no workflow registry (no durable runtime)")
    registry: PostgresRegistry = services.registry
    return registry


def media_type(header: str | None) -> str:
    """The bare media type of a ``Content-Type`` header, lower case (``""`` if none)."""
    return (header or "").split(";", 1)[0].strip().lower()


def invalid_response(exc: WorkflowValidationError) -> Response:
    """``422`` with ``errors`` (and ``warnings``): every problem with its path."""
    errors = [p.to_json() for p in exc.problems if p.severity == "error"]
    warnings = [p.to_json() for p in exc.problems if p.severity != "error"]
    detail = exc.message.removeprefix("<request body>: ")
    body = {
        "type": "invalid-workflow",
        "title": "Invalid workflow",
        "detail": detail,
        "errors": errors,
        "warnings": warnings,
    }
    response = json_response(body, 422)
    response.headers["content-type"] = PROBLEM_JSON
    return response


@router.post(
    "/workflows",
    status_code=201,
    response_model=WorkflowDeployed,
    responses={**_ERRORS, 422: {"model": InvalidWorkflow}},
    openapi_extra=_DEFINITION_BODY,
    summary="Deploy a workflow",
    dependencies=[requires(DEPLOY)],
)
async def deploy_workflow(
    request: Request,
    services: Services_,
    dialect: Annotated[
        str | None, Query(description="`sonataflow`: its documented leniencies.")
    ] = None,
    workflow: Annotated[
        str | None,
        Query(description="A bundle's definition file, when its root holds several."),
    ] = None,
) -> Response:
    """Deploy a definition (YAML or JSON body, or a zip bundle with its files) as a new
    version of its `id`.

    The version is the definition's `version` (or the deploy number when it
    has none); older versions stay, and running instances finish on theirs.
    Deploying the same source again is a no-op; another source under an
    existing version is a 409.
    """
    registry = registry_of(services)
    media = media_type(request.headers.get("content-type"))
    if media and media not in YAML_TYPES | JSON_TYPES | BUNDLE_TYPES:
        accepted = ", ".join(sorted(YAML_TYPES | JSON_TYPES | BUNDLE_TYPES))
        return problem(
            415, "unsupported-media-type", "Unsupported content type", f"{media}: use {accepted}"
        )
    body = await request.body()  # at most TIDEFLOW_MAX_REQUEST_BYTES (api/body_limit.py)
    bundle: Bundle | None = None
    policy = services.python_policy or PythonPolicy.for_server(services.settings.python_modules)
    try:
        if media in BUNDLE_TYPES:
            bundle = await asyncio.to_thread(read_bundle, body, workflow)  # expands: off the loop
            body, media = bundle.definition, bundle.media
        text = _definition_text(body)
        deployed = await deploy_definition(
            registry,
            text,
            media,
            dialect=dialect,
            policy=policy,
            egress=EgressPolicy.for_server(services.settings.egress_allow),
            secrets=services.secrets,
            bundle=bundle,
            engine=services.settings.engine,
        )
    except WorkflowValidationError as exc:
        return invalid_response(exc)
    if services.schedules is not None:  # start.schedule: register, replace or cancel
        await services.schedules.sync(deployed.version.workflow_id)
    workflow_id = deployed.version.workflow_id
    await audit.record(
        request,
        "workflow.deployed",
        f"/workflows/{workflow_id}",
        workflowId=workflow_id,
        version=deployed.version.version,
    )
    response = json_response(deployed.to_json(), 201)
    response.headers["location"] = f"/workflows/{deployed.version.workflow_id}"
    return response


def _definition_text(body: bytes) -> str:
    """The definition's text: UTF-8, not empty."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument("the definition is not UTF-8 text", argument="body") from None
    if not text.strip():
        raise InvalidArgument("the request body is empty: send a definition", argument="body")
    return text


def _summary(version: WorkflowVersion) -> dict[str, Any]:
    definition = version.definition if isinstance(version.definition, dict) else {}
    return {**version.to_json(), "name": definition.get("name")}


@router.get(
    "/workflows",
    response_model=WorkflowList,
    responses=_ERRORS,
    summary="List workflows",
    dependencies=[requires(READ)],
)
async def list_workflows(services: Services_) -> Response:
    """The latest version of every workflow that is not deleted, by id."""
    versions = await registry_of(services).list()
    return json_response({"workflows": [_summary(v) for v in versions]})


@router.get(
    "/workflows/{workflow_id}",
    response_model=WorkflowOut,
    responses=_ERRORS,
    summary="Show",
    dependencies=[requires(READ)],
)
async def show_workflow(workflow_id: WorkflowId, services: Services_) -> Response:
    """The latest version of a workflow, with the list of all its versions."""
    registry = registry_of(services)
    latest = await registry.get(workflow_id)
    versions = await registry.versions(workflow_id)
    return json_response({**_summary(latest), "versions": [v.version for v in versions]})


@router.get(
    "/workflows/{workflow_id}/versions/{version}",
    responses={
        200: {
            "description": "The definition exactly as submitted, with its content type.",
            "content": {"application/yaml": {}, "application/json": {}},
        },
        **_ERRORS,
    },
    summary="Get a version's source",
    dependencies=[requires(READ)],
)
async def get_version(
    workflow_id: WorkflowId,
    version: Annotated[str, Path(description="The version.")],
    services: Services_,
) -> Response:
    """The source of one version as it was submitted, with its content type."""
    stored = await registry_of(services).get(workflow_id, version)
    return Response(stored.source_text, media_type=stored.content_type.split(";", 1)[0])


@router.delete(
    "/workflows/{workflow_id}",
    status_code=204,
    responses=_ERRORS,
    summary="Delete a workflow",
    dependencies=[requires(DEPLOY)],
)
async def delete_workflow(
    workflow_id: WorkflowId, request: Request, services: Services_
) -> Response:
    """Stop new instances of a workflow; running instances finish on their version.

    Its versions stay readable; deploying it again brings it back.
    """
    await registry_of(services).delete(workflow_id)
    if services.schedules is not None:  # no more scheduled instances
        await services.schedules.sync(workflow_id)
    target = f"/workflows/{workflow_id}"
    await audit.record(request, "workflow.deleted", target, workflowId=workflow_id)
    return Response(status_code=204)
