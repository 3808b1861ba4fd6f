"""Connectors: create, list, show, delete, pause and resume sources and sinks.

The body of ``POST /connectors`` is validated by
:func:`tideflow.connectors.spec.parse_connector`: a bad field is a 422 naming it
(``config.table``, ``subscription.filters[0]``); a missing bus a 404; a type whose
client library is not installed a 422 naming the extra to install. Creating,
pausing, resuming and deleting need the ``admin`` scope (a connector opens
connections with credentials); reading needs ``read``. Credentials are never shown:
secret references as written, any other credential as ``***``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from tideflow.api.access import requires
from tideflow.api.errors import problem
from tideflow.api.routes.events import json_response
from tideflow.api.routes.subscriptions import json_body
from tideflow.api.schemas import Problem
from tideflow.api.services import Services, get_services
from tideflow.auth.scopes import ADMIN, READ
from tideflow.errors import InvalidArgument, MissingExtra

if TYPE_CHECKING:
    from tideflow.connectors.service import ConnectorService

router = APIRouter(tags=["connectors"])

_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": Problem} for code in (400, 404, 409, 422, 503)
}
_CREATE: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["name", "kind", "type", "bus"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"},
        "kind": {"enum": ["source", "sink"]},
        "type": {"enum": ["postgres", "redis", "nats", "amqp", "mqtt"]},
        "bus": {"type": "string"},
        "config": {
            "type": "object",
            "description": 'the type\'s settings (docs/connectors.md); a value {"secret": NAME} '
            "is resolved when the connector runs and never stored",
        },
        "mapping": {
            "type": "string",
            "description": "jq: record -> event attributes (source), event -> row or message "
            "(sink)",
        },
        "subscription": {
            "type": "object",
            "description": "a sink's subscription: filters, transform, delivery, from "
            "(as in POST /subscriptions)",
        },
    },
    "additionalProperties": False,
}
_CONNECTOR: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        **_CREATE["properties"],
        "state": {"enum": ["active", "paused"]},
        "running": {"type": "object", "description": "the task: state, error, restarts"},
        "activity": {
            "type": "object",
            "description": "connected, inFlight and the latest scaling decisions",
        },
        "lag": {"type": ["integer", "null"]},
        "events": {"type": "integer"},
        "errors": {"type": "integer"},
        "lastError": {"type": ["string", "null"]},
        "position": {"type": ["object", "null"]},
    },
}


def _returns(status: int, schema: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {**_ERRORS, status: {"content": {"application/json": {"schema": schema}}}}


_ONE: Final = _returns(200, _CONNECTOR)
ConnectorName = Annotated[str, Path(description="The connector's name.")]
Services_ = Annotated[Services, Depends(get_services)]


def _service(services: Services) -> ConnectorService:
    found = services.connectors
    if found is None:
        raise HTTPException(503, "connectors are not available on this server")
    return found


@router.post(
    "/connectors",
    status_code=201,
    responses=_returns(201, _CONNECTOR),
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _CREATE}}}
    },
    summary="Create a connector",
    dependencies=[requires(ADMIN)],
)
async def create_connector(request: Request, services: Services_) -> Response:
    """Create a source or a sink; it starts at once."""
    connectors = _service(services)
    try:
        connector = await connectors.create(await json_body(request))
    except InvalidArgument as exc:
        return problem(422, "invalid-connector", "Invalid connector", exc.message, exc.argument)
    except MissingExtra as exc:
        return problem(422, "missing-extra", "Connector type not installed", exc.message, "type")
    response = json_response(await connectors.status(connector), 201)
    response.headers["location"] = f"/connectors/{connector.name}"
    return response


@router.get(
    "/connectors",
    responses=_returns(
        200,
        {"type": "object", "properties": {"connectors": {"type": "array", "items": _CONNECTOR}}},
    ),
    summary="List connectors",
    dependencies=[requires(READ)],
)
async def list_connectors(services: Services_) -> Response:
    """Every connector with its state, lag, counts and last error, by name."""
    connectors = _service(services)
    found = [await connectors.status(c) for c in await connectors.list()]
    return json_response({"connectors": found})


@router.get(
    "/connectors/{name}",
    responses=_ONE,
    summary="Show a connector",
    dependencies=[requires(READ)],
)
async def show_connector(name: ConnectorName, services: Services_) -> Response:
    """State, running task, connection and scaling decisions, lag, counts, last error."""
    connectors = _service(services)
    return json_response(await connectors.status(await connectors.get(name)))


@router.delete(
    "/connectors/{name}",
    status_code=204,
    responses=_ERRORS,
    summary="Delete a connector",
    dependencies=[requires(ADMIN)],
)
async def delete_connector(name: ConnectorName, services: Services_) -> Response:
    """Stop it and forget it (a sink's subscription and offsets too)."""
    await _service(services).delete(name)
    return Response(status_code=204)


@router.post(
    "/connectors/{name}/pause",
    responses=_ONE,
    summary="Pause a connector",
    dependencies=[requires(ADMIN)],
)
async def pause_connector(name: ConnectorName, services: Services_) -> Response:
    """Stop reading (source) or delivering (sink); the position is kept."""
    connectors = _service(services)
    return json_response(await connectors.status(await connectors.pause(name)))


@router.post(
    "/connectors/{name}/resume",
    responses=_ONE,
    summary="Resume a connector",
    dependencies=[requires(ADMIN)],
)
async def resume_connector(name: ConnectorName, services: Services_) -> Response:
    """Run again from the stored position (a sink from its committed offset)."""
    connectors = _service(services)
    return json_response(await connectors.status(await connectors.resume(name)))
