"""Long polls that end with their client or with the server.

A request that waits (``GET /buses/{bus}/events?wait=``, ``GET
/instances/{id}?wait=``, a start with ``?wait=``) races its wait against the
client's disconnect and the server's drain (``app.state.draining``, set as a
shutdown begins, :class:`~tideflow.api.server.DrainingServer`). Whichever
comes first ends the others: an abandoned poll holds no task, and a shutdown
is never held up by one (nor logs its cancellation as a traceback).

The wait runs in the request's own task (:class:`~tideflow.supervise.Watched`):
the moment it ends (an instance's end committed, an event appended) wakes the
request at the next pass of the event loop, which answers at once -- not a
task of its own, a wait on that task, then the others cancelled and awaited,
five passes in all, each running whatever else is ready.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from tideflow.supervise import Watched

T = TypeVar("T")


async def wait_unless_abandoned(request: Request, wait: Awaitable[T]) -> asyncio.Future[T] | None:
    """Await ``wait`` until it ends, the client disconnects or the server drains.

    Returns:
        ``wait``'s future once it ended (its result, or the exception it
        raised, on it), ``None`` when the client went away or the server
        began to shut down first (``wait`` is then cancelled).
    """
    draining: asyncio.Event | None = getattr(request.app.state, "draining", None)
    others = [client_gone(request)] + ([draining.wait()] if draining is not None else [])
    waited: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    async with Watched(*others):
        try:
            waited.set_result(await wait)
        except Exception as exc:
            waited.set_exception(exc)
    return waited if waited.done() else None


async def client_gone(request: Request) -> None:
    """Return when the client disconnects (its request body is read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
