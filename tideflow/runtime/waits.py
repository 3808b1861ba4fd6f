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

Answering is :class:`WaitDelivery`'s: one wait per transaction, or many in
one statement whose woken instances the runtime claims and resumes in this
process (below). Lookups and batched answers of one
consumer run on a connection the port holds between batches (a
:meth:`EventWaits.session`): batches come one at a time, and a pool release
costs a round trip (its reset) on the way of every event.

When an instance starts waiting, the index NOTIFYs :data:`NEW_WAIT_CHANNEL`
with ``<instance id>\\n<wait key>``.

Delivery
--------
:meth:`WaitDelivery.deliver_events` answers one wait per transaction and
leaves the instance to the claimer: a NOTIFY, a claim query, a journal load,
then the replay. For the waits a batch of events answers,
:meth:`WaitDelivery.deliver_many` does it in one statement (``deliver_claim``
in ``sql/deliver.sql``): it drops the waits, journals their results, cancels
their wake-up timers and claims the parked instances for this process, and
returns their journals (with the results just added): runners start at once. An
instance that is held (running here or elsewhere) is marked woken as before;
a NOTIFY tells the claimers only then. Waits on *all* of their events, and a
second wait of an instance already in the batch, go through
:meth:`~WaitDelivery.deliver_events` one by one.

The guarantees are those of ``deliver_events``: the result is committed
before anyone sees it, a wait is answered at most once (the row is deleted
under its lock), and a claimed instance's lease is a lease like any other
(if no runner starts, it runs out and any process claims the instance).

The runners themselves are the host's: delivery reaches them through the
:class:`Runners` Protocol only.

