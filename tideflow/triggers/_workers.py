"""The dispatcher's moving parts: one reader per bus, one worker object per subscription.

A :class:`BusReader` is the only task of a bus. It reads from the lowest
cursor among the subscriptions that have room, keeps the last batch read in a
buffer (a subscription that frees one slot is served from memory, not from
the database) and hands the events to each worker synchronously. Workers are
plain objects: an HTTP worker runs at most ``maxInFlight`` short-lived lanes
(tasks that deliver queued events one after another, gone when the queue is
empty), an internal worker one task per batch handed to its consumer. Nothing
waits per subscription, so the cost of an idle subscription is one entry in a
dict.

Each worker keeps its subscription's offsets in an :class:`OffsetTracker`. The
committed offset moves only past a contiguous prefix of finished events: with
deliveries of offsets 5, 6 and 7 in flight and 6 and 7 done, it stays at 4
until 5 is delivered or dead-lettered, then jumps to 7. A restart re-reads
from the committed offset, so at most the in-flight events are delivered
twice (at-least-once). The dispatcher writes the offsets periodically
(:class:`tideflow.triggers.gateway.PostgresSubscriptions`).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import asyncpg

from tideflow import limits, tracing
from tideflow.clock import Clock
from tideflow.errors import (
    BusNotFound,
    ConfigurationError,
    EventNotFound,
    EventRejected,
    ExpressionError,
    ExpressionLimitExceeded,
    SecretUnavailable,
    StoreError,
    TideflowError,
    ValueLimitExceeded,
)
from tideflow.eventstore.store import EventStore, StoredEvent
from tideflow.notify import Heads, Waiters
from tideflow.secrets import SecretAccess
from tideflow.supervise import Supervisor, TaskSet, first_done
from tideflow.triggers.delivery import Attempt, HttpSender, dead_letter, without_data
from tideflow.triggers.filters import CompiledFilters
from tideflow.triggers.gateway import Progress
from tideflow.triggers.subscriptions import Subscription
from tideflow.triggers.transform import Transform, transform_error, transform_or_none

_T = TypeVar("_T")

log = logging.getLogger("tideflow.triggers")

_TRANSIENT: tuple[type[BaseException], ...] = (
    StoreError,
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
)
"""What a consumer raises while the database is away, restarting, out of connections,
or rolling a transaction back (a deadlock, a serialization failure): its batch is
retried until it goes through, never dead-lettered (no event is at fault)."""

Batch = list[tuple[int, Mapping[str, Any]]]
Consumer = Callable[[Batch], Awaitable[None]]
"""An in-process consumer: gets matching events as ``(offset, event)`` in offset order and
returns once they are processed; the offset is committed only then. Raising retries the batch
(while the database is away, until it answers); an event that keeps failing for a reason of its
own is dead-lettered after the subscription's attempts (:meth:`ConsumerWorker._consume`)."""
Deliver = Callable[[Mapping[str, Any]], Awaitable[Attempt]]
"""Delivers one (transformed) event somewhere other than an HTTP sink (a connector's sink):
the attempt's result says whether it is retried or dead-lettered, as for HTTP."""


