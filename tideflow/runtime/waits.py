"""The runtime's port for event delivery: what the trigger side may ask of waiting instances.

The durable runtime keeps, beside its event waits (``tideflow_event_waits``),
a *wait index* (migration ``0006_correlation``, kept by database triggers in
the transaction that writes each wait): open waits by ``(event type,
correlation key, source)``, an *inbox* of events addressed to a wait that
does not exist yet, *partial sets* of waits for all of their events, and
consumed events *kept* for waits that begin later. :class:`EventWaits` is the
only way in from outside the runtime: the workflow subscriber
(:mod:`tideflow.triggers.correlation`) looks waits up, answers them, keeps and
hands over events through it, and never sees a table or a connection.

Answering goes to the runtime's delivery (:class:`Delivery`): one wait per
transaction, or many in one statement whose woken instances the runtime
claims and resumes in this process. Lookups and batched answers of one
consumer run on a connection the port holds between batches (a
:meth:`EventWaits.session`): batches come one at a time, and a pool release
costs a round trip (its reset) on the way of every event.

When an instance starts waiting, the index NOTIFYs :data:`NEW_WAIT_CHANNEL`
with ``<instance id>\\n<wait key>``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final, Protocol

import asyncpg

from tideflow.runtime import gateway
from tideflow.runtime.gateway import KeptEvent, WaitMatch, WaitRef, dumps

__all__ = [
    "NEW_WAIT_CHANNEL",
    "Answer",
    "Delivery",
    "EventWaits",
    "KeptEvent",
    "WaitMatch",
    "WaitRef",
    "WaitSession",
    "WaitTransaction",
]

NEW_WAIT_CHANNEL: Final = "tideflow_correlation"
"""NOTIFY channel: payload ``<instance id>\\n<wait key>`` when an instance starts waiting."""

Answer = tuple[str, str, list[dict[str, Any]]]
"""``(instance id, wait key, events)``: the events answering one wait."""


class Delivery(Protocol):
    """The runtime's delivery of events to waits (the durable runtime)."""

    async def deliver_events(
        self, instance_id: str, wait_key: str, events: list[dict[str, Any]]
    ) -> bool:
        """Answer one wait in its own transaction; whether it was open and took the events."""
        ...

    async def deliver_many(
        self, answers: Sequence[Answer], conn: asyncpg.Connection | None = None
    ) -> list[bool]:
        """Answer many waits at once on ``conn``; for each, whether it took the events."""
        ...


class WaitSession:
    """One consumer's lookups and batched answers, on the connection the port holds."""

    def __init__(self, conn: asyncpg.Connection, delivery: Delivery) -> None:
        self._conn = conn
        self._delivery = delivery

    async def match(self, keys: Sequence[tuple[int, str, dict[str, str], str]]) -> list[WaitMatch]:
        """The open waits for ``(event index, type, correlation key, source)``, by event."""
        return await gateway.match_waits(
            self._conn, [(i, kind, dumps(key), source) for i, kind, key, source in keys]
        )

    async def answer_many(self, answers: Sequence[Answer]) -> list[bool]:
        """Answer waits for one of their events in one statement (see :class:`Delivery`).

        A database failure raises: nothing of the batch was delivered.
        """
        return await self._delivery.deliver_many(answers, self._conn)


class WaitTransaction:
    """A transaction on the wait index, which another store's gateway may join.

    The trigger side's start sets take a set and address its events to the
    new instance's inbox atomically: their gateway runs its statements on
    :attr:`connection` (gateways only; no other code runs SQL on it).
    """

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.connection = conn
        """The transaction's connection, for a gateway that joins it."""

    async def put_inbox(self, wait: WaitRef, events: list[Any]) -> None:
        """Address ``events`` to an instance's wait before it exists (its starting events)."""
        await gateway.put_inbox(self.connection, wait, events)


