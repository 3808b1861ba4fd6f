"""Request bodies refused past their limit before they are read (ASGI middleware).

:class:`BodyLimit` sits in front of FastAPI's routing (behind the ingestion
fast path, which bounds its own bodies the same way). A body whose declared
``Content-Length`` is past the route's limit is answered ``413`` before one
byte of it is read; a body sent without a length (chunked) is counted as it
streams in, and the route is stopped with ``413`` as soon as it goes past the
limit. Nothing ever holds more than the limit of a request in memory, whatever
the route does with its body -- a pydantic model, ``request.body()`` or a
YAML parser.

The limit is ``TIDEFLOW_MAX_REQUEST_BYTES`` (1 MiB) for every route except an
instance start (``POST /workflows/{id}/instances``), whose body is the
instance's input and is held to ``TIDEFLOW_VALUE_BYTES_LIMIT`` (8 MiB), the
limit every value meets.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Final

from tideflow.api.errors import problem
from tideflow.settings import Settings

__all__ = ["BodyLimit", "Limit", "limit_for"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_INSTANCE_START: Final = re.compile(r"/workflows/[^/]+/instances")


@dataclass(frozen=True, slots=True)
class Limit:
    """A route's body limit and the setting that sets it."""

    bytes: int
    """The most a body may hold."""
    setting: str
    """The ``TIDEFLOW_*`` variable that sets it (named in the 413)."""
    what: str
    """What the body is, for the message."""


def limit_for(scope: Scope, settings: Settings) -> Limit:
    """The body limit of the request ``scope`` (see the module docs)."""
    if scope["method"] == "POST" and _INSTANCE_START.fullmatch(scope["path"]):
        return Limit(settings.value_bytes_limit, "TIDEFLOW_VALUE_BYTES_LIMIT", "the instance input")
    return Limit(settings.max_request_bytes, "TIDEFLOW_MAX_REQUEST_BYTES", "the request body")


class _TooLarge(Exception):
    """Raised out of ``receive`` to stop a route reading past the limit."""


class BodyLimit:
    """ASGI middleware: ``413`` for a body past its route's limit (see the module docs).

    Args:
        app: The application behind it.
        resolve: The limit for a request (from the app's settings).
    """

    def __init__(self, app: ASGIApp, resolve: Callable[[Scope], Limit]) -> None:
        self.app = app
        self.resolve = resolve

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.resolve(scope)
        declared = _content_length(scope)
        if declared == -1:
            await problem(400, "invalid-request", "Invalid request", "invalid Content-Length")(
                scope, receive, send
            )
            return
        if declared is not None and declared > limit.bytes:
            await _refuse(scope, receive, send, limit, f"{declared} bytes")
            return
        capped = _Capped(receive, limit.bytes)
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if capped.exceeded:  # the route's own answer (a 400 from a body parser): ours instead
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _refuse(scope, receive, send, limit, f"more than {limit.bytes} bytes")
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, capped.receive, guarded_send)
        except _TooLarge:
            if not started:
                await _refuse(scope, receive, send, limit, f"more than {limit.bytes} bytes")


class _Capped:
    """A ``receive`` that counts the body and raises once it goes past the limit."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self._limit = limit
        self._size = 0
        self.exceeded = False

    async def receive(self) -> Message:
        if self.exceeded:
            raise _TooLarge
        message = await self._receive()
        if message["type"] == "http.request":
            self._size += len(message.get("body", b""))
            if self._size > self._limit:
                self.exceeded = True
                raise _TooLarge
        return message


def _content_length(scope: Scope) -> int | None:
    """The declared length; ``None`` without one, ``-1`` when it is not a number."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None


async def _refuse(scope: Scope, receive: Receive, send: Send, limit: Limit, size: str) -> None:
    detail = (
        f"{limit.what} is {size}; the limit is {limit.bytes} bytes ({limit.setting}): "
        "nothing of it was kept"
    )
    if limit.setting == "TIDEFLOW_VALUE_BYTES_LIMIT":
        detail = f"VALUE_BYTES_LIMIT: {detail}"
    await problem(413, "payload-too-large", "Request body too large", detail)(scope, receive, send)
