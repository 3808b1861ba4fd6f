"""Event ingestion (the CloudEvents HTTP binding) and reading a bus by offset.

Ingestion is the hot path: the request is decoded with
:mod:`tideflow.http_binding`, appended through the event store (which
groups concurrent appends into one commit) and answered ``202`` only once the
store has acknowledged the commit (see :mod:`tideflow.api.fastpath`). JSON is
written with orjson directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from tideflow import jsontext
from tideflow.api import fastpath
from tideflow.api.access import requires
from tideflow.api.long_poll import wait_unless_abandoned
from tideflow.api.schemas import AppendResult, EventPage, EventRecord, Problem
from tideflow.api.services import Services, get_services
from tideflow.auth.scopes import PUBLISH, SUBSCRIBE
from tideflow.eventstore.store import DEFAULT_BUS, MAX_OFFSET, StoredEvent

router = APIRouter(tags=["events"])

MAX_WAIT_SECONDS: Final = 60.0
MAX_LIMIT: Final = 1000
_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": Problem} for code in (400, 404, 413, 415, 503)
}
_EVENT: Final[dict[str, Any]] = {
    "type": "object",
    "description": "A CloudEvent in the JSON event format: the attributes and extensions as "
    "members, the payload in data or data_base64; deliverytime or delay holds it for later.",
    "required": ["specversion", "id", "source", "type"],
    "properties": {
        "specversion": {"const": "1.0"},
        "id": {"type": "string", "minLength": 1},
        "source": {"type": "string", "minLength": 1},
        "type": {"type": "string", "minLength": 1},
    },
}
_EVENT_EXAMPLE: Final = {
    "specversion": "1.0",
    "id": "order-1",
    "source": "/shop",
    "type": "com.example.order.placed",
    "data": {"orderId": 1},
}
_CE_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "description": "One CloudEvent in binary mode (ce-* headers), structured mode "
        "(application/cloudevents+json) or a batch (application/cloudevents-batch+json).",
        "content": {
            "application/cloudevents+json": {"schema": _EVENT, "example": _EVENT_EXAMPLE},
            "application/cloudevents-batch+json": {
                "schema": {"type": "array", "items": _EVENT},
                "example": [_EVENT_EXAMPLE],
            },
        },
    }
}

BusName = Annotated[str, Path(description="The bus name.")]
Services_ = Annotated[Services, Depends(get_services)]


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON response serialized by orjson."""
    return Response(_dumps(body), status_code=status, media_type="application/json")


def _dumps(body: Any) -> bytes:
    try:
        return orjson.dumps(body, default=_to_json)
    except TypeError as exc:
        # An integer beyond 64 bits, or a value nested deeper than orjson writes (an event
        # stored before the depth limit): written exactly by the standard library, more slowly.
        if "64-bit" not in str(exc) and "Recursion" not in str(exc):
            raise
    return jsontext.dumps_standard(_plain(body))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _to_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


async def ingest(request: Request, services: Services, bus: str) -> Response:
    """Decode the request's events, append them all or none, and acknowledge after commit.

    The app's :class:`~tideflow.api.fastpath.IngestFastPath` answers these
    routes before FastAPI sees them; this is the same code for apps without it.
    """
    limit = services.settings.max_request_bytes
    appender = services.ingest or services.events
    body = await fastpath.ingest(request.scope, request.receive, appender, bus, limit)
    return Response(body, status_code=202, media_type="application/json")


@router.post(
    "/events",
    status_code=202,
    response_model=AppendResult,
    responses=_ERRORS,
    openapi_extra=_CE_BODY,
    summary="Send CloudEvents to the default bus",
    dependencies=[requires(f"{PUBLISH}:{DEFAULT_BUS}")],
)
async def post_default_events(request: Request, services: Services_) -> Response:
    """Append one event (binary or structured mode) or a batch to the ``default`` bus."""
    return await ingest(request, services, DEFAULT_BUS)


@router.post(
    "/buses/{bus}/events",
    status_code=202,
    response_model=AppendResult,
    responses=_ERRORS,
    openapi_extra=_CE_BODY,
    summary="Send CloudEvents to a bus",
    dependencies=[requires(PUBLISH + ":{bus}")],
)
async def post_bus_events(bus: BusName, request: Request, services: Services_) -> Response:
    """Append one event (binary or structured mode) or a batch to ``bus``."""
    return await ingest(request, services, bus)


def record(stored: StoredEvent) -> dict[str, Any]:
    """A stored event as the API shows it."""
    return {"offset": stored.offset, "event": stored.event}


@router.get(
    "/buses/{bus}/events",
    response_model=EventPage,
    responses=_ERRORS,
    summary="Read a bus by offset",
    dependencies=[requires(SUBSCRIBE + ":{bus}")],
)
async def read_events(
    request: Request,
    bus: BusName,
    services: Services_,
    after: Annotated[
        int, Query(ge=0, le=MAX_OFFSET, description="Return events after this offset.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many.")] = 100,
    wait: Annotated[
        float,
        Query(ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for a first new event."),
    ] = 0,
) -> Response:
    """Committed events with offset greater than ``after``, in order, and the next cursor."""
    store = services.events
    found = await store.read(bus, after, limit)
    if not found and wait > 0:
        # ends with its client or the server's drain: the page is then empty
        waited = await wait_unless_abandoned(request, store.wait_for(bus, after, wait))
        if waited is not None and waited.result():
            found = await store.read(bus, after, limit)
    next_after = found[-1].offset if found else after
    return json_response(
        {"bus": bus, "events": [record(stored) for stored in found], "next": next_after}
    )


@router.get(
    "/buses/{bus}/events/{offset}",
    response_model=EventRecord,
    responses=_ERRORS,
    summary="Read one event",
    dependencies=[requires(SUBSCRIBE + ":{bus}")],
)
async def get_event(
    bus: BusName,
    offset: Annotated[int, Path(ge=1, le=MAX_OFFSET, description="The event's offset.")],
    services: Services_,
) -> Response:
    """The event at ``offset`` in ``bus``."""
    return json_response(record(await services.events.get(bus, offset)))