A host that keeps the results of its waits itself -- the Temporal engine,
whose workflows buffer the events signalled to them -- records its waits in
the same table (so the index, the inbox, kept events and partial sets serve it
unchanged) and is resumed by :class:`SignalDelivery` instead: a wait is
answered by dropping its row under its lock (answered at most once) and
signalling its events to the instance (:class:`Signals`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from typing import Any, Final, Protocol

import asyncpg

from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.errors import StoreError
from tideflow.runtime import gateway
from tideflow.runtime.gateway import (
    DeliveredRow,
    InstanceRow,
    KeptEvent,
    OpenWait,
    WaitMatch,
    WaitRef,
    dumps,
)
from tideflow.runtime.journal import JournalWriter, Stage
from tideflow.runtime.wakeups import cancel_wake_timer

__all__ = [
    "NEW_WAIT_CHANNEL",
    "Answer",
    "Delivery",
    "EventWaits",
    "KeptEvent",
    "Runners",
    "SignalDelivery",
    "Signals",
    "WaitDelivery",
    "WaitMatch",
    "WaitRef",
    "WaitSession",
    "WaitTransaction",
    "assemble",
]

log = logging.getLogger("tideflow.runtime")

_STAGE_SECONDS: Final = 0.02
"""How long a delivery's transaction waits for the runs it resumed to arrive at their first
write or work outside (:class:`~tideflow.runtime.journal.Stage`); then it commits without the
runs that did not."""

_PLAN_SECONDS: Final = 1.0
"""How long the held connection of a wait session keeps its plans (:meth:`EventWaits.session`):
then they are made again, for the tables as they are by then (a plan made while a table was
small scans it)."""

NEW_WAIT_CHANNEL: Final = "tideflow_correlation"
"""NOTIFY channel: payload ``<instance id>\\n<wait key>`` when an instance starts waiting."""

Answer = tuple[str, str, list[dict[str, Any]]]
"""``(instance id, wait key, events)``: the events answering one wait."""


class Delivery(Protocol):
    """How a host's waits are answered (:class:`WaitDelivery`, :class:`SignalDelivery`)."""

    async def deliver_events(
        self, instance_id: str, wait_key: str, events: list[dict[str, Any]]
    ) -> bool:
        """Answer one open wait; whether it was open and took the events."""

    async def deliver_many(
        self, answers: Sequence[Answer], conn: asyncpg.Connection | None = None
    ) -> list[bool]:
        """Answer many waits; for each, whether it was open and took its events."""


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

    async def addressed(
        self, asks: Sequence[tuple[int, str, str]]
    ) -> list[tuple[int, str, WaitMatch | None]]:
        """For ``(event index, instance id, type)``: the instance's workflow id and its open
        waits for the type (``None``: it has none), when the instance exists."""
        return await gateway.addressed_waits(self._conn, asks)

    async def answer_many(self, answers: Sequence[Answer]) -> list[bool]:
        """Answer waits for one of their events in one statement (see :class:`WaitDelivery`).

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

    async def put_inbox(self, wait: WaitRef, events: list[Any], origin: int) -> None:
        """Address ``events`` to an instance's wait before it exists (its starting events).

        The instance consumes the events after offset ``origin`` (the last starting one).
        """
        await gateway.put_inbox(self.connection, wait, events, origin)


class EventWaits:
    """The wait index and delivery of one runtime (see the module docs).

    Args:
        pool: The database pool (migrated).
        delivery: The runtime's delivery, which answers waits and resumes their instances.
        clock: The clock the held connection's plans age by.
    """

    def __init__(
        self, pool: asyncpg.Pool, delivery: Delivery, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._pool = pool
        self._delivery = delivery
        self._clock = clock
        self._held: asyncpg.Connection | None = None
        self._planned_at = 0.0

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[WaitSession]:
        """A session on the held connection (taken anew after a failure).

        The held connection plans each statement once (generic plans; see ``plan_once``
        in ``sql/waits.sql``): ``deliver_claim`` was otherwise planned anew at every event,
        for longer than it ran. Its plans are made again when they are older than
        :data:`_PLAN_SECONDS`; the pool's release resets the setting.
        """
        fresh = self._held is None or self._held.is_closed()
        if fresh:
            await self.close()
            self._held = await self._pool.acquire()
        assert self._held is not None
        try:
            now = self._clock.monotonic()
            if fresh:
                await gateway.plan_once(self._held)
                self._planned_at = now
            elif now - self._planned_at >= _PLAN_SECONDS:
                await gateway.plan_again(self._held)
                self._planned_at = now
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

    async def put_inbox(self, wait: WaitRef, events: list[Any], origin: int) -> None:
        """Address ``events`` to an instance's wait before it exists (its starting events).

        The instance consumes the events after offset ``origin`` (the last starting one).
        """
        async with self._pool.acquire() as conn:
            await gateway.put_inbox(conn, wait, events, origin)

    async def put_inboxes(self, inboxes: Sequence[tuple[WaitRef, list[Any], int]]) -> None:
        """:meth:`put_inbox` for many ``(wait, events, origin)`` in one statement."""
        async with self._pool.acquire() as conn:
            await gateway.put_inboxes(conn, inboxes)

    async def put_origin(self, instance_id: str, origin: int) -> None:
        """Make an instance not created yet consume the events after offset ``origin``."""
        async with self._pool.acquire() as conn:
            await gateway.put_origin(conn, instance_id, origin)

    async def inbox_of(self, waits: Sequence[WaitRef]) -> list[tuple[WaitRef, list[Any]]]:
        """The events addressed to ``waits`` (answer them, then :meth:`drop_inbox`)."""
        async with self._pool.acquire() as conn:
            return await gateway.inbox_of(conn, waits)

    async def drop_inbox(self, wait: WaitRef) -> None:
        """Forget the events addressed to ``wait`` (delivered)."""
        async with self._pool.acquire() as conn:
            await gateway.drop_inbox(conn, wait)

    async def answer_inboxes(self, found: Sequence[tuple[WaitRef, list[Any]]]) -> list[bool]:
        """Answer waits with the events addressed to them (:meth:`inbox_of`), then forget
        those events; for each, whether its wait took them.

        The waits for one of their events are answered in one statement that claims
        their parked instances for this process (``deliver_many``): an instance resumes
        where its starting events were delivered, and no other process is woken for it.

        Raises:
            StoreError: The database failed (the inboxes are kept: answer them again).
        """
        if not found:
            return []
        taken = await self._delivery.deliver_many([(*wait, events) for wait, events in found])
        try:
            async with self._pool.acquire() as conn:
                await gateway.drop_inboxes(conn, [wait for wait, _ in found])
        except asyncpg.PostgresError as exc:
            raise StoreError(f"forgetting {len(found)} delivered inboxes failed: {exc}") from exc
        return taken

    async def waits_with_events(self) -> list[WaitRef]:
        """Open waits that events already wait for (an inbox, or kept events)."""
        async with self._pool.acquire() as conn:
            return await gateway.waits_with_events(conn)

    async def existing(self, instance_ids: Sequence[str]) -> set[str]:
        """Which of ``instance_ids`` are instances (started)."""
        async with self._pool.acquire() as conn:
            return await gateway.existing_instances(conn, instance_ids)


# --- delivery -----------------------------------------------------------------


def _split(answers: Sequence[Answer]) -> tuple[list[int], list[int]]:
    """Indexes for the batch (one per instance) and those left for one-by-one delivery."""
    batch: list[int] = []
    rest: list[int] = []
    seen: set[str] = set()
    for i, (instance_id, _, _) in enumerate(answers):
        if instance_id in seen:
            rest.append(i)
        else:
            seen.add(instance_id)
            batch.append(i)
    return batch, rest


async def _batch_then_rest(
    answers: Sequence[Answer],
    batch: Callable[[list[Answer]], Awaitable[Collection[str]]],
    one: Callable[[str, str, list[dict[str, Any]]], Awaitable[bool]],
) -> list[bool]:
    """Answer one wait per instance through ``batch`` (which returns the instances whose
    wait it answered), and the rest -- a second wait of an instance, a wait ``batch`` left
    (for all of its events, or gone) -- with ``one``, in order; whether each was taken."""
    first, rest = _split(answers)
    done = await batch([answers[i] for i in first]) if first else ()
    taken = [False] * len(answers)
    for i in first:
        if answers[i][0] in done:
            taken[i] = True
        else:
            rest.append(i)
    for i in sorted(rest):
        taken[i] = await one(*answers[i])
    return taken


def assemble(
    specs: list[dict[str, Any]], received: list[dict[str, Any]]
) -> list[dict[str, Any]] | None:
    """One received event per listed event (in the listed order), or ``None`` if any is missing.

    An event fits a spec when its ``type`` equals the spec's (any type when
    the spec's is empty), its ``source`` does when the spec names one, and its
    correlation attributes equal the spec's bound values (a ``null`` value
    accepts any).
    """
    used: set[int] = set()
    out: list[dict[str, Any]] = []
    for spec in specs:
        for index, event in enumerate(received):
            if index not in used and _fits(spec, event):
                used.add(index)
                out.append(event)
                break
        else:
            return None
    return out


def _fits(spec: dict[str, Any], event: dict[str, Any]) -> bool:
    if spec["type"] and event.get("type") != spec["type"]:  # "": any type (DSL 1.0)
        return False
    if spec.get("source") is not None and event.get("source") != spec["source"]:
        return False
    for name, value in (spec.get("correlation") or {}).items():
        if name not in event or (value is not None and str(event[name]) != str(value)):
            return False
    return True


class Runners(Protocol):
    """The host's instance runners in memory, as delivery sees them."""

    @property
    def room(self) -> int:
        """How many more instances may run in memory here."""

    def holds(self, instance_id: str) -> bool:
        """Whether a runner for ``instance_id`` is in memory here."""

    def hand_over(self, instance_id: str, wait_key: str, events: list[dict[str, Any]]) -> None:
        """Give journaled events to the instance's runner if it is parked in memory here."""

    def resume_claimed(self, row: InstanceRow, loaded: tuple[list[dict[str, Any]], int]) -> None:
        """Run an instance claimed by a delivery, with its journal and step count."""


