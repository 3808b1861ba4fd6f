"""Run an ASGI app on a real uvicorn server inside the current event loop (for tests).

``async with serve_app(app) as base_url:`` binds 127.0.0.1 on a free port,
runs the app's lifespan, serves until the block ends, then shuts down
cleanly. Tests talk to it over real HTTP with httpx.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from tideflow.api.server import DrainingServer
from tideflow.errors import ConfigurationError
from tideflow.supervise import scoped


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def serve_app(
    app: Any, *, host: str = "127.0.0.1", startup_timeout: float = 30.0
) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free port; yield its base URL.

    Raises:
        ConfigurationError: The server did not start (its lifespan failed).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", ws="none", access_log=False)
    draining = getattr(getattr(app, "state", None), "draining", None) or asyncio.Event()
    server = DrainingServer(config, draining)
    async with scoped([server.serve(sockets=[sock])]) as (task,):
        try:
            async with asyncio.timeout(startup_timeout):
                while not server.started:
                    if task.done():
                        raise ConfigurationError("the test server did not start")
                    await asyncio.sleep(0.01)
            yield f"http://{host}:{port}"
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, timeout=30)
            sock.close()
