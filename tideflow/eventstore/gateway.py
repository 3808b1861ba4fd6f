"""The event store on PostgreSQL: :class:`PostgresEventStore`.

Gap-free offsets in commit order
--------------------------------
A reader that asked for "offset > N" and got events up to M must never
later find an event with an offset <= M that it did not see. That happens
with sequences: transaction A takes offset 5, B takes 6, B commits, a reader
reads 6, then A commits 5 -- skipped for ever.

Here every appending transaction first locks its bus's row in
``tideflow_buses`` (``SELECT ... FOR UPDATE``), reads ``next_offset``, writes
its events at ``next_offset ...``, moves ``next_offset`` past them and
commits, releasing the lock. So the appends of one bus are serialized from
offset assignment to commit, across every process sharing the database:

* the next holder of the lock reads the ``next_offset`` committed by the
  previous one (READ COMMITTED re-reads the locked row), so offsets are
  contiguous; a rolled-back append also rolls back its ``next_offset``, so
  nothing is left as a hole;
* PostgreSQL makes a transaction visible before it releases its locks, so
  when offsets ``k..m`` become visible every offset below ``k`` already is:
  commit order equals offset order.

The cost -- one committing transaction per bus at a time -- is paid back by
group commit: concurrent ``append`` calls of this process share one
transaction (:mod:`tideflow.eventstore.group_commit`), and the events go in
with one COPY. Different buses do not wait for each other (except in one
batch, which locks its buses in name order so two processes cannot deadlock).

One group commit serves every bus: a batch holding appends to many buses is
still one transaction of four statements -- lock the buses (one statement, in
name order), find the duplicates (one statement over the keys table), one
COPY (routed to each bus's segment by PostgreSQL when the batch spans buses),
write the keys and advance the buses (one statement, one notification per
bus).

Group commit is pipelined (``in_flight``, 2 by default): the next batch's
transaction starts while the previous one commits and queues on the bus row
lock, so the lock passes from one to the next inside the server, without a
round trip through this process. Nothing above changes: the waiting
transaction reads ``next_offset`` only once the lock is granted, i.e. after
the previous commit is visible. Its dedup probe is in the locking statement,
whose snapshot was taken before the lock was granted: a bus whose row moved
after that snapshot (an append always moves it) is probed again in a later
statement, whose snapshot holds every event committed before it. Two batches of this
process lock their buses in the same name order, like two processes. The
order in which concurrent callers get their offsets is not defined (it never
was); one caller's events keep their order, and a caller awaiting each append
before the next keeps its order across appends.

The readers that follow a bus (the subscriptions' :class:`~tideflow.triggers._workers.BusReader`)
read through :meth:`PostgresEventStore.follow`: the events this process committed come from
memory (:mod:`tideflow.eventstore.tail`), so a commit over many buses does not cost one read
of the database per bus.

The log
-------
``tideflow_events`` is partitioned by LIST (bus) into one table per bus,
each partitioned by RANGE (offset) into *segments*
(:mod:`tideflow.eventstore.segments`). Dropping a bus drops its table;
retention drops whole segments. Dedup looks the hash of ``(source, id)`` up
under the bus lock in ``tideflow_event_keys``, one table for every bus (a
unique index on the partitioned log would have to include the offset, so it
could not enforce this; and a probe of the log is planned over every segment
of the batch's buses), then reads the events of the keys found from the live
log and compares source and id. Dedup therefore covers the events retention
has kept -- in the live segments only; the keys of dropped segments are
deleted after the drop.

The archive tier
----------------
A bus with ``archive: {after, to}`` has its oldest full segments moved to
Parquet files (:mod:`tideflow.eventstore.archive`) by the supervised task
``archive`` (:meth:`PostgresEventStore.archive_once`): read the segment's
rows, write the file, read it back and check its row count and checksum,
then -- in one transaction under the bus lock -- insert its manifest row and
detach and drop its partition. A crash before that commit leaves the
partition (and perhaps a file nobody points to, written again next time);
after it, the verified file. So a segment is always exactly one of the two.
Reads (:meth:`PostgresEventStore.read`) go to the archive only when the live
segments do not start right after ``after``; they read the archived segments
in order, then continue into the live ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, LiteralString

import asyncpg

from tideflow import notify, tracing
from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.db import load_queries
from tideflow.errors import (
    AlreadyExists,
    BusNotFound,
    ConflictError,
    EventNotFound,
    StoreError,
)
from tideflow.eventstore import segments
from tideflow.eventstore.archive import (
    ArchiveFiles,
    manifest_location,
    segment_location,
)
from tideflow.eventstore.archive_format import LogRow
from tideflow.eventstore.codec import (
    NOTHING,
    EncodedAppend,
    Placed,
    decode_event,
    encode_event,
    number_batch,
    stored_events,
)
from tideflow.eventstore.group_commit import GroupCommit
from tideflow.eventstore.store import (
    DEFAULT_BUS,
    Appended,
    ArchivePolicy,
    Bus,
    BusInfo,
    Retention,
    StoredEvent,
    TierFigures,
    check_bus_name,
)
from tideflow.eventstore.tail import Tails
from tideflow.isotime import format_timestamp
from tideflow.supervise import Supervisor

log = logging.getLogger("tideflow.eventstore")

_Q = load_queries("tideflow.eventstore")
_COLUMNS = (
    "bus_id", "event_offset", "ce_source", "ce_id", "ce_key", "stored_at", "event", "trace_parent",
)  # fmt: skip
_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
_INSERT_MAX = 16
"""Up to this many events a flush writes in its ``advance_buses`` statement, more with
COPY: COPY waits for the server's go-ahead before it sends the rows, and the buses' advance is
a statement after it; an INSERT of a few rows costs less than those two round trips."""

NOTIFY_CHANNEL = "tideflow_events"
"""Every appending transaction runs ``pg_notify('tideflow_events', '<bus> <last offset>')``;
PostgreSQL delivers it only at commit, so a woken reader always finds the events committed."""


def _retention(row: Mapping[str, Any]) -> Retention | None:
    if row["max_age"] is None and row["max_events"] is None:
        return None
    return Retention(max_age=row["max_age"], max_events=row["max_events"])


def _archive(row: Mapping[str, Any]) -> ArchivePolicy | None:
    if row["archive_to"] is None:
        return None
    return ArchivePolicy(after=row["archive_after"], to=row["archive_to"])


def _bus_from_row(row: Mapping[str, Any]) -> Bus:
    return Bus(
        name=row["name"],
        retention=_retention(row),
        created_at=row["created_at"],
        segment_events=row["segment_size"],
        archive=_archive(row),
    )


class _BusAppend:
    """One bus's part of a group-commit batch: where its log stood under the lock, its rows."""

    __slots__ = ("bus", "bus_id", "first", "next_offset", "ready_until", "records", "size")

    def __init__(self, head: Mapping[str, Any], records: list[tuple[Any, ...]]) -> None:
        self.bus: str = head["name"]
        self.bus_id: int = head["id"]
        self.size: int = head["segment_size"]
        self.first: int = head["next_offset"]
        self.next_offset = self.first + len(records)
        self.ready_until: int = head["ready_until"] or 1
        self.records = records

    def segment_ready(self) -> None:
        """The segments now reach past ``next_offset`` (``ensure_segments`` ran)."""
        last_segment = segments.segment_of(self.next_offset - 1, self.size)
        self.ready_until = segments.segment_start(last_segment + 1, self.size)

    def ahead(self) -> tuple[int, int, int, int]:
        """``(bus id, next offset, offsets ready until, segment size)``: is a segment due?"""
        return self.bus_id, self.next_offset, self.ready_until, self.size