@dataclass(slots=True)
class OffsetTracker:
    """The offsets of one subscription while it runs (pure bookkeeping, no I/O).

    Attributes:
        committed: Offset up to which everything is finished (as last computed).
        cursor: The highest offset handed to the subscription.
        pending: Offsets handed over and not finished (delivering or awaiting a retry).
        flushed: The committed offset as last written to the database.
        delivered: Events delivered since the last flush.
        failed: Failed attempts since the last flush.
        dead_lettered: Events dead-lettered since the last flush.
        version: The subscription's version it runs under.
    """

    committed: int
    cursor: int = -1
    pending: set[int] = field(default_factory=set)
    flushed: int = -1
    delivered: int = 0
    failed: int = 0
    dead_lettered: int = 0
    version: int = 1

    def __post_init__(self) -> None:
        if self.cursor < 0:
            self.cursor = self.committed
        if self.flushed < 0:
            self.flushed = self.committed

    def take(self, offset: int) -> None:
        """Record that ``offset`` was handed over (offsets arrive in increasing order)."""
        self.cursor = max(self.cursor, offset)
        self._recompute()

    def start(self, offset: int) -> None:
        """Record that ``offset`` is being delivered (and so is not finished)."""
        self.pending.add(offset)
        self.take(offset)

    def finish(self, offset: int) -> None:
        """Record that ``offset`` was delivered or dead-lettered."""
        self.pending.discard(offset)
        self._recompute()

    def _recompute(self) -> None:
        # Offsets awaiting a retry from before a restart may lie beyond the cursor.
        self.committed = min(self.cursor, min(self.pending) - 1) if self.pending else self.cursor

    def progress(self, subscription_id: str, *, skipped: bool = True) -> Progress | None:
        """What to write since the last flush, or ``None``; resets the counters.

        Args:
            subscription_id: The subscription.
            skipped: Also when the offset moved only past events the subscription skipped
                (nothing delivered, failed or dead-lettered since the last flush); with
                ``False`` such progress waits for a later flush.
        """
        quiet = not self.delivered and not self.failed and not self.dead_lettered
        if quiet and (self.committed == self.flushed or not skipped):
            return None
        out = Progress(
            subscription_id=subscription_id,
            committed_offset=self.committed,
            delivered=self.delivered,
            failed=self.failed,
            dead_lettered=self.dead_lettered,
            version=self.version,
        )
        self.flushed = self.committed
        self.delivered = self.failed = self.dead_lettered = 0
        return out

    def restore(self, progress: Progress) -> None:
        """Undo :meth:`progress` after its write failed: it is written with the next one."""
        self.flushed = -1
        self.delivered += progress.delivered
        self.failed += progress.failed
        self.dead_lettered += progress.dead_lettered


class WorkerServices(Protocol):
    """What workers need from the dispatcher."""

    store: EventStore
    sender: HttpSender
    clock: Clock
    secrets: SecretAccess | None

    async def schedule_retry(
        self, subscription_id: str, offset: int, attempt: int, delay: float, reason: str
    ) -> None:
        """Try ``offset`` again (attempt number ``attempt``) after ``delay`` seconds."""
        ...

    async def dead_letter(self, bus: str, event: Mapping[str, Any]) -> None:
        """Append ``event`` to ``bus``, creating the bus if needed."""
        ...

    quarantine_after: int
    """Crashes of the process while a consumer had an event before it is dead-lettered."""

    async def begin_attempts(self, subscription_id: str, offsets: Sequence[int]) -> bool:
        """Note events as handed to a consumer; ``False`` if one was noted already."""
        ...

    async def begin_attempt(self, subscription_id: str, offset: int) -> int:
        """Note one event as handed over; how many attempts before never finished."""
        ...

    async def end_attempts(self, subscription_id: str, offsets: Sequence[int]) -> None:
        """Forget events a consumer finished with."""
        ...


class SubscriptionWorker:
    """A subscription while it runs: its offsets and its in-flight work."""

    def __init__(
        self,
        subscription: Subscription,
        filters: CompiledFilters,
        services: WorkerServices,
        wake: asyncio.Event,
    ) -> None:
        self.subscription = subscription
        self.matches = filters.matches
        self.tracker = OffsetTracker(
            committed=subscription.committed_offset, version=subscription.version
        )
        self.services = services
        self._wake = wake
        self._tasks = TaskSet(f"subscription {subscription.id}: worker task", log)

    @property
    def id(self) -> str:
        """The subscription id."""
        return self.subscription.id

    @property
    def in_flight(self) -> int:
        """Events taken and not finished yet (delivering, or awaiting a retry)."""
        return len(self.tracker.pending)

    def ready(self) -> bool:
        """True when it can take more events."""
        raise NotImplementedError

    def accept(self, events: Sequence[StoredEvent]) -> None:
        """Take events (in offset order, possibly ones it has seen) as far as it has room."""
        raise NotImplementedError

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        # Short-lived lanes and batches: each catches its own failures (the event stays
        # pending and is tried again); the set logs the rest.
        self._tasks.spawn(work)

    async def _dead_letter(self, offset: int, event: Mapping[str, Any], reason: str) -> None:
        """Append ``event`` to the dead-letter bus with ``reason`` (until the database takes it);
        an event the store refuses (beyond today's value limits) goes without its data."""
        letter = dead_letter(event, reason, subscription_id=self.id, offset=offset)
        while True:
            try:
                await self.services.dead_letter(self.subscription.spec.dead_letter_bus, letter)
                break
            except EventRejected as exc:  # beyond a value limit (stored before it): no data
                if "data" not in letter and "data_base64" not in letter:
                    log.error(
                        "subscription %s: offset %d cannot be dead-lettered: %s",
                        self.id,
                        offset,
                        exc.reason,
                    )
                    break
                letter = without_data(letter, exc.reason)
            except TideflowError as exc:  # the database is down: the event stays pending
                log.warning("subscription %s: dead-lettering failed, retrying: %s", self.id, exc)
                await self.services.clock.sleep(1.0)
        self.tracker.dead_lettered += 1

    async def close(self) -> None:
        """Cancel the work in flight (it stays uncommitted, so it is redone later)."""
        await self._tasks.cancel()


