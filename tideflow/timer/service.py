"""The durable timer service: timers in PostgreSQL, the near future in a timing wheel.

How it works:

- Every timer is a row of ``tideflow_timers``. The service keeps the ones due
  within ``horizon`` seconds in a :class:`~tideflow.timer.wheel.TimingWheel`
  (loaded every ``poll_interval``, and at once for timers this process adds).
- When the wheel says timers are due, the service claims their rows
  (``FOR UPDATE SKIP LOCKED``), runs the handler registered for their kind
  *inside that transaction*, marks them fired and commits. A handler whose
  effect is written through the connection it is given fires exactly once; a
  handler with an outside effect fires at least once and gets the timer id as
  an idempotency key. A crash rolls back: the timer stays pending and fires
  after restart -- overdue timers at once, in due order.
- Several processes on one database all hold the near timers; the row lock
  and the state check let exactly one of them fire each.
- A schedule is a row of ``tideflow_schedules`` plus one internal timer at
  its next tick. Firing that timer plans the ticks (:func:`plan_ticks`, with the
  schedule's catch-up policy), adds one timer of the schedule's kind per tick
  (id ``<schedule>@<tick>``: added once however often planning runs) and
  the internal timer for the following tick -- all in one transaction.
- A fired or cancelled row stays for ``retention`` seconds -- an id or
  idempotency key added again meanwhile still finds it and adds nothing --
  then a background pass deletes it, ``purge_batch`` rows per transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import asyncpg

from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.errors import InvalidArgument, TideflowError
from tideflow.ids import new_sortable_id
from tideflow.isotime import parse_duration
from tideflow.supervise import Supervisor, first_done
from tideflow.timer.gateway import TimerStore
from tideflow.timer.planner import SCHEDULE_KIND, add_planner, plan_schedules
from tideflow.timer.records import ScheduleRecord, TimerRecord, TimerState
from tideflow.timer.schedules import CatchUp, parse_schedule
from tideflow.timer.wheel import TimingWheel

log = logging.getLogger("tideflow.timer")

TimerHandler = Callable[[list[TimerRecord], asyncpg.Connection], Awaitable[None]]
"""Fires timers of one kind, given in due order, inside the firing transaction."""


_MICROSECOND = timedelta(microseconds=1)
_OPEN_TRANSACTION_MARGIN = timedelta(seconds=2)


class NoHandler(TideflowError):
    """No handler is registered for this timer kind."""


class TimerService:
    """Durable timers and schedules, fired by registered handlers.

    Args:
        pool: The asyncpg pool (migrations applied).
        clock: Where time comes from (tests pass a ManualClock).
        tick: The wheel's tick, in seconds.
        horizon: Seconds ahead the wheel holds timers for.
        poll_interval: Seconds between loads of newly due timers from the database.
        batch_size: Most timers claimed in one transaction.
        load_limit: Most timers one load reads.
        retry_base: First retry delay after a handler fails, in seconds (doubles).
        retry_max: Longest retry delay, in seconds.
        grace: How late a schedule tick may start and still be on time.
        max_catch_up: Most ticks a schedule plans at once.
        full_rescan: Seconds between loads that read the whole horizon.
        retention: Seconds a fired or cancelled timer is kept before it is deleted.
        purge_interval: Seconds between passes deleting such timers.
        purge_batch: Most timers deleted in one transaction.
        purge_batches: Most transactions in one pass (the rest waits for the next).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        clock: Clock = SYSTEM_CLOCK,
        tick: float = 0.01,
        horizon: float = 30.0,
        poll_interval: float = 1.0,
        batch_size: int = 1000,
        load_limit: int = 50_000,
        retry_base: float = 1.0,
        retry_max: float = 300.0,
        grace: timedelta = timedelta(minutes=1),
        max_catch_up: int = 100,
        full_rescan: float = 30.0,
        retention: float = 86400.0,
        purge_interval: float = 60.0,
        purge_batch: int = 5000,
        purge_batches: int = 100,
    ) -> None:
        self.store = TimerStore(pool)
        self._clock = clock
        self._horizon = timedelta(seconds=horizon)
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._load_limit = load_limit
        self._retry = (retry_base, retry_max)
        self._catch_up = (grace, max_catch_up)
        self._wheel = TimingWheel(clock.now().timestamp(), tick=tick)
        self._held: set[str] = set()
        self._loaded: tuple[datetime, datetime] | None = None  # (horizon read, touched since)
        self._full_rescan = full_rescan
        self._retention = timedelta(seconds=retention)
        self._purging = (purge_interval, purge_batch, purge_batches)
        self._next_full = 0.0
        self._handlers: dict[str, TimerHandler] = {SCHEDULE_KIND: self._plan_schedules}
        self._wake = asyncio.Event()
        self.supervisor = Supervisor("timers", clock=clock)
        """Owns the firing and loading loops (``/healthz`` reports them)."""
        self._fire_lock = asyncio.Lock()

    @property
    def clock(self) -> Clock:
        """Where the service's time comes from (handlers plan their next timers on it)."""
        return self._clock

    # -- lifecycle ------------------------------------------------------------

    def register(self, kind: str, handler: TimerHandler) -> None:
        """Fire timers of ``kind`` with ``handler`` (one handler per kind)."""
        if kind in self._handlers:  # SCHEDULE_KIND is the service's own
            raise InvalidArgument(f"a handler for timer kind {kind!r} exists", argument="kind")
        self._handlers[kind] = handler

    async def start(self) -> None:
        """Load the near timers and start the firing and loading loops."""
        await self.load()
        self.supervisor.spawn("drive", self._drive)
        self.supervisor.spawn("poll", self._poll)
        self.supervisor.spawn("purge", self._purge_loop)

    async def stop(self) -> None:
        """Stop the loops; a firing in progress is finished first.

        Cancelling a firing mid-transaction would roll it back after its
        handler ran, so another process would fire those timers again.
        """
        async with self._fire_lock:
            self.supervisor.cancel_all()
        await self.supervisor.stop()

    async def __aenter__(self) -> TimerService:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- timers ---------------------------------------------------------------

    async def add(
        self,
        kind: str,
        due_at: datetime,
        payload: Any = None,
        *,
        timer_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> TimerRecord:
        """Add a durable timer; with an existing id or key, return that timer instead.

        Raises:
            InvalidArgument: ``due_at`` has no time zone.
        """
        if due_at.tzinfo is None:
            raise InvalidArgument("a timer's due time needs a time zone", argument="due_at")
        record, _ = await self.store.insert(
            timer_id=timer_id or new_sortable_id(),
            kind=kind,
            due_at=due_at,
            payload={} if payload is None else payload,
            idempotency_key=idempotency_key,
        )
        if record.state is TimerState.PENDING:
            self._hold(record.id, record.due_at)
        return record

    async def add_many(
        self, kind: str, timers: Sequence[tuple[datetime, Any, str | None]]
    ) -> list[TimerRecord]:
        """Add many timers of one kind in one statement: (due_at, payload, idempotency key).

        Returns:
            One timer per entry, in order (an existing one for a repeated key).

        Raises:
            InvalidArgument: A due time has no time zone.
        """
        if any(due.tzinfo is None for due, _, _ in timers):
            raise InvalidArgument("a timer's due time needs a time zone", argument="due_at")
        entries = [(new_sortable_id(), due, payload, key) for due, payload, key in timers]
        records = await self.store.insert_many(kind, entries)
        for record in records:
            if record.state is TimerState.PENDING:
                self._hold(record.id, record.due_at)
        return records

    async def add_after(
        self, kind: str, delay: float | timedelta | str, payload: Any = None, **options: Any
    ) -> TimerRecord:
        """Add a timer due ``delay`` from now (seconds, timedelta or ISO 8601 duration)."""
        if isinstance(delay, str):
            delay = parse_duration(delay)
        elif not isinstance(delay, timedelta):
            delay = timedelta(seconds=delay)
        return await self.add(kind, self._clock.now() + delay, payload, **options)

    async def cancel(self, timer_id: str) -> bool:
        """Cancel a pending timer; False if it was not pending (fired, cancelled, unknown)."""
        record = await self.store.cancel(timer_id)
        self._wheel.cancel(timer_id)
        self._held.discard(timer_id)
        return record is not None

    async def get(self, timer_id: str) -> TimerRecord | None:
        """One timer, or ``None``."""
        return await self.store.get(timer_id)

    async def list_timers(
        self, *, kind: str | None = None, state: TimerState | None = None, limit: int = 100
    ) -> list[TimerRecord]:
        """Timers in due order."""
        return await self.store.list_timers(kind=kind, state=state, limit=limit)

    # -- schedules ------------------------------------------------------------

    async def schedule(
        self,
        kind: str,
        cron_or_interval: str | Mapping[str, Any],
        payload: Any = None,
        *,
        schedule_id: str | None = None,
        timezone: str | None = None,
        catch_up: CatchUp = CatchUp.LATEST,
    ) -> ScheduleRecord:
        """Start a timer of ``kind`` at every tick of a schedule (create or replace).

        Args:
            kind: Kind of the timer each tick adds (its payload is ``payload``).
            cron_or_interval: A cron expression, an ISO 8601 repeating interval, or
                a serverless-workflow schedule object.
            payload: JSON value for each tick's timer.
            schedule_id: Stable id (replaces an existing schedule with this id).
            timezone: Time zone of the cron expression or interval.
            catch_up: What to do with ticks missed while no process ran.

        Raises:
            InvalidSchedule: The schedule is invalid.
        """
        now = self._clock.now()
        schedule = parse_schedule(cron_or_interval, anchor=now, timezone=timezone)
        first = schedule.next_after(now)
        sid = schedule_id or new_sortable_id()
        async with self.store.pool.acquire() as conn, conn.transaction():
            record = await self.store.upsert_schedule(
                conn,
                schedule_id=sid,
                kind=kind,
                spec=schedule.to_json(),
                payload={} if payload is None else payload,
                catch_up=CatchUp(catch_up).value,
                next_tick=first,
            )
            if first is not None:
                await add_planner(self.store, conn, sid, first, self._hold)
        return record

    async def cancel_schedule(self, schedule_id: str) -> bool:
        """Stop a schedule; False if it was not active."""
        return await self.store.cancel_schedule(schedule_id)

    async def _plan_schedules(self, timers: list[TimerRecord], conn: asyncpg.Connection) -> None:
        """Handler of the internal planning timers (in their firing transaction)."""
        grace, max_catch_up = self._catch_up
        now = self._clock.now()
        await plan_schedules(
            self.store,
            conn,
            timers,
            now=now,
            grace=grace,
            max_catch_up=max_catch_up,
            hold=self._hold,
        )

    # -- loading and firing ---------------------------------------------------

    def _hold(self, timer_id: str, due_at: datetime) -> None:
        """Put a timer in the wheel if it is due within the horizon and not there yet."""
        if timer_id in self._held or due_at > self._clock.now() + self._horizon:
            return
        self._held.add(timer_id)
        self._wheel.add(timer_id, due_at.timestamp())
        self._wake.set()

    async def load(self) -> int:
        """Put the pending timers due within the horizon into the wheel; how many were new.

        Incremental: only timers due after the previous load's horizon, or added
        or moved since (by the database's clock, less a margin for transactions
        still open then). Every ``full_rescan`` seconds it reads the whole horizon,
        which catches a transaction that stayed open longer than the margin.
        """
        horizon = self._clock.now() + self._horizon
        db_now = await self.store.db_now()
        if self._loaded is None or self._clock.monotonic() >= self._next_full:
            rows = await self.store.due_soon(horizon, self._load_limit)
            self._next_full = self._clock.monotonic() + self._full_rescan
        else:
            after_due, since = self._loaded
            rows = await self.store.due_soon_since(horizon, after_due, since, self._load_limit)
        # Capped by the limit: next time, go on from the last due time read.
        reached = horizon if len(rows) < self._load_limit else rows[-1][2] - _MICROSECOND
        self._loaded = (reached, db_now - _OPEN_TRANSACTION_MARGIN)
        before = len(self._held)
        for timer_id, _, due_at in rows:
            self._hold(timer_id, due_at)
        return len(self._held) - before

    async def fire_due(self) -> list[TimerRecord]:
        """Fire every timer in the wheel that is due now; the timers this process fired."""
        async with self._fire_lock:
            now = self._clock.now()
            due = [str(t.id) for t in self._wheel.advance(now.timestamp())]
            fired: list[TimerRecord] = []
            for start in range(0, len(due), self._batch_size):
                batch = due[start : start + self._batch_size]
                try:
                    try:
                        fired += await self.store.fire(batch, now, self._dispatch)
                    except Exception:  # a handler failed: find which, alone
                        fired += await self._fire_singly(batch, now)
                finally:
                    # Out of the wheel either way: fired, or pending and reloaded by a poll.
                    self._held.difference_update(batch)
            return fired

    async def run_once(self) -> list[TimerRecord]:
        """Load, then fire what is due: one step of the loops (tests call it directly)."""
        await self.load()
        return await self.fire_due()

    async def _fire_singly(self, batch: list[str], now: datetime) -> list[TimerRecord]:
        fired: list[TimerRecord] = []
        for timer_id in batch:
            try:
                fired += await self.store.fire([timer_id], now, self._dispatch)
            except Exception as exc:  # handler code is not ours
                try:
                    await self._retry_later(timer_id, exc, now)
                except (TideflowError, OSError, asyncpg.PostgresError) as db_exc:
                    log.warning("timer %s: cannot record the failure: %s", timer_id, db_exc)
        return fired

    async def _retry_later(self, timer_id: str, exc: Exception, now: datetime) -> None:
        record = await self.store.get(timer_id)
        attempts = record.attempts if record else 0
        base, cap = self._retry
        delay = min(cap, base * 2**attempts)
        log.warning(
            "timer %s failed (attempt %d), retry in %.1fs: %r", timer_id, attempts + 1, delay, exc
        )
        await self.store.retry_later(timer_id, repr(exc), now + timedelta(seconds=delay))

    async def _dispatch(self, timers: list[TimerRecord], conn: asyncpg.Connection) -> None:
        """Run the handlers, consecutive timers of one kind together, in due order."""
        start = 0
        for end in range(1, len(timers) + 1):
            if end == len(timers) or timers[end].kind != timers[start].kind:
                kind = timers[start].kind
                handler = self._handlers.get(kind)
                if handler is None:
                    raise NoHandler(f"no handler for timer kind {kind!r}")
                await handler(timers[start:end], conn)
                start = end

    async def _drive(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.fire_due()
            except (TideflowError, OSError, asyncpg.PostgresError) as exc:
                log.warning("firing timers failed, will retry: %s", exc)
            deadline = self._wheel.next_deadline()
            wait = self._poll_interval
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - self._clock.now().timestamp()))
            await self._sleep_or_wake(wait)

    async def _poll(self) -> None:
        while True:
            await self._clock.sleep(self._poll_interval)
            try:
                await self.load()
            except (TideflowError, OSError, asyncpg.PostgresError) as exc:
                log.warning("loading timers failed, will retry: %s", exc)

    async def purge(self) -> int:
        """Delete fired and cancelled timers older than the retention; how many.

        At most ``purge_batches`` transactions of ``purge_batch`` rows: a backlog
        (the first pass after an upgrade) is worked off over several passes.
        """
        _, batch, batches = self._purging
        before = self._clock.now() - self._retention
        deleted = 0
        for _ in range(batches):
            n = await self.store.purge_ended(before, batch)
            deleted += n
            if n < batch:
                break
        return deleted

    async def _purge_loop(self) -> None:
        while True:
            await self._clock.sleep(self._purging[0])
            try:
                if deleted := await self.purge():
                    log.info("deleted %d fired or cancelled timers", deleted)
            except (TideflowError, OSError, asyncpg.PostgresError) as exc:
                log.warning("deleting old timers failed, will retry: %s", exc)

    async def _sleep_or_wake(self, seconds: float) -> None:
        if self._wake.is_set():
            return
        await first_done(self._clock.sleep(seconds), self._wake.wait())
