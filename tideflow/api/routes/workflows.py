"""The workflow registry: deploy definitions (YAML or JSON), list, show, delete.

``POST /workflows`` parses and validates the body the same way ``tideflow
validate`` does, except that references to local files are not read (a
server must not open files named by its users); the source is stored as
submitted, beside the older versions of the same id. A ``python:`` function
whose module the server's policy refuses
(:mod:`tideflow.runtime.functions.policy`) is a problem like any other. An
invalid definition gets ``422`` with every problem and its path; an
unparseable one ``400`` with the line.

``?dialect=sonataflow`` is kept with the version (as a ``dialect`` parameter
of its stored content type) and turns on SonataFlow's leniencies when its
instances run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

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
from tideflow.errors import (
    InvalidArgument,
    StoreError,
    WorkflowLoadError,
    WorkflowValidationError,
)
from tideflow.runtime.functions.policy import PythonPolicy
from tideflow.runtime.start_schedules import check_start_schedule
from tideflow.workflow import load_and_validate, parse_document

if TYPE_CHECKING:
    from tideflow.runtime.gateway import PostgresRegistry, WorkflowVersion

router = APIRouter(tags=["workflows"])

YAML_TYPES: Final = frozenset({"application/yaml", "text/yaml", "application/x-yaml"})
JSON_TYPES: Final = frozenset({"application/json", "text/json"})
DIALECTS: Final = frozenset({"sonataflow"})
_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": Problem} for code in (400, 404, 409, 413, 415, 503)
}
_DEFINITION_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "description": "A Serverless Workflow 0.8 definition in YAML or JSON.",
        "content": {media: {"schema": {"type": "string"}} for media in sorted(YAML_TYPES)}
        | {"application/json": {"schema": {"type": "object"}}},
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


@dataclass(frozen=True, slots=True)
class Deployed:
    """The result of a deploy: the stored version and the definition's warnings."""

    version: WorkflowVersion
    warnings: tuple[dict[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        """``{id, version, warnings}``."""
        return {
            "id": self.version.workflow_id,
            "version": self.version.version,
            "warnings": list(self.warnings),
        }


def media_type(header: str | None) -> str:
    """The bare media type of a ``Content-Type`` header, lower case (``""`` if none)."""
    return (header or "").split(";", 1)[0].strip().lower()


def stored_content_type(media: str, dialect: str | None) -> str:
    """The content type kept with a version: YAML or JSON, plus the dialect if any."""
    base = "application/json" if media in JSON_TYPES else "application/yaml"
    return f"{base}; dialect={dialect}" if dialect else base


def _check_dialect(dialect: str | None) -> None:
    if dialect is not None and dialect not in DIALECTS:
        raise InvalidArgument(
            f"unknown dialect {dialect!r}; the only dialect is 'sonataflow'", argument="dialect"
        )


async def deploy_definition(
    registry: PostgresRegistry,
    text: str,
    content_type: str,
    *,
    base_dir: FilePath | None = None,
    dialect: str | None = None,
    source: str = "<request body>",
    policy: PythonPolicy | None = None,
) -> Deployed:
    """Parse, validate and store a definition as a new version.

    Args:
        registry: Where versions are stored.
        text: The definition as submitted.
        content_type: Its media type (YAML or JSON).
        base_dir: Where local references resolve; ``None`` (definitions sent
            over HTTP) reads no local files at all.
        dialect: ``"sonataflow"`` or ``None``.
        source: How to name the definition in error messages.
        policy: Which modules ``python:`` functions may import; by default
            none (each refused function is a problem at ``functions[i].operation``).

    Raises:
        WorkflowLoadError: The text does not parse (its ``line`` set).
        WorkflowValidationError: The definition is invalid.
        AlreadyExists: The version exists with another source.
    """
    _check_dialect(dialect)
    # A newline keeps the loader from taking a one-line body for a file name.
    body = text if "\n" in text else text + "\n"
    try:
        model, warnings = load_and_validate(
            body, base_dir=base_dir, local_files=base_dir is not None, dialect=dialect
        )
        document = parse_document(body, source)
    except WorkflowLoadError as exc:
        message = exc.message.removeprefix("<text>: ").removeprefix(f"{source}: ")
        raise WorkflowLoadError(f"{source}: {message}", source=source, line=exc.line) from None
    except WorkflowValidationError as exc:
        raise WorkflowValidationError(exc.problems, source=source) from None
    if refused := (policy or PythonPolicy.for_server()).problems(model.functions):
        raise WorkflowValidationError((*refused, *warnings), source=source)
    schedule_warnings = check_start_schedule(document, source)
    workflow_id = model.id or model.key
    if not workflow_id:  # the validator insists on one; stay safe anyway
        raise InvalidArgument("the definition has neither 'id' nor 'key'", argument="id")
    stored = await registry.deploy(
        workflow_id,
        model.version,
        text,
        stored_content_type(media_type(content_type), dialect),
        document,
    )
    return Deployed(stored, tuple(w.to_json() for w in (*warnings, *schedule_warnings)))


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
)
async def deploy_workflow(
    request: Request,
    services: Services_,
    dialect: Annotated[
        str | None, Query(description="`sonataflow`: its documented leniencies.")
    ] = None,
) -> Response:
    """Deploy a definition (YAML or JSON body) as a new version of its `id`.

    The version is the definition's `version` (or the deploy number when it
    has none); older versions stay, and running instances finish on theirs.
    Deploying the same source again is a no-op; another source under an
    existing version is a 409.
    """
    registry = registry_of(services)
    media = media_type(request.headers.get("content-type"))
    if media and media not in YAML_TYPES | JSON_TYPES:
        accepted = ", ".join(sorted(YAML_TYPES | JSON_TYPES))
        return problem(
            415, "unsupported-media-type", "Unsupported content type", f"{media}: use {accepted}"
        )
    body = await request.body()
    limit = services.settings.max_request_bytes
    if len(body) > limit:
        detail = f"the definition is {len(body)} bytes; the limit is {limit}"
        return problem(413, "payload-too-large", "Request body too large", detail)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument("the definition is not UTF-8 text", argument="body") from None
    if not text.strip():
        raise InvalidArgument("the request body is empty: send a definition", argument="body")
    policy = services.python_policy or PythonPolicy.for_server(services.settings.python_modules)
    try:
        deployed = await deploy_definition(registry, text, media, dialect=dialect, policy=policy)
    except WorkflowValidationError as exc:
        return invalid_response(exc)
    if services.schedules is not None:  # start.schedule: register, replace or cancel
        await services.schedules.sync(deployed.version.workflow_id)
    response = json_response(deployed.to_json(), 201)
    response.headers["location"] = f"/workflows/{deployed.version.workflow_id}"
    return response


def _summary(version: WorkflowVersion) -> dict[str, Any]:
    definition = version.definition if isinstance(version.definition, dict) else {}
    return {**version.to_json(), "name": definition.get("name")}


@router.get("/workflows", response_model=WorkflowList, responses=_ERRORS, summary="List workflows")
async def list_workflows(services: Services_) -> Response:
    """The latest version of every workflow that is not deleted, by id."""
    versions = await registry_of(services).list()
    return json_response({"workflows": [_summary(v) for v in versions]})


@router.get(
    "/workflows/{workflow_id}", response_model=WorkflowOut, responses=_ERRORS, summary="Show"
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
    "/workflows/{workflow_id}", status_code=204, responses=_ERRORS, summary="Delete a workflow"
)
async def delete_workflow(workflow_id: WorkflowId, services: Services_) -> Response:
    """Stop new instances of a workflow; running instances finish on their version.

    Its versions stay readable; deploying it again brings it back.
    """
    await registry_of(services).delete(workflow_id)
    if services.schedules is not None:  # no more scheduled instances
        await services.schedules.sync(workflow_id)
    return Response(status_code=204)