class DeliveryWorker(SubscriptionWorker):
    """Delivers each event, up to ``maxInFlight`` at once (one when ordered), to the HTTP
    sink, or through ``deliver`` (a connector's sink), with retries and dead letter."""

    def __init__(
        self,
        subscription: Subscription,
        filters: CompiledFilters,
        services: WorkerServices,
        wake: asyncio.Event,
        awaiting: Mapping[int, int] | None = None,
        deliver: Deliver | None = None,
    ) -> None:
        super().__init__(subscription, filters, services, wake)
        spec = subscription.spec
        self.sink = spec.sink or ""
        self._deliver_to = deliver
        self.policy = spec.delivery
        self.transform: Transform | None = transform_or_none(spec.transform)
        self.window = self.policy.window
        self.timeout = self.policy.timeout.total_seconds()
        self.awaiting: dict[int, int] = {
            o: a for o, a in (awaiting or {}).items() if o > self.tracker.committed
        }
        """Offsets waiting for a retry timer: offset -> the attempt number it will make."""
        self.tracker.pending.update(self.awaiting)
        self.settled: set[int] = set()
        """Offsets awaited from before a restart that finished before the reader reached them."""
        self._queue: deque[tuple[int, Mapping[str, Any] | None, int]] = deque()
        """Deliveries to make: (offset, event or None to fetch it, attempt)."""
        self._lanes = 0
        self._busy = 0
        self._low_water = self.window // 2
        self._starved = len(self.tracker.pending) >= self.window
        """Set when the window filled up: the reader waits until half of it is free again
        (one wake-up per half window instead of one per delivery)."""
        self._traces: dict[int, str] = {}
        """The stored ``traceparent`` of events queued for their first attempt (tracing on)."""
        self._headers: Mapping[str, str] | None = None if spec.headers else {}
        """The sink's headers, secret references resolved (once, at the first delivery)."""

    async def close(self) -> None:
        """Cancel the work in flight and close the subscription's connection pool."""
        await super().close()
        await self.services.sender.release(self.id)

    def ready(self) -> bool:
        return not self._starved and len(self.tracker.pending) < self.window

    def accept(self, events: Sequence[StoredEvent]) -> None:
        tracker = self.tracker
        for stored in events:
            offset = stored.offset
            if offset <= tracker.cursor:
                continue
            if offset in self.awaiting or offset in self.settled or not self.matches(stored.event):
                self.settled.discard(offset)
                tracker.take(offset)
                continue
            tracker.start(offset)
            if stored.trace is not None:
                self._traces[offset] = stored.trace
            self._enqueue(offset, stored.event, 1)
            if len(tracker.pending) >= self.window:
                self._starved = True
                return

    def retry(self, offset: int, attempt: int) -> bool:
        """The retry timer of ``offset`` fired: attempt again. False if it is not awaited."""
        if self.awaiting.get(offset) != attempt:
            return False
        del self.awaiting[offset]
        self._enqueue(offset, None, attempt)
        return True

    def _enqueue(self, offset: int, event: Mapping[str, Any] | None, attempt: int) -> None:
        """Queue a delivery; start a lane if every lane is busy and the window allows one.

        Lanes are short-lived tasks that deliver queued events one after another: a task
        per lane rather than per delivery, and none while nothing is queued.
        """
        self._queue.append((offset, event, attempt))
        if self._lanes < min(self.window, self._busy + len(self._queue)):
            self._lanes += 1
            self._spawn(self._lane())

    async def _lane(self) -> None:
        try:
            while self._queue:
                offset, event, attempt = self._queue.popleft()
                self._busy += 1
                try:
                    if event is None:
                        await self._redeliver(offset, attempt)
                    else:
                        await self._deliver(offset, event, attempt)
                except Exception:  # a bug: keep the event pending and try it again later
                    log.exception("subscription %s: delivering offset %d failed", self.id, offset)
                    await self.services.clock.sleep(5.0)
                    self._queue.append((offset, event, attempt))
                finally:
                    self._busy -= 1
        finally:
            self._lanes -= 1

    async def _redeliver(self, offset: int, attempt: int) -> None:
        while True:
            try:
                stored = await self.services.store.get(self.subscription.bus, offset)
                break
            except (EventNotFound, BusNotFound):  # dropped by retention: nothing to send
                self._finish(offset)
                return
            except TideflowError as exc:  # the database is down: the event stays pending
                log.warning("subscription %s: reading offset %d failed: %s", self.id, offset, exc)
                await self.services.clock.sleep(1.0)
        await self._deliver(offset, stored.event, attempt, stored.trace)

    async def _deliver(
        self, offset: int, event: Mapping[str, Any], attempt: int, trace: str | None = None
    ) -> None:
        trace = trace or self._traces.pop(offset, None)
        if trace is not None and tracing.enabled():
            with tracing.deliver_span(self.id, self.subscription.bus, offset, trace):
                await self._deliver_once(offset, event, attempt)
        else:
            await self._deliver_once(offset, event, attempt)

    async def _deliver_once(self, offset: int, event: Mapping[str, Any], attempt: int) -> None:
        payload: Mapping[str, Any] = event
        if self.transform is not None:
            try:
                transformed = await self.transform.apply_bounded(event)
            except ExpressionLimitExceeded as exc:  # perhaps the machine's load: retried
                failed = Attempt(ok=False, retryable=True, reason=transform_error(exc))
                await self._failed(offset, event, attempt, failed)
                return
            except ExpressionError as exc:
                await self._dead_letter(offset, event, transform_error(exc))
                self._finish(offset)
                return
            if transformed is None:
                self._finish(offset)
                return
            payload = transformed
        result = await self._send(payload)
        if result.ok:
            self.tracker.delivered += 1
            self._finish(offset)
            return
        await self._failed(offset, event, attempt, result)

    async def _send(self, payload: Mapping[str, Any]) -> Attempt:
        """One attempt at the sink (or the connector's own delivery)."""
        if self._deliver_to is not None:
            return await self._deliver_to(payload)
        headers = self._headers
        if headers is None:
            try:
                headers = await self._resolve_headers()
            except (SecretUnavailable, ConfigurationError) as exc:  # the operator may fix it
                return Attempt(ok=False, retryable=True, reason=f"sink headers: {exc.message}")
        return await self.services.sender.send(
            self.sink, payload, self.timeout, pool=self.id, headers=headers
        )

    def forget_headers(self) -> None:
        """Resolve the headers' secrets again at the next delivery (a grant changed)."""
        if self.subscription.spec.headers:
            self._headers = None

    async def _resolve_headers(self) -> Mapping[str, str]:
        """The sink's headers with their secrets, granted to ``sink:<host>`` (kept while
        the subscription runs, until a grant changes; a changed value counts from its
        next start)."""
        spec = self.subscription.spec
        secrets = self.services.secrets
        if secrets is None:
            raise SecretUnavailable("this server gives no secrets to sinks", name="")
        resolved = await secrets.resolve(spec.secret_subject, dict(spec.headers))
        self._headers = {name: str(value) for name, value in resolved.items()}
        return self._headers

    async def _failed(
        self, offset: int, event: Mapping[str, Any], attempt: int, result: Attempt
    ) -> None:
        """Retry a failed attempt after its back-off, or dead-letter the event."""
        self.tracker.failed += 1
        if result.retryable and attempt <= self.policy.retry:
            delay = self.policy.backoff(attempt).total_seconds()
            self.awaiting[offset] = attempt + 1
            try:
                await self.services.schedule_retry(
                    self.id, offset, attempt + 1, delay, result.reason
                )
            except TideflowError as exc:  # no durable timer: wait here (lost on a restart)
                log.warning("subscription %s: retry timer not stored: %s", self.id, exc)
                await self.services.clock.sleep(delay)
                if self.awaiting.pop(offset, None) is not None:
                    await self._deliver(offset, event, attempt + 1)
            return
        tries = f"after {attempt} attempts" if attempt > 1 else "on the first attempt"
        await self._dead_letter(offset, event, f"{result.reason} {tries}")
        self._finish(offset)

    def _finish(self, offset: int) -> None:
        if offset > self.tracker.cursor:
            self.settled.add(offset)
        self.tracker.finish(offset)
        if self._starved and len(self.tracker.pending) <= self._low_water:
            self._starved = False  # the reader skips a starved worker and waits for this
            self._wake.set()


