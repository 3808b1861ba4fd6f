"""Change notification: LISTEN/NOTIFY, with a slow poll while the listener is down.

Every appending transaction runs ``pg_notify('tideflow_events', '<bus> <last
offset>')``; PostgreSQL delivers it only at commit, so a woken reader always
finds the events committed. :class:`Listener` holds one pooled connection
that LISTENs and wakes the readers waiting on that bus. If the connection
drops, readers fall back to polling every ``poll_interval`` seconds while
:meth:`Listener.run` reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from tideflow.clock import Clock

log = logging.getLogger("tideflow.eventstore")

CHANNEL = "tideflow_events"


class Listener:
    """Wakes readers when their bus gets events.

    Args:
        pool: Where to take the listening connection from.
        clock: For the reconnect delay and the readers' timeouts.
        poll_interval: How often readers poll while the listener is down.
    """

    def __init__(self, pool: asyncpg.Pool, clock: Clock, *, poll_interval: float = 1.0) -> None:
        self._pool = pool
        self._clock = clock
        self.poll_interval = poll_interval
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._lost = asyncio.Event()
        self._connection: Any = None
        self.connected = asyncio.Event()
        """Set while the LISTEN connection is up."""

    @property
    def backend_pid(self) -> int | None:
        """The listening connection's server process id (tests terminate it)."""
        return None if self._connection is None else int(self._connection.get_server_pid())

    async def run(self) -> None:
        """LISTEN until cancelled, reconnecting after a drop."""
        while True:
            try:
                await self._listen_once()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("event listener lost (%s); readers poll until it is back", exc)
            self.connected.clear()
            self._wake_all()  # waiting readers switch to polling
            await self._clock.sleep(self.poll_interval)

    async def _listen_once(self) -> None:
        self._lost.clear()
        conn = await self._pool.acquire()
        self._connection = conn
        try:
            conn.add_termination_listener(lambda _conn: self._lost.set())
            await conn.add_listener(CHANNEL, self._on_notify)
            self.connected.set()
            self._wake_all()  # events may have committed while nobody listened
            await self._lost.wait()
        finally:
            self._connection = None
            self.connected.clear()
            await self._release(conn)

    async def _release(self, conn: Any) -> None:
        try:
            if not conn.is_closed():
                await conn.remove_listener(CHANNEL, self._on_notify)
            await self._pool.release(conn)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            conn.terminate()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        bus = payload.partition(" ")[0]
        for event in self._waiters.get(bus, ()):
            event.set()

    def _wake_all(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.set()

    def watch(self, bus: str) -> asyncio.Event:
        """An event set by every notification for ``bus`` (and on reconnect) until
        :meth:`unwatch`: a reader that clears it before each read misses no commit,
        without a query to check for new events after every wake-up."""
        event = asyncio.Event()
        self._waiters.setdefault(bus, set()).add(event)
        return event

    def unwatch(self, bus: str, event: asyncio.Event) -> None:
        """Stop setting ``event`` (from :meth:`watch`)."""
        waiters = self._waiters.get(bus)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[bus]

    async def wait(
        self,
        bus: str,
        arrived: Callable[[], Awaitable[bool]],
        timeout: float,  # noqa: ASYNC109 - runs on the injected clock
    ) -> bool:
        """Wait until ``arrived()`` is true, re-checking it on every notification for ``bus``.

        Returns:
            The last value of ``arrived()``: False when ``timeout`` seconds passed without.
        """
        event = asyncio.Event()
        self._waiters.setdefault(bus, set()).add(event)
        try:
            deadline = self._clock.monotonic() + timeout
            while not await arrived():
                remaining = deadline - self._clock.monotonic()
                if remaining <= 0:
                    return False
                if not self.connected.is_set():
                    remaining = min(remaining, self.poll_interval)
                await self._wait_event(event, remaining)
                event.clear()
            return True
        finally:
            waiters = self._waiters.get(bus)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[bus]

    async def _wait_event(self, event: asyncio.Event, seconds: float) -> None:
        woken = asyncio.ensure_future(event.wait())
        timer = asyncio.ensure_future(self._clock.sleep(seconds))
        try:
            await asyncio.wait({woken, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            timer.cancel()