ARCHIVED_SEGMENTS_PER_READ = 64
"""Archived segments one read looks at (a read returns at most ``limit`` events anyway)."""


class PostgresEventStore:
    """The :class:`~tideflow.eventstore.store.EventStore` on PostgreSQL.

    Args:
        pool: An asyncpg pool on a migrated database; the store holds one of its
            connections for LISTEN.
        segment_size: Events per segment for buses created from now on.
        clock: Time of ``stored_at``, retention and ``wait_for`` timeouts.
        max_batch: Events per group-commit transaction.
        in_flight: Group-commit transactions in flight at once: with 2, the next
            batch waits on the bus lock while the previous one commits.
        poll_interval: Seconds between polls of waiting readers while LISTEN is down.
        retention_interval: Seconds between :meth:`apply_retention` runs while
            started; ``None`` leaves retention to the caller (tests).
        before_commit: Awaited inside every append transaction just before it
            commits (tests delay commits with it to provoke races).
        archive_files: The archive tier's files (a default :class:`ArchiveFiles` if not given).
        archive_interval: Seconds between :meth:`archive_once` runs while started;
            ``None`` leaves archiving to the caller (tests).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        segment_size: int = 1_000_000,
        clock: Clock = SYSTEM_CLOCK,
        max_batch: int = 10_000,
        in_flight: int = 2,
        poll_interval: float = 1.0,
        retention_interval: float | None = 60.0,
        before_commit: Callable[[], Awaitable[None]] | None = None,
        archive_files: ArchiveFiles | None = None,
        archive_interval: float | None = 60.0,
    ) -> None:
        self._pool = pool
        self._segment_size = segment_size
        self._clock = clock
        self._committer: GroupCommit[EncodedAppend, Placed] = GroupCommit(
            self._flush, max_batch=max_batch, in_flight=in_flight
        )
        self.supervisor = Supervisor("eventstore", clock=clock)
        """Owns the group commit, listener and retention tasks (``/healthz`` reports them)."""
        self.listener = notify.Listener(pool, "events", clock=clock, health=self.supervisor)
        """The LISTEN connection (reconnecting) that wakes waiting readers."""
        self.waiters = notify.Waiters(
            self.listener, NOTIFY_CHANNEL, clock=clock, poll_interval=poll_interval
        )
        """Readers waiting for their bus: each append's NOTIFY wakes its bus's."""
        self.heads = notify.Heads(self.listener, NOTIFY_CHANNEL)
        """The last offset of each bus its NOTIFY announced: a reader that reached it has
        nothing to read until the next one."""
        self.tails = Tails()
        """The newest events this process committed to each bus (:meth:`follow` reads them)."""
        self._committing: dict[str, list[tuple[int, int, asyncio.Event]]] = {}
        """Per bus, the offsets of the flushes whose COMMIT was sent and not answered yet
        (first, last, set once answered)."""
        self.listener.listen(NOTIFY_CHANNEL, self._on_notify)
        self.listener.on_reconnect(self.tails.clear)
        self.listener.on_lost(self.tails.clear)
        self._started = False
        self._bus_ids: dict[str, int] = {}
        self._has_archive: dict[int, bool] = {}
        self._before_commit = before_commit
        self._retention_interval = retention_interval
        self._archive_interval = archive_interval
        self.archive_files = archive_files or ArchiveFiles()
        """The archive tier's files and their read cache."""

    def _on_notify(self, payload: str) -> None:
        """A bus created or deleted (``<bus> 0``) anywhere: forget its run of events."""
        bus, _, offset = payload.partition(" ")
        if offset == "0":
            self.tails.forget(bus)

    async def __aenter__(self) -> PostgresEventStore:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Create ``default`` if missing; start group commit, the listener and retention."""
        with contextlib.suppress(AlreadyExists):
            await self.create_bus(DEFAULT_BUS)
        self._committer.open()
        self._started = True
        self.supervisor.spawn("commit", self._committer.run)
        self.supervisor.spawn("listen", self.listener.run)
        if self._retention_interval is not None:
            interval = self._retention_interval
            self.supervisor.spawn("retention", lambda: self._retention_loop(interval))
        if self._archive_interval is not None:
            every = self._archive_interval
            self.supervisor.spawn("archive", lambda: self._archive_loop(every))

    async def _retention_loop(self, interval: float) -> None:
        while True:
            await self._clock.sleep(interval)
            try:
                await self.apply_retention()
            except StoreError as exc:  # try again next time
                log.warning("retention failed: %s", exc)

    async def _archive_loop(self, interval: float) -> None:
        while True:
            await self._clock.sleep(interval)
            try:
                await self.archive_once()
            except StoreError as exc:  # try again next time
                log.warning("archiving failed: %s", exc)

    async def stop(self) -> None:
        """Flush queued appends, then stop the listener and retention."""
        if not self._started:
            return
        self._started = False
        self._committer.close()
        await self.supervisor.wait("commit")  # returns once the queue is drained
        await self.supervisor.stop()

    # -- buses ------------------------------------------------------------

    async def create_bus(
        self,
        name: str,
        retention: Retention | None = None,
        *,
        segment_events: int | None = None,
        archive: ArchivePolicy | None = None,
    ) -> Bus:
        """See :meth:`EventStore.create_bus`."""
        check_bus_name(name)
        policy = retention or Retention()
        size = segment_events or self._segment_size
        after, to = (archive.after, archive.to) if archive else (None, None)
        async with self._connection() as conn, conn.transaction():
            row = await conn.fetchrow(
                _Q["create_bus"], name, policy.max_age, policy.max_events, size, after, to
            )
            if row is None:
                raise AlreadyExists(f"bus {name!r} already exists")
            await conn.execute(_Q["ensure_segments"], row["id"], size + 1)
            await conn.execute(_Q["bus_changed"], name)  # readers waiting for it, anywhere
        return _bus_from_row(row)

    async def get_bus(self, name: str) -> BusInfo:
        """See :meth:`EventStore.get_bus`."""
        since = self._clock.now() - timedelta(minutes=1)
        async with self._connection() as conn:
            row = await conn.fetchrow(_Q["bus_info"], name, since)
        if row is None:
            raise BusNotFound(f"no bus named {name!r}")
        recent = max(0, row["last_offset"] + 1 - row["first_recent"])
        live_first, archived_first = row["first_offset"], row["archived_first"]
        return BusInfo(
            name=row["name"],
            retention=_retention(row),
            created_at=row["created_at"],
            first_offset=live_first if archived_first is None else archived_first,
            last_offset=row["last_offset"],
            segment_count=row["segment_count"],
            size_bytes=row["size_bytes"],
            events_per_second=recent / 60.0,
            segment_events=row["segment_size"],
            archive=_archive(row),
            live=TierFigures(
                events=max(0, row["last_offset"] + 1 - live_first),
                size_bytes=row["size_bytes"],
                segments=row["segment_count"],
            ),
            archived=TierFigures(
                events=row["archived_events"],
                size_bytes=row["archived_bytes"],
                segments=row["archived_segments"],
            ),
        )

    async def list_buses(self) -> list[Bus]:
        """See :meth:`EventStore.list_buses`."""
        async with self._connection() as conn:
            return [_bus_from_row(row) for row in await conn.fetch(_Q["list_buses"])]

    async def delete_bus(self, name: str) -> None:
        """See :meth:`EventStore.delete_bus`."""
        async with self._connection() as conn, conn.transaction():
            bus_id = await conn.fetchval(_Q["lock_bus_for_delete"], name)
            if bus_id is None:
                raise BusNotFound(f"no bus named {name!r}")
            if name == DEFAULT_BUS:
                raise ConflictError("the default bus cannot be deleted")
            files = [r[0] for r in await conn.fetch(_Q["archived_locations"], bus_id)]
            await conn.execute(_Q["drop_bus_log"], bus_id)
            await conn.execute(_Q["forget_bus_keys"], bus_id)
            await conn.execute(_Q["delete_bus"], bus_id)
            await conn.execute(_Q["bus_changed"], name)
        self._bus_ids.pop(name, None)
        self.tails.forget(name)
        folders = {location.rsplit("/", 1)[0] for location in files}
        listed = [f"{folder}/manifest.json" for folder in folders]
        for location in [*files, *listed]:  # after the commit: a crash leaves files nobody reads
            try:
                await self.archive_files.delete(location)
            except StoreError as exc:
                log.warning("bus %r deleted, but not its archive file: %s", name, exc)

    # -- appending ----------------------------------------------------------

    async def append(self, bus: str, events: Sequence[Mapping[str, Any]]) -> list[Appended]:
        """See :meth:`EventStore.append`."""
        rows = [encode_event(event, index) for index, event in enumerate(events)]
        if not rows:
            await self._last_offset(bus)  # still: BusNotFound for an unknown bus
            return []
        if tracing.recording():  # an append in a sampled trace (else nothing is made)
            with tracing.append_span(bus, len(rows)) as span:
                trace = None if span is None else tracing.traceparent()
                offsets, duplicates = await self._committer.submit(
                    EncodedAppend(bus, rows, trace), len(rows)
                )
                tracing.appended(span, offsets)
        else:
            offsets, duplicates = await self._committer.submit(EncodedAppend(bus, rows), len(rows))
        # Built here, not in the committer: the next transaction need not wait for it.
        if duplicates is None:
            return [Appended(bus=bus, offset=offset, duplicate=False) for offset in offsets]
        return [
            Appended(bus=bus, offset=offset, duplicate=duplicate)
            for offset, duplicate in zip(offsets, duplicates, strict=True)
        ]

    async def _flush(self, batch: Sequence[EncodedAppend]) -> list[Placed | BaseException]:
        """Write a batch over any number of buses in one transaction (see the module docs).

        One statement each, whatever the number of buses: lock the buses (in name order),
        find duplicates, COPY the new events, advance the buses (and notify each).
        """
        by_bus: dict[str, list[int]] = {}
        for index, item in enumerate(batch):
            by_bus.setdefault(item.bus, []).append(index)
        results: list[Placed | BaseException] = [NOTHING] * len(batch)
        committing = asyncio.Event()
        appends: list[_BusAppend] = []
        try:
            async with self._connection() as conn:
                async with conn.transaction():
                    appends = await self._flush_in(conn, batch, by_bus, results)
                    self._committing_now(appends, committing)  # the COMMIT is sent next
                for append in appends:  # committed: the readers that follow them read them
                    self.tails.committed(append.bus, append.bus_id, append.records)
        finally:
            self._committed_now(appends, committing)
        for bus_id, next_offset, ready_until, size in (append.ahead() for append in appends):
            if segments.wants_segment_ahead(next_offset, ready_until, size):
                await self._prepare_segment(bus_id, next_offset, size)
        return results

    def _committing_now(self, appends: Sequence[_BusAppend], done: asyncio.Event) -> None:
        """Note the offsets a flush is about to commit: a follower woken by the commit's
        notification before its reply arrived here waits for it (:meth:`follow`)."""
        for append in appends:
            if append.records:
                span = (append.first, append.next_offset - 1, done)
                self._committing.setdefault(append.bus, []).append(span)

    def _committed_now(self, appends: Sequence[_BusAppend], done: asyncio.Event) -> None:
        """The flush's commit returned (or failed): :meth:`_committing_now` is over."""
        for append in appends:
            spans = self._committing.get(append.bus)
            if spans:
                spans[:] = [span for span in spans if span[2] is not done]
                if not spans:
                    del self._committing[append.bus]
        done.set()

    async def _flush_in(
        self,
        conn: Any,
        batch: Sequence[EncodedAppend],
        by_bus: Mapping[str, list[int]],
        results: list[Placed | BaseException],
    ) -> list[_BusAppend]:
        """:meth:`_flush`'s statements, in its transaction: sets ``results``, returns the
        buses' appends."""
        now = self._clock.now()
        names = sorted(by_bus)
        probes: tuple[list[str], list[int]] = ([], [])
        for bus in names:
            for i in by_bus[bus]:
                for row in batch[i].rows:
                    probes[0].append(bus)
                    probes[1].append(row[2])
        heads = await conn.fetch(_Q["lock_buses"], names, *probes)
        for bus in by_bus.keys() - {head["name"] for head in heads}:
            for i in by_bus[bus]:
                results[i] = BusNotFound(f"no bus named {bus!r}")
        groups = [(head, [batch[i] for i in by_bus[head["name"]]]) for head in heads]
        known = await self._find_duplicates(conn, groups)
        appends: list[_BusAppend] = []
        for head, items in groups:
            records, placed = number_batch(
                items, known.get(head["id"], {}), head["id"], head["next_offset"], now
            )
            for i, item_placed in zip(by_bus[head["name"]], placed, strict=True):
                results[i] = item_placed
            appends.append(_BusAppend(head, records))
        await self._write(conn, appends)
        if self._before_commit is not None:
            await self._before_commit()
        return appends

    async def _find_duplicates(
        self, conn: Any, groups: Sequence[tuple[Mapping[str, Any], Sequence[EncodedAppend]]]
    ) -> dict[int, dict[tuple[str, str], int]]:
        """Per bus id, the offsets of the events of ``groups`` its live log holds already.

        The keys table was probed with the lock (``lock_buses``: one statement, its plan
        does not grow with the buses), in the snapshot taken before the lock was granted; a
        bus that another append moved meanwhile is probed again now (its keys committed). For
        the keys found (duplicates, rare), the events at those offsets are read from the live
        log and compared by source and id: a hash collision, or a key whose event retention
        dropped or the archive tier moved, is not a duplicate.
        """
        candidates: dict[int, list[int]] = {}
        probes: tuple[list[int], list[int]] = ([], [])
        for head, items in groups:
            if head["seen_offset"] == head["next_offset"]:
                if head["duplicates"]:
                    candidates[head["id"]] = list(head["duplicates"])
                continue
            for item in items:  # moved by a commit after the snapshot: probe again
                for row in item.rows:
                    probes[0].append(head["id"])
                    probes[1].append(row[2])
        if probes[0]:
            for bus_id, offset in await conn.fetch(_Q["find_duplicates"], *probes):
                candidates.setdefault(bus_id, []).append(offset)
        known: dict[int, dict[tuple[str, str], int]] = {}
        for bus_id, offsets in candidates.items():
            for source, event_id, offset in await conn.fetch(_Q["live_events"], bus_id, offsets):
                known.setdefault(bus_id, {})[(source, event_id)] = offset
        return known

    async def _write(self, conn: Any, appends: Sequence[_BusAppend]) -> None:
        """Write the new events of every bus at once and move the buses past them (one
        statement for a few events, else COPY and a statement)."""
        filled = [append for append in appends if append.records]
        if not filled:
            return
        for append in filled:
            if append.next_offset > append.ready_until:  # one batch outran the segment ahead
                await conn.execute(_Q["ensure_segments"], append.bus_id, append.next_offset - 1)
                append.segment_ready()
        if len(filled) == 1:
            only = filled[0]
            table = _copy_target(only.bus_id, only.first, only.next_offset - 1, only.size)
        else:
            table = "tideflow_events"  # routed to each bus's segment by PostgreSQL
        records = [record for append in filled for record in append.records]
        advance = (
            [append.bus_id for append in filled],
            [append.next_offset for append in filled],
            [record[0] for record in records],
            [record[4] for record in records],
            [record[1] for record in records],
        )
        if len(records) <= _INSERT_MAX:  # one statement; COPY is two round trips, then this
            columns = [list(column) for column in zip(*records, strict=True)]
        else:
            await conn.copy_records_to_table(table, records=records, columns=_COLUMNS)
            columns = [[] for _ in _COLUMNS]
        await conn.execute(_Q["advance_buses"], *advance, *columns)

    async def _prepare_segment(self, bus_id: int, next_offset: int, size: int) -> None:
        """Create the segment after the one being filled, in its own short transaction."""
        try:
            async with self._connection() as conn, conn.transaction():
                if await conn.fetchval(_Q["lock_bus_by_id"], bus_id) is None:
                    return  # deleted meanwhile
                upto = segments.upto_for_ahead(next_offset, size)
                await conn.execute(_Q["ensure_segments"], bus_id, upto)
        except StoreError as exc:  # the next append creates it in its own transaction
            log.warning("could not create a segment ahead for bus %d: %s", bus_id, exc)

    # -- reading ------------------------------------------------------------

    async def read(self, bus: str, after: int = 0, limit: int = 100) -> list[StoredEvent]:
        """See :meth:`EventStore.read`: live segments, after the archived ones they follow."""
        rows = await self._by_bus_id(bus, _Q["read_events"], after, limit)
        if rows and rows[0][0] == after + 1:  # the common case: no archive in between
            return stored_events(bus, rows)
        return stored_events(bus, await self._read_archived(bus, after, limit, rows))

    async def follow(self, bus: str, after: int = 0, limit: int = 100) -> list[StoredEvent]:
        """:meth:`read` for a reader that follows the bus's notifications: events this process
        committed and still keeps (:mod:`tideflow.eventstore.tail`) come from memory.

        Such a read returns what :meth:`read` returned right after the commit that wrote
        them (a prefix of what it returns now when other processes appended since). A
        deletion of the bus, or retention, committed by another process since is seen at its
        notification: until then a read here may still return the events it removed, as a
        read that started a moment earlier would (:meth:`read` does not, for the HTTP API).
        """
        rows = self.tails.read(bus, after, limit)
        if rows is None:
            # The notification of a commit of ours can arrive before the commit's reply:
            # its events are in memory once the reply is (or never were: a failed commit).
            for first, last, done in self._committing.get(bus, ()):
                if first <= after + 1 <= last:
                    await done.wait()
                    rows = self.tails.read(bus, after, limit)
                    break
        if rows is None:
            return await self.read(bus, after, limit)
        return stored_events(bus, rows)

    async def _read_archived(self, bus: str, after: int, limit: int, live: list[Any]) -> list[Any]:
        """The events after ``after`` from the archived segments, then from ``live``.

        ``live`` was read first: a segment archived since is both in ``live`` and in
        the archive, so only live rows past the last archived one are added.
        """
        bus_id = self._bus_ids.get(bus)
        if bus_id is None:
            return live
        async with self._connection() as conn:
            has_archive = self._has_archive.get(bus_id)
            if has_archive is None:  # fixed when the bus is created: cached for good
                has_archive = bool(await conn.fetchval(_Q["bus_has_archive"], bus_id))
                self._has_archive[bus_id] = has_archive
            if not has_archive:
                return live
            archived = await conn.fetch(
                _Q["archived_segments"], bus_id, after, ARCHIVED_SEGMENTS_PER_READ
            )
        if not archived:
            return live
        rows: list[LogRow] = []
        for segment in archived:
            try:
                await self._read_segment(segment, after, limit, rows)
            except FileNotFoundError:
                if await self._still_archived(bus_id, segment["segment_no"]):
                    raise StoreError(
                        f"event store: the archive file {segment['location']} of bus "
                        f"{bus!r} is missing"
                    ) from None
                continue  # retention dropped it meanwhile
            if len(rows) >= limit:
                return rows
        if len(archived) == ARCHIVED_SEGMENTS_PER_READ:
            return rows  # more archived segments follow: the next read continues there
        last = rows[-1][0] if rows else after
        rows.extend(row for row in live[: limit - len(rows)] if row[0] > last)
        return rows[:limit]

    async def _read_segment(
        self, segment: Mapping[str, Any], after: int, limit: int, rows: list[LogRow]
    ) -> None:
        """Add an archived segment's events after ``after`` to ``rows``, up to ``limit`` in all,
        row group by row group."""
        position = max(after, segment["start_offset"] - 1)
        while len(rows) < limit and position + 1 < segment["end_offset"]:
            chunk = await self.archive_files.read(
                segment["location"], segment["start_offset"], position
            )
            if not len(chunk):
                return
            start = chunk.index_after(position)
            end = min(len(chunk), start + limit - len(rows))
            rows.extend(
                zip(
                    chunk.offsets[start:end],
                    chunk.texts[start:end],
                    chunk.stored_at[start:end],
                    strict=True,
                )
            )
            position = chunk.offsets[-1]

    async def _still_archived(self, bus_id: int, segment_no: int) -> bool:
        async with self._connection() as conn:
            return await conn.fetchval(_Q["archived_location"], bus_id, segment_no) is not None

    async def get(self, bus: str, offset: int) -> StoredEvent:
        """See :meth:`EventStore.get` (an archived event is read from its file)."""
        rows = await self._by_bus_id(bus, _Q["get_event"], offset)
        if not rows:
            found = await self._read_archived(bus, offset - 1, 1, [])
            rows = [row for row in found if row[0] == offset]
        if not rows:
            raise EventNotFound(f"bus {bus!r} has no event at offset {offset}")
        row = rows[0]
        return StoredEvent(bus=bus, offset=row[0], event=decode_event(row[1]), stored_at=row[2])

    async def _by_bus_id(self, bus: str, query: LiteralString, *args: object) -> list[Any]:
        """Run a read whose first parameter is the bus id.

        With the id as a parameter, PostgreSQL prunes the other buses' segments
        before executing (by name, a read cost 3x more with 80 buses). Ids are
        cached; ids are never reused, so a stale id (the bus was deleted, perhaps
        recreated) only finds nothing, and then the id is looked up again.

        Raises:
            BusNotFound: No such bus.
        """
        async with self._connection() as conn:
            bus_id = self._bus_ids.get(bus)
            if bus_id is not None:
                rows: list[Any] = await conn.fetch(query, bus_id, *args)
                if rows:
                    return rows
            fresh = await conn.fetchval(_Q["bus_id"], bus)
            if fresh is None:
                self._bus_ids.pop(bus, None)
                raise BusNotFound(f"no bus named {bus!r}")
            self._bus_ids[bus] = fresh
            if fresh == bus_id:
                return []
            return list(await conn.fetch(query, fresh, *args))

    async def wait_for(self, bus: str, after: int, timeout: float) -> bool:  # noqa: ASYNC109
        """See :meth:`EventStore.wait_for`: LISTEN/NOTIFY, polling while the listener is down."""

        async def arrived() -> bool:
            return await self._last_offset(bus) > after

        return await self.waiters.wait(bus, arrived, timeout)

    async def _last_offset(self, bus: str) -> int:
        async with self._connection() as conn:
            last = await conn.fetchval(_Q["last_offset"], bus)
        if last is None:
            raise BusNotFound(f"no bus named {bus!r}")
        return int(last)

    # -- retention ----------------------------------------------------------

    async def apply_retention(self) -> int:
        """See :meth:`EventStore.apply_retention`: archived segments (the oldest) first."""
        async with self._connection() as conn:
            rows = [
                *await conn.fetch(_Q["archived_retention_candidates"]),
                *await conn.fetch(_Q["retention_candidates"]),
            ]
        candidates = sorted(
            (
                segments.SegmentState(
                    bus_id=row["bus_id"],
                    bus=row["name"],
                    segment_no=row["segment_no"],
                    end_offset=row["end_offset"],
                    next_offset=row["next_offset"],
                    newest_at=row["newest_at"],
                    max_age=row["max_age"],
                    max_events=row["max_events"],
                    location=row.get("location"),
                )
                for row in rows
            ),
            key=lambda state: (state.bus_id, state.segment_no),
        )
        drop = segments.segments_to_drop(candidates, self._clock.now())
        for segment in drop:
            async with self._connection() as conn, conn.transaction():
                await conn.fetchval(_Q["lock_bus_by_id"], segment.bus_id)
                if segment.location is None:
                    await conn.execute(_Q["drop_segment"], segment.bus_id, segment.segment_no)
                    location = None
                else:
                    location = await conn.fetchval(
                        _Q["drop_archived_segment"], segment.bus_id, segment.segment_no
                    )
            self.tails.forget(segment.bus)
            if location is not None:  # after the commit: nobody reads it any more
                await self.archive_files.delete(location)
            log.info("retention dropped segment %d of bus %r", segment.segment_no, segment.bus)
        await self._forget_keys({segment.bus_id for segment in drop if segment.location is None})
        return len(drop)

    async def _forget_keys(self, bus_ids: set[int]) -> None:
        """Delete the dedup keys of events no longer live (segments dropped or archived).

        After the drop's commit, in their own transaction: until then such keys are only
        candidates that :meth:`_find_duplicates` finds no live event for; a failure here
        leaves them to the bus's next drop.
        """
        for bus_id in sorted(bus_ids):
            try:
                async with self._connection() as conn:
                    await conn.execute(_Q["forget_keys"], bus_id)
            except StoreError as exc:
                log.warning("could not delete the dedup keys dropped from bus %d: %s", bus_id, exc)

    # -- the archive tier ---------------------------------------------------

    async def archive_once(self) -> int:
        """Archive every due segment (see the module docs); returns how many were archived.

        Per bus, oldest first; a failure stops that bus's run (its later segments
        wait for the next pass, so the archive stays the oldest run of segments).

        Raises:
            StoreError: The database failed while listing the candidates.
        """
        async with self._connection() as conn:
            rows = await conn.fetch(_Q["archive_candidates"])
        candidates = [
            segments.ArchiveCandidate(
                bus_id=row["bus_id"],
                bus=row["name"],
                segment_no=row["segment_no"],
                start_offset=row["start_offset"],
                end_offset=row["end_offset"],
                next_offset=row["next_offset"],
                newest_at=row["newest_at"],
                after=row["archive_after"],
                to=row["archive_to"],
            )
            for row in rows
        ]
        archived = 0
        failed: set[int] = set()
        touched: dict[int, segments.ArchiveCandidate] = {}
        for segment in segments.segments_to_archive(candidates, self._clock.now()):
            if segment.bus_id in failed:
                continue
            try:
                if await self._archive_segment(segment):
                    archived += 1
                    touched[segment.bus_id] = segment
            except StoreError as exc:
                failed.add(segment.bus_id)
                log.warning(
                    "could not archive segment %d of bus %r: %s",
                    segment.segment_no,
                    segment.bus,
                    exc,
                )
        for segment in touched.values():
            await self._write_manifest(segment)
        await self._forget_keys(set(touched))
        return archived

    async def _archive_segment(self, segment: segments.ArchiveCandidate) -> bool:
        """Write, verify, then record the file and drop the partition in one transaction."""
        bus_id, number = segment.bus_id, segment.segment_no
        async with self._connection() as conn:
            rows = await conn.fetch(
                _Q["segment_rows"], bus_id, segment.start_offset, segment.end_offset
            )
        if len(rows) != segment.end_offset - segment.start_offset:
            return False  # archived or dropped meanwhile (by another process)
        location = segment_location(segment.to, segment.bus, bus_id, number)
        metadata = {
            "tideflow.bus": segment.bus,
            "tideflow.segment": str(number),
            "tideflow.start_offset": str(segment.start_offset),
            "tideflow.end_offset": str(segment.end_offset),
        }
        log_rows: list[LogRow] = [(row[0], row[1], row[2]) for row in rows]
        written = await self.archive_files.write(location, log_rows, metadata)
        newest_at = rows[-1][2]
        async with self._connection() as conn, conn.transaction():
            await conn.fetchval(_Q["lock_bus_by_id"], bus_id)
            done = await conn.fetchval(
                _Q["archive_segment"],
                bus_id,
                number,
                written.count,
                written.size,
                written.checksum,
                written.location,
                newest_at,
            )
        if not done and not await self._still_archived(bus_id, number):
            await self.archive_files.delete(location)  # retention dropped it meanwhile
        if done:
            log.info("archived segment %d of bus %r to %s", number, segment.bus, location)
        return bool(done)

    async def _write_manifest(self, segment: segments.ArchiveCandidate) -> None:
        """Rewrite the bus's ``manifest.json`` (best effort: the database's manifest rules)."""
        try:
            async with self._connection() as conn:
                rows = await conn.fetch(_Q["archive_manifest"], segment.bus_id)
            manifest = {
                "bus": segment.bus,
                "segments": [
                    {
                        "segment": row["segment_no"],
                        "startOffset": row["start_offset"],
                        "endOffset": row["end_offset"] - 1,
                        "events": row["event_count"],
                        "sizeBytes": row["size_bytes"],
                        "sha256": row["checksum"],
                        "file": row["location"].rsplit("/", 1)[-1],
                        "newestAt": format_timestamp(row["newest_at"]),
                        "archivedAt": format_timestamp(row["archived_at"]),
                    }
                    for row in rows
                ],
            }
            location = manifest_location(segment.to, segment.bus, segment.bus_id)
            await self.archive_files.write_manifest(location, manifest)
        except StoreError as exc:
            log.warning("could not write the archive manifest of bus %r: %s", segment.bus, exc)

    # -- plumbing -----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _connection(self) -> Any:
        """A pooled connection; database failures become :class:`StoreError`."""
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except _DB_ERRORS as exc:
            raise StoreError(f"event store: {type(exc).__name__}: {exc}") from exc


def _copy_target(bus_id: int, first: int, last: int, size: int) -> str:
    """The segment table when the offsets fit in one segment (COPY skips routing), else the root."""
    segment = segments.segment_of(first, size)
    if segments.segment_of(last, size) == segment:
        return segments.segment_table(bus_id, segment)
    return "tideflow_events"