class WaitDelivery:
    """Answers event waits with events and wakes (or resumes here) their instances.

    Args:
        pool: The database pool.
        owner: Lease owner id of this process (instances claimed by a batch).
        lease_seconds: Lease length of those claims.
        runners: The host's runners in memory.
        journal: The runners' journal writer: a batch whose waits all woke instances
            claimed here writes their runs' first writes in its own transaction (see
            :class:`~tideflow.runtime.journal.Stage`). ``None``: the delivery commits alone.
        clock: Times such a transaction's commit (the journal's commit figures).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        owner: str,
        lease_seconds: float,
        runners: Runners,
        journal: JournalWriter | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._pool = pool
        self._owner = owner
        self._lease_seconds = lease_seconds
        self._runners = runners
        self._journal = journal
        self._clock = clock

    async def deliver_events(
        self, instance_id: str, wait_key: str, events: list[dict[str, Any]]
    ) -> bool:
        """Answer an open event wait with ``events``: journal them and wake the instance.

        A wait for one of several events ends with the events given. A wait
        for *all* listed events (``exclusive: false``) may get them one at a
        time: they are kept with the wait, and it ends -- its result in the
        listed order -- once every listed event has arrived.

        Returns:
            Whether the wait was open and took the events (``False``: it was
            answered already, or there is no such wait).
        """
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                taken, result = await _answer_wait(conn, instance_id, wait_key, events)
        except asyncpg.PostgresError as exc:
            raise StoreError(f"delivering events to {instance_id} failed: {exc}") from exc
        if result is not None:
            self._runners.hand_over(instance_id, wait_key, result)
        return taken

    async def deliver_many(
        self, answers: Sequence[Answer], conn: asyncpg.Connection | None = None
    ) -> list[bool]:
        """Answer many event waits at once (see the module docs).

        Args:
            answers: The waits and their events.
            conn: A connection the caller holds (one from the pool by default).

        Returns:
            For each answer, whether its wait was open and took the events.

        Raises:
            StoreError: The database failed (nothing of the batch was delivered;
                the one-by-one part may have been).
        """

        async def batch(some: list[Answer]) -> Collection[str]:
            return await self._deliver_rows(some, conn)

        return await _batch_then_rest(answers, batch, self.deliver_events)

    async def _deliver_rows(
        self, answers: Sequence[Answer], held: asyncpg.Connection | None
    ) -> dict[str, DeliveredRow]:
        """Run ``deliver_claim``; start runners for the claimed; hand the rest to parked runners."""
        room = self._runners.room
        claimable = []
        for instance_id, _, _ in answers:
            ok = room > 0 and not self._runners.holds(instance_id)
            claimable.append(ok)
            room -= ok
        try:
            lease = contextlib.nullcontext(held) if held is not None else self._pool.acquire()
            async with lease as conn:
                # A caller's transaction commits when the caller says: nothing may wait for it
                if self._journal is None or conn.is_in_transaction():
                    rows = await gateway.deliver_claim(  # one statement: atomic alone
                        conn, answers, self._owner, self._lease_seconds, claimable
                    )
                else:
                    rows, stage = await self._deliver_staged(conn, answers, claimable)
                    if stage is not None:
                        return {row.id: row for row in rows}
        except asyncpg.PostgresError as exc:
            raise StoreError(f"delivering events to {len(answers)} waits failed: {exc}") from exc
        events = {a[0]: a[2] for a in answers}
        for row in rows:
            if row.instance is None or row.journal is None:
                self._runners.hand_over(row.id, row.answered_key, events[row.id])
            else:
                self._runners.resume_claimed(row.instance, (row.journal, row.steps))
        return {row.id: row for row in rows}

    async def _deliver_staged(
        self, conn: asyncpg.Connection, answers: Sequence[Answer], claimable: list[bool]
    ) -> tuple[list[DeliveredRow], Stage | None]:
        """``deliver_claim`` in a transaction that, when every woken instance was claimed
        here, also carries their resumed runs' first writes (one commit for both).

        The runs start inside the transaction, their writes held by a
        :class:`~tideflow.runtime.journal.Stage`; nothing of them goes outside before
        the commit, and a rollback stops them (their waits are open again: the events
        are delivered again). Returns the rows and the stage (``None``: the delivery
        committed alone and the caller resumes the runs).
        """
        journal = self._journal
        assert journal is not None
        stage: Stage | None = None
        transaction = conn.transaction()
        await transaction.start()
        try:
            rows = await gateway.deliver_claim(
                conn, answers, self._owner, self._lease_seconds, claimable, generic_after=True
            )
            if rows and all(row.instance is not None and row.journal is not None for row in rows):
                stage = journal.stage([row.id for row in rows])
                for row in rows:
                    assert row.instance is not None
                    assert row.journal is not None
                    self._runners.resume_claimed(row.instance, (row.journal, row.steps))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_STAGE_SECONDS):
                        await asyncio.shield(stage.arrived)
                await journal.write_stage(conn, stage)
            started = self._clock.monotonic()
            await transaction.commit()
        except BaseException:
            if stage is not None:
                journal.abandon(stage)
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                if not conn.is_closed():
                    await transaction.rollback()
            raise
        if stage is not None:
            journal.release(stage, self._clock.monotonic() - started)
        return rows, stage


async def _take_wait(
    conn: asyncpg.Connection, instance_id: str, wait_key: str, events: list[dict[str, Any]]
) -> tuple[OpenWait | None, list[dict[str, Any]] | None]:
    """Lock the wait and decide its result: ``(wait or None when there is none, result)``.

    A wait for all of its events keeps what it got so far and has no result
    until the set is complete.
    """
    wait = await gateway.lock_wait(conn, instance_id, wait_key)
    if wait is None:
        return None, None
    result = events
    if wait.all_events:
        received = [*wait.received, *events]
        complete = assemble(wait.events, received)
        if complete is None and len(events) == len(wait.events):
            complete = events  # a whole set at once: the caller matched it
        if complete is None:
            await gateway.add_received(conn, instance_id, wait_key, received)
            return wait, None
        result = complete
    return wait, result


async def _answer_wait(
    conn: asyncpg.Connection, instance_id: str, wait_key: str, events: list[dict[str, Any]]
) -> tuple[bool, list[dict[str, Any]] | None]:
    """Answer one wait in the caller's transaction (its result journaled).

    Returns:
        Whether the wait was open and took the events, and its result when
        it ended (``None`` while a wait for all of its events waits for more).
    """
    wait, result = await _take_wait(conn, instance_id, wait_key, events)
    if wait is None or result is None:
        return wait is not None, None
    if not await gateway.deliver_events(conn, instance_id, wait_key, result):
        return False, None
    await cancel_wake_timer(conn, instance_id, wait.run_no, wait_key)
    await gateway.notify_wake(conn)
    return True, result


class Signals(Protocol):
    """A host whose instances take events as signals (the Temporal engine)."""

    async def signal_events(self, instance_id: str, events: list[dict[str, Any]]) -> None:
        """Hand ``events`` to the instance, in order (it buffers them until a wait takes them;
        an event it was handed before, by source and id, it drops).

        Raises:
            StoreError: The signal was not taken (and the instance has not ended).
        """


class SignalDelivery:
    """Answers the waits of a host that keeps their results itself (see the module docs).

    A wait is answered by dropping its row under its lock -- so a wait takes
    events at most once, and a second event for an answered wait is kept for
    the instance's next wait as on the durable host -- and signalling its
    result to the instance before that drop commits: a crash or a failed
    signal in between leaves the wait open, the batch is handed over again and
    the signal is sent again (the instance drops an event it was signalled
    before, by source and id). A signal to an instance that ended meanwhile is
    logged and the drop commits. The batched drop's commit does not wait for
    the WAL flush (``drop_single_waits``): a drop that PostgreSQL's crash
    loses is such a wait open again, and the flush it saves is one fewer that
    the next event's append (and the instance's records) queue behind.

    Args:
        pool: The database pool.
        signals: The host.
    """

    def __init__(self, pool: asyncpg.Pool, signals: Signals) -> None:
        self._pool = pool
        self._signals = signals

    async def deliver_events(
        self, instance_id: str, wait_key: str, events: list[dict[str, Any]]
    ) -> bool:
        """Answer an open wait with ``events`` (a wait for all of them may get them in parts).

        Returns:
            Whether the wait was open and took the events.
        """
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                wait, result = await _take_wait(conn, instance_id, wait_key, events)
                if wait is not None and result is not None:
                    await gateway.drop_wait(conn, instance_id, wait_key)
                    # Under the wait's lock, before the commit (see the class docs).
                    await self._signals.signal_events(instance_id, result)
        except asyncpg.PostgresError as exc:
            raise StoreError(f"delivering events to {instance_id} failed: {exc}") from exc
        return wait is not None

    async def deliver_many(
        self, answers: Sequence[Answer], conn: asyncpg.Connection | None = None
    ) -> list[bool]:
        """Answer many waits: those that end with one event (one per instance) in one
        transaction, the rest -- waits for all of their events, a second wait of an
        instance, waits gone -- one by one (:meth:`deliver_events`).

        The one transaction drops the waits in one statement (on ``conn``, a connection the
        caller holds, when given) and signals their instances all at once, then commits:
        one failed signal rolls the whole drop back, and every wait of it is open again
        (the batch comes again; an instance signalled twice drops the repeat).

        Raises:
            StoreError: The database failed (nothing of the one transaction was delivered;
                the one-by-one part may have been).
            EngineUnavailable: A signal was not taken (as :meth:`deliver_events`).
        """

        async def batch(some: list[Answer]) -> Collection[str]:
            return await self._signal_dropped(some, conn)

        return await _batch_then_rest(answers, batch, self.deliver_events)

    async def _signal_dropped(
        self, answers: Sequence[Answer], held: asyncpg.Connection | None
    ) -> set[str]:
        """Drop the waits of ``answers`` (one per instance) that end with one event and signal
        their events before the drop commits (see :meth:`deliver_many`); the instances whose
        wait was dropped."""
        events = {(i, key): found for i, key, found in answers}
        try:
            lease = contextlib.nullcontext(held) if held is not None else self._pool.acquire()
            async with lease as conn, conn.transaction():
                dropped = await gateway.drop_single_waits(conn, list(events))
                sent = await asyncio.gather(
                    *(self._signals.signal_events(i, events[i, key]) for i, key in dropped),
                    return_exceptions=True,
                )  # every signal has ended, taken or not, before the commit or the rollback
                for outcome in sent:
                    if isinstance(outcome, BaseException):
                        raise outcome
        except asyncpg.PostgresError as exc:
            raise StoreError(f"delivering events to {len(answers)} waits failed: {exc}") from exc
        return {instance_id for instance_id, _ in dropped}