class ConsumerWorker(SubscriptionWorker):
    """Hands batches of matching events to an in-process consumer, one batch at a time."""

    def __init__(
        self,
        subscription: Subscription,
        filters: CompiledFilters,
        services: WorkerServices,
        wake: asyncio.Event,
        consumer: Consumer,
        retry_delay: float = 1.0,
    ) -> None:
        super().__init__(subscription, filters, services, wake)
        self.consumer = consumer
        self.retry_delay = retry_delay
        self._busy = False
        self._noted: list[int] = []  # the offsets this worker noted for the batch in flight

    async def close(self) -> None:
        """Cancel the batch in flight and forget the notes this worker made for it.

        A close is a stop or a hand-over of the subscription (its unit moved to another
        process), not a crash: its next owner hands the batch over whole again, instead
        of one event at a time counting a crash for each.
        """
        await super().close()
        noted, self._noted = self._noted, []
        if noted:
            try:
                await self.services.end_attempts(self.id, noted)
            except TideflowError as exc:  # left: handed over one at a time, a crash counted
                log.warning("subscription %s: forgetting its notes failed: %s", self.id, exc)

    def ready(self) -> bool:
        return not self._busy

    def accept(self, events: Sequence[StoredEvent]) -> None:
        if self._busy:
            return
        tracker = self.tracker
        batch: Batch = []
        traces: dict[int, str] = {}  # stays empty while tracing is off
        last = tracker.cursor
        for stored in events:
            if stored.offset <= tracker.cursor:
                continue
            last = stored.offset
            if self.matches(stored.event):
                batch.append((stored.offset, stored.event))
                if stored.trace is not None:
                    traces[stored.offset] = stored.trace
        if not batch:
            tracker.take(last)
            return
        tracker.start(batch[0][0])
        tracker.take(last)
        self._busy = True
        self._spawn(self._traced(batch, traces) if traces else self._consume(batch))

    async def _traced(self, batch: Batch, traces: Mapping[int, str]) -> None:
        """:meth:`_consume` inside the delivery spans continuing the events' traces."""
        with tracing.delivering(self.id, self.subscription.bus, traces):
            await self._consume(batch)

    async def _consume(self, batch: Batch) -> None:
        """Hand ``batch`` over until it is consumed; a poisoned event is dead-lettered.

        A batch that fails twice for a reason of its own (not the database being
        away) is handed over again one event at a time; an event that fails every
        attempt of the subscription's delivery policy (``retry`` + 1) is
        dead-lettered, and the events after it go on.

        An event that kills the process raises nothing here: each event handed over
        is noted in the database first and forgotten once done with, so a note still
        there when the event comes again is a crash. A batch handed over without a
        crash before is forgotten by the offset commit that passes it (the same
        statement, :meth:`Dispatcher.flush`), not by a round trip of its own: a
        process killed after the consumer returned and before that commit (at most
        the commit interval) counts one crash for the batch it hands over again.
        Such a batch goes one event at a time, each event's crashes counted
        durably; one that killed the process ``quarantine_after`` times is
        dead-lettered without being handed over again.
        """
        offsets = [offset for offset, _ in batch]
        fresh = await self._durably(lambda: self.services.begin_attempts(self.id, offsets))
        self._noted = offsets if fresh else []
        if fresh and len(batch) > 1 and await self._attempt(batch, attempts=2) is None:
            consumed = len(batch)  # the notes go with the offset commit that passes them
        else:  # one at a time: which event is poisoned?
            consumed = 0
            for one in batch:
                consumed += await self._consume_one(one, noted=fresh)
        self._noted = []
        self.tracker.delivered += consumed
        self._busy = False
        self.tracker.finish(batch[0][0])
        self._wake.set()

    async def _consume_one(self, one: tuple[int, Mapping[str, Any]], *, noted: bool) -> int:
        """Hand one event over (``noted``: by this process's batch, no crash to count); 1 if
        it was consumed, 0 if dead-lettered."""
        offset = one[0]
        crashes = 0
        if not noted:
            crashes = await self._durably(lambda: self.services.begin_attempt(self.id, offset))
        limit = self.services.quarantine_after
        if crashes >= limit:
            reason: str | None = (
                f"the process died {crashes} times while the consumer had this event "
                f"(TIDEFLOW_QUARANTINE_AFTER {limit}): not handed over again"
            )
            log.error("subscription %s: offset %d: %s", self.id, offset, reason)
        else:
            attempts = self.subscription.spec.delivery.retry + 1
            reason = await self._attempt([one], attempts=attempts)
        if reason is not None:
            await self._dead_letter(*one, reason)
        if not noted:  # after a crash: forgotten now, not counted again if the process dies
            await self._durably(lambda: self.services.end_attempts(self.id, [offset]))
        return 1 if reason is None else 0

    async def _durably(self, note: Callable[[], Awaitable[_T]]) -> _T:
        """``note()`` once the database takes it (an outage is waited for)."""
        while True:
            try:
                return await note()
            except TideflowError as exc:
                log.warning("subscription %s: noting an attempt failed, retrying: %s", self.id, exc)
                await self.services.clock.sleep(1.0)

    async def _attempt(self, batch: Batch, *, attempts: int) -> str | None:
        """Hand ``batch`` to the consumer until it returns (``None``) or has failed
        ``attempts`` times for a reason of its own (the last reason). A database that
        is away is waited for, however long: no event is at fault for it."""
        failures = outages = 0
        while True:
            try:
                await self.consumer(batch)
                return None
            except asyncio.CancelledError:
                raise
            except _TRANSIENT as exc:
                outages += 1
                log.warning("subscription %s: consumer failed, retrying: %s", self.id, exc)
                await self.services.clock.sleep(min(60.0, self.retry_delay * 2 ** (outages - 1)))
            except Exception as exc:
                failures += 1
                self.tracker.failed += 1
                log.exception(
                    "subscription %s: consumer failed on offsets %d-%d (%d of %d)",
                    self.id,
                    batch[0][0],
                    batch[-1][0],
                    failures,
                    attempts,
                )
                if len(batch) == 1 and (beyond := _beyond_limits(batch[0][1])) is not None:
                    return f"{beyond} (not retried: it always will be)"
                if failures >= attempts:
                    tries = f"after {attempts} attempts" if attempts > 1 else "on the first attempt"
                    return f"{type(exc).__name__}: {exc} {tries}"
                await self.services.clock.sleep(min(60.0, self.retry_delay * 2 ** (failures - 1)))


