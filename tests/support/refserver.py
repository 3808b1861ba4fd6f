"""A stand-in server for a definition's external documents, on 127.0.0.1.

Each path answers what :attr:`RefServer.documents` holds for it (404 otherwise;
a ``(status, location)`` pair redirects). A path in :attr:`RefServer.held`
answers only once its :class:`asyncio.Event` is set; :attr:`RefServer.asked`
is set as soon as such a request arrives, so a test can act while the server
is still holding it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class RefServer:
    """The server's answers and what tests observe of it."""

    documents: dict[str, str | tuple[int, str]] = field(default_factory=dict)
    held: dict[str, asyncio.Event] = field(default_factory=dict)
    asked: asyncio.Event = field(default_factory=asyncio.Event)
    requests: list[str] = field(default_factory=list)
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer one request, then close the connection."""
        try:
            request_line = (await reader.readline()).decode()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # the headers
            path = request_line.split(" ")[1] if " " in request_line else "/"
            self.requests.append(path)
            if path in self.held:
                self.asked.set()
                await self.held[path].wait()
            writer.write(self._answer(path))
            await writer.drain()
        finally:
            writer.close()

    def _answer(self, path: str) -> bytes:
        found = self.documents.get(path)
        if found is None:
            return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        if isinstance(found, tuple):
            status, location = found
            head = f"HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n"
            return (head + "Connection: close\r\n\r\n").encode()
        body = found.encode()
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        )
        return (head + "Connection: close\r\n\r\n").encode() + body


@asynccontextmanager
async def ref_server() -> AsyncIterator[RefServer]:
    """A running :class:`RefServer`; every held request is released on exit."""
    state = RefServer()
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        for event in state.held.values():
            event.set()
        server.close()
        await server.wait_closed()
