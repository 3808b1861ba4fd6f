"""The group-committed journal writer of the durable runtime.

Every instance a process runs sends its writes here: effect results (journal
entries), timeline rows, progress (current state and data) and status
transitions (finish, park, stop, continueAs). One task commits everything
queued in **one transaction** -- a handful of statements, each covering all
instances of the batch (``unnest`` arrays) -- and only then acknowledges the
writers that wait. While a batch commits, the next one fills, so under load
one fsync serves many instances; a lone instance waits for just its own.

Every batch first renews the leases of the instances it touches and writes
only for those this process still holds (a *fence*: a process that lost an
instance's lease can no longer write its journal), and reads back pending
``cancel``/``suspend`` requests so runners can apply them at the step
boundary. Each acknowledgement is a :class:`Control`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.errors import StoreError
from tideflow.notify import CONNECTION_ERRORS, usable
from tideflow.runtime import _journal_batch, _timeline, gateway
from tideflow.runtime.gateway import InstanceRow, dumps
from tideflow.runtime.status import InstanceStatus
from tideflow.runtime.wakeups import WakeUp, insert_wake_timers
from tideflow.supervise import Backoff

__all__ = [
    "Continue",
    "Control",
    "Finish",
    "JournalWriter",
    "NewInstance",
    "Park",
    "Stage",
    "Stop",
]

log = logging.getLogger("tideflow.runtime.journal")

_NOTIFY_BYTES = 7000  # pg_notify payloads are limited to 8000 bytes
_CONFLICT_ATTEMPTS = 3  # a group commit that lost a deadlock is written this often in all
_LINGER_SECONDS = 0.2
"""How long timeline rows and progress, which nobody waits for, wait for a write somebody
waits for before they are committed alone. A run's rows are followed by its end, a park or
a result, or it starts work outside (:meth:`JournalWriter.flush`), whatever the load: the
linger only bounds how stale a run computing for long in memory looks from outside."""


@dataclass(frozen=True, slots=True)
class Control:
    """What a commit tells the instance's runner.

    Attributes:
        held: This process still holds the instance's lease (else stop at once).
        requested: ``cancel`` or ``suspend`` asked for the instance, or ``None``.
    """

    held: bool
    requested: str | None = None
    row: InstanceRow | None = None
    """The instance's final row, when the commit ended it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Finish:
    """The instance ended: ``completed``, ``failed`` or ``cancelled``."""

    status: InstanceStatus
    output: Any = None
    error: dict[str, Any] | None = None
    data: Any = None
    has_parent: bool = False
    """The instance is a sub-flow (its end may have to answer the parent)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Park:
    """The instance waits: release it until ``wake_at`` (``None``: until events).

    A due time is not kept on the instance: it becomes a wake-up timer of the
    timer service (:mod:`tideflow.runtime.wakeups`), added in the parking
    transaction under the key of step ``wake_key`` of run ``run_no``.
    """

    wake_at: datetime | None
    wake_key: str = ""
    run_no: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Stop:
    """Release the instance: ``status`` ``cancelled``/``suspended``, or ``None`` (shutdown)."""

    status: InstanceStatus | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Continue:
    """``continueAs``: the next run, with a fresh journal."""

    workflow_id: str
    version: str
    input: Any


Transition = Finish | Park | Stop | Continue

_Written = tuple[dict[str, str | None], dict[str, InstanceRow | None], dict[str, InstanceRow]]
"""What a batch's write returns: the held instances (with requests), finished rows, created
rows."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NewInstance:
    """An instance to create, leased by this process (it runs it at once)."""

    id: str
    workflow_id: str
    version: str | None
    """``None``: the latest non-deleted version."""
    input: Any
    parent_id: str | None = None
    parent_key: str | None = None
    headers: Mapping[str, str] | None = None
    """The start request's filtered HTTP headers (``$WORKFLOW.headers``); ``None``: not HTTP."""


