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

import orjson
from fastapi import APIRouter, Depends, Path, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from tideflow.api.access import authorize, requires, signed_or
from tideflow.api.errors import problem
from tideflow.api.routes.events import json_response
from tideflow.api.routes.subscriptions import json_body
from tideflow.api.schemas import Problem
from tideflow.api.services import Services, get_services
from tideflow.auth.scopes import ADMIN, PUBLISH, READ, bus_scope
from tideflow.connectors.mapping import Record
from tideflow.connectors.webhook import visible_headers
from tideflow.errors import ExpressionError, InvalidArgument, MissingExtra

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
        "type": {"enum": ["postgres", "redis", "nats", "amqp", "mqtt", "smtp", "webhook"]},
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


@router.post(
    "/hooks/{name}",
    status_code=202,
    responses=_returns(
        202,
        {
            "type": "object",
            "properties": {
                "bus": {"type": "string"},
                "offset": {"type": ["integer", "null"]},
                "duplicate": {"type": "boolean"},
                "dropped": {"type": "boolean", "description": "the mapping gave no event"},
            },
        },
    ),
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}},
        "security": [{}, {"bearer": []}],
    },
    summary="Deliver to a webhook source",
    dependencies=[signed_or("publish:<the hook's bus>")],
)
async def receive_hook(name: ConnectorName, request: Request, services: Services_) -> Response:
    """Any JSON body becomes an event of the webhook connector ``name`` (202 after commit).

    A hook with ``config.signature`` checks the request's HMAC signature (GitHub,
    Stripe or a plain HMAC-SHA256 header: 401 when missing or wrong) and needs no
    token; one without it needs a token with ``publish:<its bus>``.
    """
    connectors = _service(services)
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    check = await connectors.hook(name, headers, body)
    if check.scheme is None:
        connector = await connectors.get(name)
        authorize(request.scope, bus_scope(PUBLISH, connector.spec.bus))
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return problem(400, "invalid-json", "Invalid JSON", f"the body is not JSON: {exc}")
    record = Record(
        id=check.record_id(headers, data),
        data=data,
        channel=name,
        headers=visible_headers(headers),
    )
    try:
        appended = await connectors.receive(name, record)
    except (InvalidArgument, ExpressionError) as exc:
        return problem(422, "unmappable", "The mapping failed", exc.message, "mapping")
    if appended is None:
        return json_response({"dropped": True}, 202)
    return json_response({**appended.to_json(), "dropped": False}, 202)
