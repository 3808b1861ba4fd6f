"""LISTEN/NOTIFY: the one listener every channel uses, reconnecting after a drop.

A :class:`Listener` holds one pooled connection that LISTENs on the channels
registered with :meth:`Listener.listen` and calls their callbacks with each
payload. When the connection drops (the server restarts, a proxy cuts it, an
administrator terminates it) it reconnects with a back-off and then calls the
:meth:`Listener.on_reconnect` callbacks: notifications sent while nobody
listened are lost, so whoever relies on them re-reads what they would have
announced (the event store wakes its readers, the claimer claims, the
workflow subscriber sweeps the open waits). The callbacks also run after the
first connect: whatever committed before it was not announced either.

:meth:`Listener.run` is a long-lived loop for a
:class:`~tideflow.supervise.Supervisor`; it reports its connection as the
condition ``listen:<name>`` of that supervisor, so ``/healthz`` shows a
listener that cannot reconnect.

:class:`Waiters` wakes the tasks waiting on one channel by the first word of
each payload (the event store's readers wait for their bus that way): every
waiter is woken after a reconnect and when the connection drops, and polls
every ``poll_interval`` seconds while it is down. :class:`Heads` keeps the
highest number each key's payloads announced (the event store's last offset
per bus): a reader whose cursor reached it knows that nothing was committed
after it without reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.db import keeps_session_state
from tideflow.supervise import Backoff, Supervisor, first_done

__all__ = ["CONNECTION_ERRORS", "Heads", "Listener", "Waiters", "usable"]

log = logging.getLogger("tideflow.notify")

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)
"""What a lost or unreachable database raises (a server restart raises each of them)."""


def usable(conn: Any) -> bool:
    """Whether a pooled connection still works: one that died was taken back by the
    pool, and its proxy raises on every call, ``is_closed()`` included."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:
        return False


Callback = Callable[[str], None]
"""Called with a notification's payload (synchronously, on the event loop)."""