@dataclass(slots=True)
class _Batch:
    creates: list[tuple[NewInstance, asyncio.Future[Any]]] = field(default_factory=list)
    waits: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    entries: list[tuple[str, int, str, str, str]] = field(default_factory=list)
    timeline: list[tuple[str, int, str, str, str | None, str, datetime]] = field(
        default_factory=list
    )
    progress: dict[str, tuple[str | None, str | None, bool]] = field(default_factory=dict)
    transitions: list[tuple[str, Transition]] = field(default_factory=list)
    waiters: list[tuple[str, asyncio.Future[Control]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.entries
            or self.timeline
            or self.progress
            or self.transitions
            or self.creates
            or self.waits
        )


class Stage:
    """The writes of instances a delivery just claimed, held for the delivery's transaction.

    A batched delivery (:meth:`~tideflow.runtime.waits.WaitDelivery.deliver_many`)
    keeps its transaction open while the instances it claimed resume here: their
    writes are queued here, not in the group commit, until each run *arrives* --
    queues a write it waits for (its end, a park, an effect's result) or asks for
    a :meth:`JournalWriter.barrier` before work outside (a call, an emit, a child,
    a write of its own transaction). The delivery then writes what is queued on its
    own connection and commits once (:meth:`JournalWriter.write_stage`): the
    delivery and the resumed run's first writes are one transaction, visible
    together or not at all. Nothing outside happens before that commit: a barrier
    resolves only after it.
    """

    __slots__ = ("_pending", "arrived", "batch", "committed", "ids", "written")

    def __init__(self, ids: Sequence[str]) -> None:
        loop = asyncio.get_running_loop()
        self.ids = frozenset(ids)
        self.batch = _Batch()
        self._pending = set(ids)
        self.arrived: asyncio.Future[None] = loop.create_future()
        """Resolves when every run arrived (the delivery writes the stage then)."""
        self.committed: asyncio.Future[bool] = loop.create_future()
        """Whether the delivery committed (what a barrier waits for)."""
        self.written: tuple[_Batch, _Written] | None = None
        """What :meth:`JournalWriter.write_stage` wrote, and what the write returned."""
        if not self._pending:
            self.arrived.set_result(None)

    def arrive(self, instance_id: str) -> None:
        """The run waits for a write, or for the commit before work outside."""
        self._pending.discard(instance_id)
        if not self._pending and not self.arrived.done():
            self.arrived.set_result(None)


class JournalWriter:
    """Group-commits the writes of every instance this process runs (see module docs).

    Args:
        pool: The database pool.
        owner: This process's lease owner id.
        lease_seconds: How long each commit extends the leases it touches.
        clock: Stamps timeline rows.
    """

    def __init__(
        self, pool: asyncpg.Pool, owner: str, lease_seconds: float, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._pool = pool
        self._owner = owner
        self._lease = lease_seconds
        self._clock = clock
        self._batch = _Batch()
        self._stages: dict[str, Stage] = {}
        self._dirty = asyncio.Event()
        self._linger: asyncio.TimerHandle | None = None
        self.linger = _LINGER_SECONDS
        """How long writes nobody waits for wait for one somebody waits for (seconds)."""
        self._closed = False
        self._backoff = Backoff(first=0.1, longest=2.0)
        self.commits = 0
        """Transactions committed (for figures)."""
        self.staged_commits = 0
        """Deliveries whose transaction carried their runs' first writes (for figures)."""
        self.on_commit: Callable[[float], None] | None = None
        """Called with each commit's duration in seconds (the metrics' histogram)."""
        self.on_wake_timers: Callable[[], None] | None = None
        """Called after a commit that added wake-up timers (the timer service loads them)."""

    # --- what runners call -------------------------------------------------

    def append(
        self,
        instance_id: str,
        run_no: int,
        op: str,
        key: str,
        entry: dict[str, Any],
        *,
        awaited: bool = True,
    ) -> asyncio.Future[Control]:
        """Queue an effect result; the future resolves after its commit (``awaited``: the
        run waits for it, else it goes on and the next commit covers it)."""
        self._batch_of(instance_id).entries.append((instance_id, run_no, op, key, dumps(entry)))
        return self._wait(instance_id, awaited=awaited)

    def note(
        self,
        instance_id: str,
        run_no: int,
        kind: str,
        key: str,
        state: str | None,
        detail: dict[str, Any],
    ) -> None:
        """Queue a timeline row (committed with the next batch; nobody waits for it)."""
        row = (instance_id, run_no, kind, key, state, dumps(detail), self._clock.now())
        batch = self._batch_of(instance_id)
        batch.timeline.append(row)
        if batch is self._batch:
            self._unawaited()

    def progress(self, instance_id: str, state: str | None, data: Any) -> None:
        """Queue the instance's current state and data (the latest value wins)."""
        batch = self._batch_of(instance_id)
        batch.progress[instance_id] = (state, dumps(data), True)
        if batch is self._batch:
            self._unawaited()

    def flush(self) -> None:
        """Commit what is queued at once, without waiting for it (a run starts work outside:
        its steps so far are on record before it, as a crash's diagnosis needs)."""
        if self._batch:
            self._dirty.set()

    def _unawaited(self) -> None:
        """A write nobody waits for: it goes with the next commit somebody waits for, or
        alone after :attr:`linger` seconds when none comes (then the writer is idle)."""
        if self._linger is None and not self._dirty.is_set():
            self._linger = asyncio.get_running_loop().call_later(self.linger, self._dirty.set)

    def transition(self, instance_id: str, change: Transition) -> asyncio.Future[Control]:
        """Queue a status change; the future resolves after its commit."""
        self._batch_of(instance_id).transitions.append((instance_id, change))
        return self._wait(instance_id)

    def create(self, new: NewInstance) -> asyncio.Future[InstanceRow | None]:
        """Queue an instance to create (leased here); resolves to its row, or ``None``
        when an instance with that id exists already."""
        if self._closed:
            raise StoreError("the journal writer is stopped")
        future: asyncio.Future[InstanceRow | None] = asyncio.get_running_loop().create_future()
        self._batch.creates.append((new, future))
        self._dirty.set()
        return future

    def add_wait(self, instance_id: str, wait: dict[str, Any]) -> asyncio.Future[Control]:
        """Queue an event wait (``key, run_no, all, events, types, due_at``)."""
        self._batch_of(instance_id).waits.append((instance_id, wait))
        return self._wait(instance_id)

    def sync(self, instance_id: str) -> asyncio.Future[Control]:
        """A future that resolves once everything queued so far is committed."""
        self._batch_of(instance_id).progress.setdefault(instance_id, (None, None, False))
        return self._wait(instance_id)

    def _stage_of(self, instance_id: str) -> Stage | None:
        """The delivery holding the instance's writes (``None``: the group commit takes them)."""
        return self._stages.get(instance_id) if self._stages else None

    def _batch_of(self, instance_id: str) -> _Batch:
        stage = self._stage_of(instance_id)
        return self._batch if stage is None else stage.batch

    def _wait(self, instance_id: str, *, awaited: bool = True) -> asyncio.Future[Control]:
        if self._closed:
            raise StoreError("the journal writer is stopped")
        future: asyncio.Future[Control] = asyncio.get_running_loop().create_future()
        stage = self._stage_of(instance_id)
        if stage is None:
            self._batch.waiters.append((instance_id, future))
            self._dirty.set()
        else:  # the delivery's transaction writes it
            stage.batch.waiters.append((instance_id, future))
            if awaited:
                stage.arrive(instance_id)
        return future

    # --- a delivery's transaction (see :class:`Stage`) ----------------------------

    def stage(self, ids: Sequence[str]) -> Stage:
        """Hold the writes of ``ids`` (just claimed, not running yet) for a delivery."""
        stage = Stage(ids)
        for instance_id in ids:
            self._stages[instance_id] = stage
        return stage

    def unstaged(self, ids: list[str]) -> list[str]:
        """Those of ``ids`` no delivery holds (their leases are committed)."""
        return [i for i in ids if i not in self._stages] if self._stages else ids

    def barrier(self, instance_id: str) -> asyncio.Future[bool] | None:
        """Before work outside: what to wait for first (``None``: nothing). The future
        tells whether the delivery that claimed the instance committed."""
        stage = self._stage_of(instance_id)
        if stage is None:
            return None
        stage.arrive(instance_id)
        return stage.committed

    async def write_stage(self, conn: asyncpg.Connection, stage: Stage) -> None:
        """Write what ``stage`` holds in the transaction open on ``conn`` (the caller
        commits, then :meth:`release`); writes queued meanwhile go with the group commit."""
        batch, stage.batch = stage.batch, _Batch()
        if batch or batch.waiters:
            try:
                stage.written = (batch, await self._write(conn, batch))
            except BaseException:
                _merge(batch, stage.batch)  # all of it for abandon()
                stage.batch = batch
                raise

    def release(self, stage: Stage, seconds: float = 0.0) -> None:
        """After the delivery's commit (``seconds``: its duration): acknowledge the writes
        :meth:`write_stage` wrote, open the barriers, and let the runs' further writes go
        with the group commit."""
        self._unstage(stage)
        if stage.written is not None:
            batch, (held, finished, created) = stage.written
            self.staged_commits += 1
            self._after_commit(batch, seconds)
            _acknowledge(batch, held, finished, created)
        _merge(self._batch, stage.batch)
        stage.batch = _Batch()
        if self._batch.waiters or self._batch.creates:
            self._dirty.set()
        elif self._batch:
            self._unawaited()
        if not stage.committed.done():
            stage.committed.set_result(True)

    def abandon(self, stage: Stage) -> None:
        """The delivery rolled back: its instances are not this process's (their waits are
        open again), so their runs stop without writing anything more."""
        self._unstage(stage)
        lost = Control(held=False)
        for _, future in stage.batch.waiters:
            if not future.done():
                future.set_result(lost)
        stage.batch = _Batch()
        if not stage.committed.done():
            stage.committed.set_result(False)

    def _unstage(self, stage: Stage) -> None:
        for instance_id in stage.ids:
            if self._stages.get(instance_id) is stage:
                del self._stages[instance_id]

    # --- the committing task ---------------------------------------------------

    async def run(self) -> None:
        """Commit batches until :meth:`close`; then commit what is left and return.

        The writer keeps one connection for itself (no pool round trip per
        batch) and takes a new one when that connection breaks. While the
        database cannot be reached, every write queued fails at once with a
        :class:`StoreError` (its runner stops; the instance is replayed from
        its journal later) and the writer tries again with a back-off: no
        runner waits for a commit that cannot come.
        """
        failures = 0
        while True:
            try:
                async with self._pool.acquire() as conn:
                    failures = 0
                    if await self._serve(conn):
                        return
            except CONNECTION_ERRORS as exc:
                failures += 1
                if failures == 1:
                    log.warning("journal writer: database unreachable (%s); retrying", exc)
                self._fail_queued(StoreError(f"journal commit failed: {exc}"))
                if self._closed:
                    return
                await self._clock.sleep(self._backoff.delay(failures))

    def _fail_queued(self, error: StoreError) -> None:
        batch, self._batch = self._batch, _Batch()
        _fail(batch, error)

    async def _serve(self, conn: asyncpg.Connection) -> bool:
        while True:
            await self._dirty.wait()
            if not usable(conn):  # it died while idle (a database restart): take another
                return False
            self._dirty.clear()
            if self._linger is not None:  # what it waited for goes in this batch
                self._linger.cancel()
                self._linger = None
            batch, self._batch = self._batch, _Batch()
            if batch or batch.waiters:
                await self._commit(conn, batch)
            if self._closed and not self._batch and not self._batch.waiters:
                return True
            if not usable(conn):
                self._dirty.set()  # whatever queued meanwhile goes out on the new connection
                return False

    def close(self) -> None:
        """Stop accepting writes; :meth:`run` returns after the last batch."""
        self._closed = True
        self._dirty.set()

    async def _commit(self, conn: asyncpg.Connection, batch: _Batch) -> None:
        started = self._clock.monotonic()
        try:
            held, finished, created = await self._write_again_on_conflict(conn, batch)
        except CONNECTION_ERRORS as exc:
            _fail(batch, StoreError(f"journal commit failed: {exc}"))
            log.error("journal commit failed: %s", exc)
            return
        except Exception as exc:  # a bug: its writers learn it, the supervisor restarts us
            _fail(batch, StoreError(f"journal commit failed: {type(exc).__name__}: {exc}"))
            raise
        self.commits += 1
        self._after_commit(batch, self._clock.monotonic() - started)
        _acknowledge(batch, held, finished, created)

    def _after_commit(self, batch: _Batch, seconds: float) -> None:
        try:
            if self.on_commit is not None:
                self.on_commit(seconds)
            timed = any(isinstance(c, Park) and c.wake_at for _, c in batch.transitions)
            if timed and self.on_wake_timers is not None:
                self.on_wake_timers()
        except Exception:  # a monitoring hook must not fail a commit
            log.exception("journal commit hook failed")

    async def _write_again_on_conflict(self, conn: asyncpg.Connection, batch: _Batch) -> _Written:
        # A deadlock or serialization failure rolled the whole batch back, so it is written
        # again: failing it would stop every runner in it, and their calls in flight at the
        # moment would be made again when they are replayed
        for attempt in range(1, _CONFLICT_ATTEMPTS + 1):
            try:
                return await self._write(conn, batch)
            except asyncpg.exceptions.TransactionRollbackError as exc:
                if attempt == _CONFLICT_ATTEMPTS:
                    raise
                log.warning("journal commit: %s; writing the batch again", exc)
        raise AssertionError("unreachable")

    async def _write(self, conn: asyncpg.Connection, batch: _Batch) -> _Written:
        ids = sorted(
            {e[0] for e in batch.entries}
            | {t[0] for t in batch.timeline}
            | set(batch.progress)
            | {i for i, _ in batch.transitions}
            | {i for i, _ in batch.waiters}
            | {n.id for n, _ in batch.creates}
        )
        if _journal_batch.fits(batch):
            return await _journal_batch.commit(conn, self._owner, self._lease, batch)
        progress = [batch.progress.get(i, (None, None, False)) for i in ids]
        created: dict[str, InstanceRow] = {}
        async with conn.transaction():
            if batch.creates:
                created = await self._create(conn, [n for n, _ in batch.creates])
            held = await gateway.touch_instances(conn, self._owner, self._lease, ids, progress)
            await self._insert(conn, batch, held)
            finished = await self._transitions(conn, batch.transitions, held)
            if finished:
                await self._notify_done(conn, list(finished))
        return held, finished, created

    async def _create(
        self, conn: asyncpg.Connection, news: list[NewInstance]
    ) -> dict[str, InstanceRow]:
        rows = await gateway.insert_instances(
            conn,
            [(n.id, n.workflow_id, n.version, n.input, n.parent_id, n.parent_key) for n in news],
            self._owner,
            self._lease,
            [n.headers for n in news],
        )
        return {r.id: r for r in rows}

    async def _insert(
        self, conn: asyncpg.Connection, batch: _Batch, held: dict[str, str | None]
    ) -> None:
        entries = [e for e in batch.entries if e[0] in held]
        if entries:
            await gateway.insert_journal(conn, entries)
        for instance_id, wait in batch.waits:
            if instance_id in held:
                await gateway.insert_wait(conn, instance_id, wait)
        timeline = _timeline.fold([t for t in batch.timeline if t[0] in held])
        if timeline:
            await gateway.insert_timeline(conn, timeline)

    async def _transitions(
        self,
        conn: asyncpg.Connection,
        transitions: Sequence[tuple[str, Transition]],
        held: dict[str, str | None],
    ) -> dict[str, InstanceRow | None]:
        finished: dict[str, InstanceRow | None] = {}
        finishes: list[tuple[str, Finish]] = []
        parks: list[str] = []
        wakeups: list[WakeUp] = []
        for instance_id, change in transitions:
            if instance_id not in held:
                continue
            if isinstance(change, Finish):
                finishes.append((instance_id, change))
            elif isinstance(change, Park):
                parks.append(instance_id)
                if change.wake_at is not None:
                    wakeups.append((instance_id, change.run_no, change.wake_key, change.wake_at))
            elif isinstance(change, Stop):
                await gateway.stop_instance(conn, instance_id, change.status, self._owner)
                if change.status == InstanceStatus.CANCELLED:
                    finished[instance_id] = None
            else:
                await gateway.continue_instance(
                    conn,
                    instance_id,
                    change.workflow_id,
                    change.version,
                    change.input,
                    self._owner,
                )
        if parks:  # runnable again only when woken: by events, a child or a timer
            await gateway.park_instances(conn, parks, self._owner)
            await insert_wake_timers(conn, wakeups)
        if finishes:
            finished.update(await self._finish(conn, finishes))
        return finished

    async def _finish(
        self, conn: asyncpg.Connection, finishes: list[tuple[str, Finish]]
    ) -> dict[str, InstanceRow]:
        rows = await gateway.finish_instances(
            conn, [(i, f.status, f.output, f.error, f.data) for i, f in finishes], self._owner
        )
        changes = dict(finishes)
        for row in rows:
            if row.parent_id is not None and row.parent_key is not None:
                await self._answer_parent(conn, row.parent_id, row.parent_key, changes[row.id])
        return {r.id: r for r in rows}

    async def _answer_parent(
        self, conn: asyncpg.Connection, parent_id: str, parent_key: str, change: Finish
    ) -> None:
        if change.status == InstanceStatus.COMPLETED:
            entry: dict[str, Any] = {"result": change.output}
        else:
            error = change.error or {"message": change.status, "code": change.status}
            entry = {"error": {"type": "FunctionCallError", "retryable": False, **error}}
        await gateway.answer_parent(conn, parent_id, parent_key, entry)

    async def _notify_done(self, conn: asyncpg.Connection, finished: list[str]) -> None:
        chunk: list[str] = []
        size = 0
        for instance_id in finished:
            if size + len(instance_id) + 1 > _NOTIFY_BYTES:
                await gateway.notify_done(conn, chunk)
                chunk, size = [], 0
            chunk.append(instance_id)
            size += len(instance_id) + 1
        if chunk:
            await gateway.notify_done(conn, chunk)


def _acknowledge(
    batch: _Batch,
    held: dict[str, str | None],
    finished: dict[str, InstanceRow | None],
    created: dict[str, InstanceRow],
) -> None:
    for new, future in batch.creates:
        if not future.done():
            future.set_result(created.get(new.id))
    for instance_id, future in batch.waiters:
        if not future.done():
            found = instance_id in held
            future.set_result(Control(found, held.get(instance_id), finished.get(instance_id)))


def _merge(into: _Batch, batch: _Batch) -> None:
    into.creates.extend(batch.creates)
    into.waits.extend(batch.waits)
    into.entries.extend(batch.entries)
    into.timeline.extend(batch.timeline)
    for instance_id, value in batch.progress.items():
        if value[2] or instance_id not in into.progress:
            into.progress[instance_id] = value
    into.transitions.extend(batch.transitions)
    into.waiters.extend(batch.waiters)


def _fail(batch: _Batch, error: StoreError) -> None:
    for future in [f for _, f in batch.waiters] + [f for _, f in batch.creates]:
        if not future.done():
            future.set_exception(error)