def _beyond_limits(event: Mapping[str, Any]) -> str | None:
    """Why ``event`` is beyond today's value limits (stored before them, or under higher
    ones), if it is: the reason a consumer fails on it, and will every time."""
    try:
        limits.check_value(event, "the event")
    except ValueLimitExceeded as exc:
        return exc.message
    return None


class BusReader:
    """Reads one bus for all its subscriptions; the bus's only task.

    Args:
        bus: The bus.
        store: The event store.
        batch_size: Events per read.
        wait_timeout: Longest wait for a notification before reading again.
    """

    def __init__(
        self, bus: str, store: EventStore, *, batch_size: int = 500, wait_timeout: float = 5.0
    ) -> None:
        self.bus = bus
        self.store = store
        self.workers: dict[str, SubscriptionWorker] = {}
        self.wake = asyncio.Event()
        self._batch_size = batch_size
        self._wait_timeout = wait_timeout
        self._buffer: list[StoredEvent] = []
        self._offsets: list[int] = []
        self._buffer_after = -1
        self._waiters: Waiters | None = None
        self._heads: Heads | None = None
        self._follow: Callable[[str, int, int], Awaitable[list[StoredEvent]]] = store.read
        self._timer: asyncio.TimerHandle | None = None
        self._due = False  # the timer fired: read once, whatever the heads say (a safety net)
        self._read_lately = False  # read since the timer last fired

    def start(self, supervisor: Supervisor) -> None:
        """Start the reading task ``bus:<bus>`` under ``supervisor`` (woken by the store's
        notifications when it has :class:`~tideflow.notify.Waiters`, and skipping the reads
        its :class:`~tideflow.notify.Heads` say would find nothing)."""
        waiters = getattr(self.store, "waiters", None)
        if isinstance(waiters, Waiters):
            self._waiters = waiters
            # The notifications set ``wake`` itself: one event for every wake-up, so a
            # wait is one future, not a task per source and a timeout per wait.
            waiters.watch(self.bus, self.wake)
            heads = getattr(self.store, "heads", None)
            self._heads = heads if isinstance(heads, Heads) else None
            # events this process committed come from memory (PostgresEventStore.follow)
            self._follow = getattr(self.store, "follow", self.store.read)
        supervisor.spawn(f"bus:{self.bus}", self.run)

    async def stop(self, supervisor: Supervisor) -> None:
        """Stop reading (the workers are closed by the dispatcher)."""
        await supervisor.cancel(f"bus:{self.bus}")
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._waiters is not None:
            self._waiters.unwatch(self.bus, self.wake)
            self._waiters = None

    def forget_buffer(self) -> None:
        """Drop the buffered events (after a reset, reads start afresh)."""
        self._buffer, self._offsets, self._buffer_after = [], [], -1

    async def run(self) -> None:
        """Read and hand over until cancelled."""
        while True:
            self.wake.clear()  # before the read: a commit after it sets it again
            ready = [w for w in self.workers.values() if w.ready()]
            if not ready:
                await self.wake.wait()
                continue
            after = min(w.tracker.cursor for w in ready)
            if not self._due and self._read_up_to(after):
                # Nothing committed after ``after`` but what a notification not yet arrived
                # announces: no read that would come back empty (one per event otherwise).
                await self._wait(after)
                continue
            self._due = False
            try:
                events = await self._read(after)
            except BusNotFound:  # until it is created (its NOTIFY wakes us), or a while
                await self._wait(0 if self._waiters is not None else None)
                continue
            except TideflowError as exc:
                log.warning("bus %s: read failed, retrying: %s", self.bus, exc)
                await self._wait(None)
                continue
            if not events:
                await self._wait(after)
                continue
            for worker in ready:
                worker.accept(events)
            await asyncio.sleep(0)  # let the deliveries just started get going

    def _read_up_to(self, after: int) -> bool:
        """Whether every event committed so far is at or before ``after``: the bus's last
        announced offset (see :class:`~tideflow.notify.Heads`), nothing buffered past it."""
        if self._heads is None or (self._offsets and after < self._offsets[-1]):
            return False
        head = self._heads.head(self.bus)
        return head is not None and after >= head

    async def _read(self, after: int) -> list[StoredEvent]:
        if self._offsets and self._buffer_after <= after < self._offsets[-1]:
            start = bisect.bisect_right(self._offsets, after)
            return self._buffer[start:]
        self._read_lately = True
        events = await self._follow(self.bus, after, self._batch_size)
        self._buffer = events
        self._offsets = [e.offset for e in events]
        self._buffer_after = after
        return events

    async def _wait(self, after: int | None) -> None:
        """Until an event after ``after`` commits (``None``: a while), or a worker wakes us."""
        if after is not None and self._waiters is not None:
            # The NOTIFY itself says events committed (no query), and sets ``wake``.
            self._arm(self._waiters)
            await self.wake.wait()
            return
        waiter: Awaitable[Any]
        if after is None:
            waiter = asyncio.sleep(self._wait_timeout)
        else:
            waiter = self.store.wait_for(self.bus, after, self._wait_timeout)
        _, waited = await first_done(self.wake.wait(), waiter)
        if not waited.cancelled() and waited.exception() is not None:
            log.debug("bus %s: wait failed: %s", self.bus, waited.exception())

    def _arm(self, waiters: Waiters) -> None:
        """Make sure the reader's timer runs: it reads once whatever the heads say when a
        whole ``wait_timeout`` passed without a read (every ``poll_interval`` while the
        listener is down, to poll).

        One timer per reader, kept across waits (a wait used to arm and cancel one of its
        own): it fires every ``wait_timeout`` seconds, however many notifications woke
        the reader meanwhile.
        """
        seconds = self._tick(waiters)
        loop = asyncio.get_running_loop()
        if self._timer is not None:
            if self._timer.when() <= loop.time() + seconds:
                return
            self._timer.cancel()
        self._timer = loop.call_later(seconds, self._timed_out, waiters)

    def _tick(self, waiters: Waiters) -> float:
        if waiters.connected.is_set():
            return self._wait_timeout
        return min(self._wait_timeout, waiters.poll_interval)

    def _timed_out(self, waiters: Waiters) -> None:
        self._timer = asyncio.get_running_loop().call_later(
            self._tick(waiters), self._timed_out, waiters
        )
        if self._read_lately and waiters.connected.is_set():
            self._read_lately = False  # notifications keep it reading: no safety read
            return
        self._due = True
        self.wake.set()