class Listener:
    """LISTENs on channels and reconnects (see the module docs).

    Args:
        pool: Where to take the listening connection from.
        name: What it listens for, in logs and health (``events``, ``runtime``, ...).
        clock: For the reconnect back-off.
        backoff: Delays between reconnect attempts.
        health: The supervisor whose condition ``listen:<name>`` tells whether it is up.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        name: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        backoff: Backoff | None = None,
        health: Supervisor | None = None,
    ) -> None:
        self._pool = pool
        self.name = name
        self._clock = clock
        self._backoff = backoff or Backoff(first=0.1, longest=2.0)
        self._health = health
        self._channels: dict[str, list[Callback]] = {}
        self._reconnected: list[Callable[[], None]] = []
        self._dropped: list[Callable[[], None]] = []
        self._connection: Any = None
        self._lost = asyncio.Event()
        self.connected = asyncio.Event()
        """Set while the LISTEN connection is up."""
        self.error: str | None = "not connected yet"
        """Why it is not listening (``None`` while it is)."""
        self._report(self.error)

    @property
    def backend_pid(self) -> int | None:
        """The listening connection's server process id (tests terminate it); ``None`` while
        there is none, including the moment after a drop when the pool has already taken the
        connection back but the listener has not noticed yet."""
        connection = self._connection
        if connection is None:
            return None
        try:
            return int(connection.get_server_pid())
        except asyncpg.InterfaceError:  # released back to the pool: the connection is gone
            return None

    def listen(self, channel: str, callback: Callback) -> None:
        """Call ``callback`` with each payload on ``channel`` (from the next connect on)."""
        self._channels.setdefault(channel, []).append(callback)
        if self._connection is not None:  # running already: LISTEN now (a reconnect would)
            self._lost.set()

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after each connect: notifications may have been missed."""
        self._reconnected.append(callback)

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the connection drops (e.g. to poll until it is back)."""
        self._dropped.append(callback)

    async def run(self) -> None:
        """LISTEN until cancelled, reconnecting after a drop with a back-off."""
        failures = 0
        while True:
            try:
                await self._listen_once()
                failures = 0  # it was up; the drop is reported below
            except CONNECTION_ERRORS as exc:
                failures += 1
                self.error = f"{type(exc).__name__}: {exc}"
                self._report(self.error)
                if failures == 1:
                    log.warning("listener %s lost (%s); reconnecting", self.name, exc)
            self.connected.clear()
            await self._clock.sleep(self._backoff.delay(max(1, failures)))

    async def _listen_once(self) -> None:
        self._lost.clear()
        conn = await self._pool.acquire()
        self._connection = conn
        try:
            keeps_session_state(conn)  # given back with UNLISTEN * whatever happens
            conn.add_termination_listener(self._terminated)
            # A copy: a channel added meanwhile (listen()) is LISTENed at the next connect.
            for channel in list(self._channels):
                await conn.add_listener(channel, self._dispatch)
            if self.error != "not connected yet":
                log.info("listener %s is back", self.name)
            self.error = None
            self._report(None)
            self.connected.set()
            self._call(self._reconnected)
            await self._lost.wait()
            if not usable(conn):
                raise ConnectionError("the LISTEN connection closed")
        finally:
            self._connection = None
            self.connected.clear()
            self._call(self._dropped)
            await self._release(conn)

    def _terminated(self, _conn: object) -> None:
        self._lost.set()

    def _dispatch(self, _conn: object, _pid: int, channel: str, payload: str) -> None:
        for callback in self._channels.get(channel, ()):
            try:
                callback(payload)
            except Exception:  # one bad callback must not silence the others
                log.exception("listener %s: callback for %s failed", self.name, channel)

    def _call(self, callbacks: list[Callable[[], None]]) -> None:
        for callback in callbacks:
            try:
                callback()
            except Exception:  # one bad callback must not silence the others
                log.exception("listener %s: callback failed", self.name)

    async def _release(self, conn: Any) -> None:
        try:
            if usable(conn):
                for channel in list(self._channels):
                    await conn.remove_listener(channel, self._dispatch)
            await self._pool.release(conn)
        except CONNECTION_ERRORS:
            with contextlib.suppress(*CONNECTION_ERRORS):  # released by the pool already
                conn.terminate()

    def _report(self, error: str | None) -> None:
        if self._health is not None:
            self._health.report(f"listen:{self.name}", error)


class Waiters:
    """Wakes waiters on ``channel`` by the first word of its payloads (see the module docs).

    Args:
        listener: The listener whose connection it uses.
        channel: The channel; a payload is ``<key> <anything>``.
        clock: For the waiters' timeouts.
        poll_interval: How often waiters poll while the listener is down.
    """

    def __init__(
        self,
        listener: Listener,
        channel: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        poll_interval: float = 1.0,
    ) -> None:
        self._clock = clock
        self.poll_interval = poll_interval
        self.listener = listener
        """The listener whose connection it uses: whoever must hear other channels in the
        same order as this one's (one connection delivers in commit order) listens there."""
        self.channel = channel
        self.connected = listener.connected
        """Set while the LISTEN connection is up."""
        self._waiters: dict[str, set[asyncio.Event]] = {}
        listener.listen(channel, self._on_notify)
        listener.on_reconnect(self._wake_all)  # something may have committed meanwhile
        listener.on_lost(self._wake_all)  # waiting tasks switch to polling

    def _on_notify(self, payload: str) -> None:
        for event in self._waiters.get(payload.partition(" ")[0], ()):
            event.set()

    def _wake_all(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.set()

    def watch(self, key: str, event: asyncio.Event | None = None) -> asyncio.Event:
        """An event (``event``, or a new one) set by every notification for ``key`` (and on
        reconnect) until :meth:`unwatch`: a reader that clears it before each read misses no
        commit, without a query to check for new events after every wake-up; one that passes
        the event its other wake-ups set waits on that one event alone."""
        event = event or asyncio.Event()
        self._waiters.setdefault(key, set()).add(event)
        return event

    def watching(self, key: str) -> int:
        """How many waiters and readers watch ``key`` now."""
        return len(self._waiters.get(key, ()))

    def unwatch(self, key: str, event: asyncio.Event) -> None:
        """Stop setting ``event`` (from :meth:`watch`)."""
        waiters = self._waiters.get(key)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[key]

    async def wait(
        self,
        key: str,
        arrived: Callable[[], Awaitable[bool]],
        timeout: float,  # noqa: ASYNC109 - runs on the injected clock
    ) -> bool:
        """Wait until ``arrived()`` is true, re-checking it on every notification for ``key``.

        Returns:
            The last value of ``arrived()``: False when ``timeout`` seconds passed without.
        """
        event = self.watch(key)
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
            self.unwatch(key, event)

    async def _wait_event(self, event: asyncio.Event, seconds: float) -> None:
        await first_done(event.wait(), self._clock.sleep(seconds))


class Heads:
    """The highest number announced for each key on ``channel`` since the listener connected.

    A payload is ``<key> <number> ...``; a number that is not positive (or none) makes the key
    unknown again (the event store announces a bus created or deleted with ``0``). While the
    connection stays up, every commit's notification reaches the listener, and a commit's
    number is larger than every number committed before it (the event store's offsets are
    gap-free in commit order per bus), so nothing was committed past :meth:`head` but what a
    notification not yet arrived will announce. Every key is unknown again when the connection
    drops and when it is back: what committed meanwhile was not announced.

    Args:
        listener: The listener whose connection it uses.
        channel: The channel.
    """

    def __init__(self, listener: Listener, channel: str) -> None:
        self._connected = listener.connected
        self._heads: dict[str, int] = {}
        listener.listen(channel, self._on_notify)
        listener.on_reconnect(self._heads.clear)
        listener.on_lost(self._heads.clear)

    def _on_notify(self, payload: str) -> None:
        key, _, rest = payload.partition(" ")
        word = rest.partition(" ")[0]
        number = int(word) if word.isdigit() and len(word) <= 19 else 0
        if number > 0:
            self._heads[key] = max(number, self._heads.get(key, 0))
        else:
            self._heads.pop(key, None)

    def head(self, key: str) -> int | None:
        """The highest number announced for ``key``: ``None`` while unknown (nothing announced
        since the listener connected, or it is down)."""
        if not self._connected.is_set():
            return None
        return self._heads.get(key)
