"""The ingestion hot path as plain ASGI, in front of FastAPI's routing.

``POST /events`` and ``POST /buses/{bus}/events`` are most of the traffic.
Profiling showed FastAPI's routing, dependency solving and middleware layers
costing about as much CPU per request as the work itself, so
:class:`IngestFastPath` answers these two routes directly: read the body
(with the size limit), decode it (:mod:`tideflow.http_binding`),
append through the store (acknowledged after commit), write the response.
The access gate in front of it (:mod:`tideflow.api.access`) has admitted the
request; this path checks its ``publish:<bus>`` scope. Every other request
goes to the FastAPI app unchanged; the FastAPI routes of
the same paths stay for the OpenAPI document and behave the same.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

import orjson

from tideflow import tracing
from tideflow.api.access import authorize
from tideflow.api.errors import problem, tideflow_error_response
from tideflow.auth.scopes import PUBLISH, bus_scope
from tideflow.errors import EventRejected, TideflowError
from tideflow.eventstore.store import DEFAULT_BUS, Appender
from tideflow.http_binding import decode_request

log = logging.getLogger("tideflow.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


_PREFIX: Final = "/buses/"
_SUFFIX: Final = "/events"


class ClientGone(Exception):
    """The client disconnected before sending its whole body."""


def ingest_bus(path: str) -> str | None:
    """The bus an ingestion path posts to, or ``None`` if it is not an ingestion path."""
    if path == "/events":
        return DEFAULT_BUS
    if path.startswith(_PREFIX) and path.endswith(_SUFFIX):
        bus = path[len(_PREFIX) : -len(_SUFFIX)]
        if bus and "/" not in bus:
            return bus
    return None


def _too_large(size: str, limit: int) -> EventRejected:
    return EventRejected(f"request body of {size} exceeds the limit of {limit} bytes", None, 413)


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes (declared or streamed).

    Raises:
        EventRejected: 413 above the limit, 400 for an invalid Content-Length.
        ClientGone: The client went away.
    """
    for name, value in scope["headers"]:
        if name == b"content-length":
            if not value.isdigit():
                raise EventRejected(f"invalid Content-Length {value.decode('latin-1')!r}", None)
            if int(value) > limit:
                raise _too_large(f"{int(value)} bytes", limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(f"more than {limit} bytes", limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def ingest(scope: Scope, receive: Receive, store: Appender, bus: str, limit: int) -> bytes:
    """Read, decode and append one ingestion request; return the 202 body.

    Raises:
        TideflowError: For the error response (rejected event, unknown bus, …).
    """
    body = await read_body(scope, receive, limit)
    events = decode_request(scope["headers"], body)
    if not events:
        await store.get_bus(bus)  # an empty batch still needs a real bus
        return b'{"events":[]}'
    if (parent := tracing.ingest_parent(scope["headers"], events)) is not None:
        with tracing.ingest_span(parent, bus, len(events)):
            acks = await store.append(bus, events)
    else:  # tracing off, or a request not sampled: no span object at all
        acks = await store.append(bus, events)
    return orjson.dumps({"events": [a.to_json() for a in acks]})


class IngestFastPath:
    """ASGI middleware answering the ingestion routes itself.

    Args:
        app: The application for every other request.
        resolve: Gives the store and the body limit for a request (reads the
            app's services; called once per request).
    """

    def __init__(self, app: ASGIApp, resolve: Callable[[Scope], tuple[Appender, int]]) -> None:
        self.app = app
        self.resolve = resolve

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        bus = ingest_bus(scope["path"])
        if bus is None:
            await self.app(scope, receive, send)
            return
        try:
            authorize(scope, bus_scope(PUBLISH, bus))
            store, limit = self.resolve(scope)
            body = await ingest(scope, receive, store, bus, limit)
        except ClientGone:
            return
        except TideflowError as exc:
            await tideflow_error_response(exc)(scope, receive, send)
            return
        except Exception as exc:
            log.exception("unhandled error in POST %s", scope["path"], exc_info=exc)
            detail = f"{type(exc).__name__} while handling the request; see the server log"
            await problem(500, "internal-error", "Internal server error", detail)(
                scope, receive, send
            )
            return
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
        ]
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        await send({"type": "http.response.body", "body": body})
