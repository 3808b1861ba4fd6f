"""A real HTTP sink for delivery tests: an ASGI app served by uvicorn on 127.0.0.1.

It records every request (path, headers, body) and answers with the status
its ``plan`` chooses -- so tests make it fail on purpose: 503 twice then 200,
404 for one event, hang past the delivery timeout, hold requests until
released (to count deliveries in flight).
"""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from tideflow.api.testserver import serve_app

HANG = -1
"""A plan's answer that makes the sink never answer (until the test ends)."""
HOLD = -2
"""A plan's answer that holds the request until :meth:`Sink.release`, then answers 200."""


@dataclass(frozen=True, slots=True)
class Received:
    """One request the sink got."""

    path: str
    headers: dict[str, str]
    body: bytes
    attempt: int
    """How many times this path got this ``ce-id`` (1 for the first)."""
    status: int

    @property
    def id(self) -> str:
        return self.headers.get("ce-id", "")

    def json(self) -> Any:
        return orjson.loads(self.body)


Plan = Callable[[str, dict[str, str], int], int]
"""(path, headers, attempt) -> status, HANG or HOLD."""


class Sink:
    """The ASGI app. ``plan`` decides each answer (200 by default)."""

    def __init__(self) -> None:
        self.plan: Plan = lambda path, headers, attempt: 200
        self.received: list[Received] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._attempts: Counter[tuple[str, str]] = Counter()
        self._changed = asyncio.Condition()
        self._released = asyncio.Event()
        self.closing = asyncio.Event()
        self.url = ""

    def release(self) -> None:
        """Answer every held request (and the ones held from now on) with 200."""
        self._released.set()

    def ids(self, path: str | None = None, *, ok: bool = False) -> list[str]:
        """The ``ce-id`` of each request (to ``path``; only the 2xx-answered ones)."""
        return [
            r.id
            for r in self.received
            if (path is None or r.path == path) and (not ok or 200 <= r.status < 300)
        ]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Until ``predicate()`` holds, re-checked after every request."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope["path"]
        key = (path, headers.get("ce-id", ""))
        self._attempts[key] += 1
        status = self.plan(path, headers, self._attempts[key])
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if status in (HANG, HOLD):
                async with self._changed:
                    self._changed.notify_all()
            if status == HANG:
                await self.closing.wait()
            if status == HOLD:
                await self._released.wait()
                status = 200
        finally:
            self.in_flight -= 1
        self.received.append(Received(path, headers, body, self._attempts[key], status))
        moved = [(b"location", b"/elsewhere")] if 300 <= status < 400 else []
        await send({"type": "http.response.start", "status": status, "headers": moved})
        await send({"type": "http.response.body", "body": b""})
        async with self._changed:
            self._changed.notify_all()


@asynccontextmanager
async def running_sink() -> AsyncIterator[Sink]:
    """A :class:`Sink` served on 127.0.0.1; its ``url`` is set."""
    sink = Sink()
    async with serve_app(sink) as url:
        sink.url = url
        try:
            yield sink
        finally:  # let hanging and held requests end, or the server waits for them
            sink.closing.set()
            sink.release()


class ThreadedSink(http.server.ThreadingHTTPServer):
    """An HTTP sink on 127.0.0.1 in threads of its own, for tests that are not async (a
    real ``tideflow serve`` in a subprocess): records every POST; paths under ``/hang``
    are not answered until :attr:`release` is set. ``serve_forever`` in a thread, then
    ``shutdown()`` and ``server_close()``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SinkHandler)
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def paths(self) -> list[str]:
        """The path of every request so far."""
        return [p for p, _, _ in list(self.received)]

    def ids(self, path: str) -> list[str]:
        return [h.get("ce-id", "") for p, h, _ in list(self.received) if p == path]


class _SinkHandler(http.server.BaseHTTPRequestHandler):
    server: ThreadedSink

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.received.append((self.path, headers, body))
        if self.path.startswith("/hang"):
            self.server.release.wait(120)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass
