"""Change notification for readers: NOTIFY wakes them, a slow poll while it is down.

Every appending transaction runs ``pg_notify('tideflow_events', '<bus> <last
offset>')``; PostgreSQL delivers it only at commit, so a woken reader always
finds the events committed. :class:`Listener` LISTENs through the one
reconnecting listener of :mod:`tideflow.notify` and wakes the readers waiting
on that bus. If the connection drops, every reader is woken and polls every
``poll_interval`` seconds until it is back; after a reconnect every reader is
woken again (events may have committed while nobody listened).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from tideflow import notify
from tideflow.clock import Clock
from tideflow.supervise import Supervisor

log = logging.getLogger("tideflow.eventstore")

CHANNEL = "tideflow_events"


class Listener:
    """Wakes readers when their bus gets events.

    Args:
        pool: Where to take the listening connection from.
        clock: For the reconnect delay and the readers' timeouts.
        poll_interval: How often readers poll while the listener is down.
        health: The supervisor the connection's state is reported to.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        *,
        poll_interval: float = 1.0,
        health: Supervisor | None = None,
    ) -> None:
        self._clock = clock
        self.poll_interval = poll_interval
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._notify = notify.Listener(pool, "events", clock=clock, health=health)
        self._notify.listen(CHANNEL, self._on_notify)
        self._notify.on_reconnect(self._wake_all)  # events may have committed meanwhile
        self._notify.on_lost(self._wake_all)  # waiting readers switch to polling
        self.connected = self._notify.connected
        """Set while the LISTEN connection is up."""

    @property
    def backend_pid(self) -> int | None:
        """The listening connection's server process id (tests terminate it)."""
        return self._notify.backend_pid

    async def run(self) -> None:
        """LISTEN until cancelled, reconnecting after a drop."""
        await self._notify.run()

    def _on_notify(self, payload: str) -> None:
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
        event = self.watch(bus)
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
            self.unwatch(bus, event)

    async def _wait_event(self, event: asyncio.Event, seconds: float) -> None:
        # Both futures are awaited here and cancelled on the way out: no task outlives the call.
        woken = asyncio.ensure_future(event.wait())
        timer = asyncio.ensure_future(self._clock.sleep(seconds))
        try:
            await asyncio.wait({woken, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            timer.cancel()