class EventWaits:
    """The wait index and delivery of one runtime (see the module docs).

    Args:
        pool: The database pool (migrated).
        delivery: The runtime that answers waits and resumes their instances.
    """

    def __init__(self, pool: asyncpg.Pool, delivery: Delivery) -> None:
        self._pool = pool
        self._delivery = delivery
        self._held: asyncpg.Connection | None = None

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[WaitSession]:
        """A session on the held connection (taken anew after a failure)."""
        if self._held is None or self._held.is_closed():
            await self.close()
            self._held = await self._pool.acquire()
        try:
            yield WaitSession(self._held, self._delivery)
        except BaseException:
            await self.close()  # its state is unknown: the next session takes another
            raise

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[WaitTransaction]:
        """A transaction of its own (committed on exit, rolled back on an exception)."""
        async with self._pool.acquire() as conn, conn.transaction():
            yield WaitTransaction(conn)

    async def close(self) -> None:
        """Give the held connection back."""
        conn, self._held = self._held, None
        if conn is not None:
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await self._pool.release(conn)

    async def answer(self, wait: WaitRef, events: list[dict[str, Any]]) -> bool:
        """Answer one wait (a wait for all of its events keeps them until complete)."""
        return await self._delivery.deliver_events(wait[0], wait[1], events)

    async def add_part(
        self, wait: WaitRef, name: str, event: dict[str, Any]
    ) -> list[dict[str, Any]] | None:
        """Keep one event of a wait for all of its events (the first of each name wins).

        Returns:
            The wait's events in its listed order once every one has arrived
            (answer the wait with them), else ``None`` (or the wait is gone).
        """
        async with self._pool.acquire() as conn, conn.transaction():
            found = await gateway.add_partial(conn, wait, name, event)
        if found is None:
            return None
        names, kept = found
        return [kept[n] for n in names] if all(n in kept for n in names) else None

    async def keep(
        self, kept: Sequence[tuple[str, dict[str, str], int, str, dict[str, Any]]]
    ) -> None:
        """Keep ``(type, correlation key, offset, source, event)`` for waits that begin later."""
        async with self._pool.acquire() as conn:
            await gateway.keep_events(conn, [(t, dumps(k), o, s, e) for t, k, o, s, e in kept])

    async def kept_for(self, waits: Sequence[WaitRef]) -> list[KeptEvent]:
        """Kept events ``waits`` may take (those that arrived after each instance started)."""
        async with self._pool.acquire() as conn:
            return await gateway.kept_for(conn, waits)

    async def claim_kept(self, offset: int) -> bool:
        """Take a kept event: whoever takes it delivers it."""
        async with self._pool.acquire() as conn:
            return await gateway.claim_kept(conn, offset)

    async def expire_kept(self, seconds: float) -> None:
        """Forget kept events older than ``seconds``."""
        async with self._pool.acquire() as conn:
            await gateway.expire_kept(conn, seconds)

    async def put_inbox(self, wait: WaitRef, events: list[Any]) -> None:
        """Address ``events`` to an instance's wait before it exists (its starting events)."""
        async with self._pool.acquire() as conn:
            await gateway.put_inbox(conn, wait, events)

    async def inbox_of(self, waits: Sequence[WaitRef]) -> list[tuple[WaitRef, list[Any]]]:
        """The events addressed to ``waits`` (answer them, then :meth:`drop_inbox`)."""
        async with self._pool.acquire() as conn:
            return await gateway.inbox_of(conn, waits)

    async def drop_inbox(self, wait: WaitRef) -> None:
        """Forget the events addressed to ``wait`` (delivered)."""
        async with self._pool.acquire() as conn:
            await gateway.drop_inbox(conn, wait)

    async def waits_with_events(self) -> list[WaitRef]:
        """Open waits that events already wait for (an inbox, or kept events)."""
        async with self._pool.acquire() as conn:
            return await gateway.waits_with_events(conn)

    async def existing(self, instance_ids: Sequence[str]) -> set[str]:
        """Which of ``instance_ids`` are instances (started)."""
        async with self._pool.acquire() as conn:
            return await gateway.existing_instances(conn, instance_ids)
