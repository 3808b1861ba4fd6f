"""The dispatcher: one asyncio service that feeds every subscription from its bus.

- Each bus with running subscriptions has one reading task
  (:class:`~tideflow.triggers._workers.BusReader`), started from the lowest
  committed offset of its subscriptions and woken by the event store's
  NOTIFY (``EventStore.wait_for``). Subscriptions are objects, not tasks, so
  thousands of them cost no more than their entries in a dict.
- HTTP subscriptions deliver in CloudEvents binary mode
  (:mod:`tideflow.triggers.delivery`). A retryable failure becomes a durable
  timer of kind :data:`RETRY_KIND` in the timer service: after a restart the
  dispatcher finds the pending retry timers and the retries go on with their
  attempt numbers and back-off (the event is not sent again in between).
- Internal subscriptions hand batches to an in-process :data:`Consumer`
  registered with :meth:`Dispatcher.attach` (how workflows subscribe).
- Offsets are committed (every ``commit_interval`` seconds and on stop) only
  past a contiguous prefix of finished events: at-least-once delivery. An offset
  that moved only past events a subscription's filters skipped (nothing delivered,
  failed or dead-lettered) is committed every ``skipped_commit_interval`` seconds:
  a subscription that matches little, on a busy bus, is not one row updated per
  commit interval (after a crash it reads those skipped events again, and skips
  them again).

Several processes on one database share the subscriptions: each one is a
unit ``subscription:<id>`` of the cluster (:mod:`tideflow.cluster`), run only
by the process holding its lease (:meth:`Dispatcher.gained`,
:meth:`Dispatcher.lost`), and its offset commits carry the lease's fencing
token, so a process that lost a subscription cannot move its offset. Every
change (created, paused, resumed, reset, deleted) is announced to the other
processes at once (:meth:`~tideflow.cluster.membership.Ownership.changed`);
each compares subscription versions when told and on every heartbeat, and
restarts the ones it runs that changed. A sink's subscription attached with
:meth:`Dispatcher.attach_delivery` runs wherever it is attached: its
connector is the unit. Without a cluster (:data:`~tideflow.cluster.membership.SOLE`)
the dispatcher runs every subscription and checks for changes every
``sync_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final

import asyncpg

from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.cluster.membership import SOLE, Ownership
from tideflow.db import DB_ERRORS
from tideflow.errors import AlreadyExists, BusNotFound, InvalidArgument, TideflowError
from tideflow.eventstore.store import EventStore
from tideflow.ids import new_sortable_id
from tideflow.secrets import SecretAccess, ref_names
from tideflow.supervise import Supervisor, TaskSet
from tideflow.timer.records import TimerRecord, TimerState
from tideflow.timer.service import TimerService
from tideflow.triggers._workers import (
    Batch,
    BusReader,
    Consumer,
    ConsumerWorker,
    Deliver,
    DeliveryWorker,
    SubscriptionWorker,
)
from tideflow.triggers.delivery import HttpSender
from tideflow.triggers.gateway import PostgresSubscriptions, Progress
from tideflow.triggers.subscriptions import (
    Subscription,
    SubscriptionKind,
    SubscriptionSpec,
    SubscriptionState,
    check_credentials,
    parse_spec,
)

__all__ = ["RETRY_KIND", "UNIT_PREFIX", "Batch", "Consumer", "Deliver", "Dispatcher"]

log = logging.getLogger("tideflow.triggers")

RETRY_KIND: Final = "tideflow.delivery_retry"
"""Kind of the timers that hold a delivery retry: ``{subscription, offset, attempt, reason}``."""

UNIT_PREFIX: Final = "subscription:"
"""A subscription's unit in the cluster is ``subscription:<id>``."""

_HANDOVER_ERRORS: tuple[type[BaseException], ...] = (TideflowError, *DB_ERRORS)
"""What the last commit of a subscription handed over may raise (the database is away)."""

RETRY_BOUNCE: Final = 0.2
"""Seconds before a retry fired in a process that does not run its subscription fires again
(the timer service of the process that does may take it then)."""


class Dispatcher:
    """Runs the subscriptions: reads buses, filters, transforms, delivers, commits.

    Args:
        store: The event store.
        subscriptions: The subscriptions gateway.
        timers: The timer service for durable retries (register before it starts);
            without one, retries wait in memory and do not survive a restart.
        clock: Time of commits and of in-memory retries.
        sender: The HTTP sender (one with its own connection pool by default).
        secrets: Resolves the secret references of sinks' headers, for secrets
            granted to ``sink:<host>`` (``None``: no secret is available).
        batch_size: Events per read of a bus.
        commit_interval: Seconds between offset commits.
        skipped_commit_interval: Seconds between commits of offsets that moved only past
            skipped events (rounded to a multiple of ``commit_interval``).
        wait_timeout: Longest wait on a bus before reading it again.
        consumer_retry_delay: First wait before an internal consumer's failed batch is
            handed over again (doubles, up to a minute).
        sync_interval: Seconds between checks of changes made by other processes, without
            a cluster (a cluster checks on every heartbeat and when told).
        ownership: Which subscriptions this process runs (the cluster; without one, all).
    """

    def __init__(
        self,
        store: EventStore,
        subscriptions: PostgresSubscriptions,
        timers: TimerService | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        sender: HttpSender | None = None,
        secrets: SecretAccess | None = None,
        batch_size: int = 500,
        commit_interval: float = 0.05,
        skipped_commit_interval: float = 1.0,
        wait_timeout: float = 5.0,
        consumer_retry_delay: float = 1.0,
        sync_interval: float = 1.0,
        ownership: Ownership = SOLE,
        quarantine_after: int = 3,
    ) -> None:
        self.store = store
        self.quarantine_after = quarantine_after
        """Crashes while a consumer had an event before it is dead-lettered."""
        self.subscriptions = subscriptions
        self.timers = timers
        self.clock = clock
        self.sender = sender or HttpSender()
        self.secrets = secrets
        self._batch_size = batch_size
        self._commit_interval = commit_interval
        self._skipped_every = max(1, round(skipped_commit_interval / commit_interval))
        self._wait_timeout = wait_timeout
        self._consumer_retry_delay = consumer_retry_delay
        self._readers: dict[str, BusReader] = {}
        self._workers: dict[str, SubscriptionWorker] = {}
        self._consumers: dict[str, Consumer] = {}
        self._deliverers: dict[str, Deliver] = {}
        self._lock = asyncio.Lock()
        self.supervisor = Supervisor("dispatcher", clock=clock)
        """Owns the commit and sync loops and one reader per bus (``/healthz`` reports them)."""
        self._sync_interval = sync_interval
        self.ownership = ownership
        self._tokens: dict[str, int | None] = {}  # the fencing token each worker started under
        self._memory_retries = TaskSet("in-memory retry", log)
        if timers is not None:
            timers.register(RETRY_KIND, self._on_retry_timers)

    # -- lifecycle ----------------------------------------------------------------

    prefix = UNIT_PREFIX

    async def start(self) -> None:
        """Start the commit loop; without a cluster, every active subscription and the sync
        loop (a cluster starts the ones this process owns through :meth:`gained`)."""
        if self.ownership.standalone:
            await self._start_all()
            self.supervisor.spawn("sync", self._sync_loop)
        self.supervisor.spawn("commit", self._flush_loop)

    async def stop(self) -> None:
        """Stop reading and delivering; commit what finished; let another process lead."""
        await self.supervisor.cancel("commit")
        await self.supervisor.cancel("sync")
        await self._memory_retries.cancel()
        async with self._lock:
            for worker_id in list(self._workers):
                await self._halt(worker_id)
        await self.supervisor.stop()  # the readers of subscriptions halted above are gone
        await self.sender.aclose()

    async def _start_all(self) -> None:
        """Start every active subscription (no cluster: this process runs them all)."""
        awaiting = await self._pending_retries()
        async with self._lock:
            for sub in await self.subscriptions.list():
                if sub.state is SubscriptionState.ACTIVE and sub.id not in self._workers:
                    self._run(sub, awaiting.get(sub.id))

    # -- the cluster's UnitOwner ------------------------------------------------------

    def unit(self, subscription_id: str) -> str:
        """The cluster unit of a subscription."""
        return UNIT_PREFIX + subscription_id

    async def refresh(self) -> set[str]:
        """Follow changes made elsewhere; the units: every active subscription this
        process could run (HTTP ones, and internal ones whose consumer is attached here)."""
        versions = await self.sync()
        return {
            self.unit(sid)
            for sid, (kind, state, _) in versions.items()
            if state is SubscriptionState.ACTIVE
            and (kind is SubscriptionKind.HTTP or sid in self._consumers)
        }

    async def gained(self, unit: str, token: int) -> None:
        """Run the subscription of ``unit`` (this process now owns it), from its committed
        offset, with the retries pending for it."""
        sid = unit.removeprefix(UNIT_PREFIX)
        awaiting = await self._pending_retries(sid)
        async with self._lock:
            sub = await self.subscriptions.find(sid)
            if sub is not None and sub.state is SubscriptionState.ACTIVE:
                await self._halt(sid)  # a stale worker of a previous ownership, if any
                self._run(sub, awaiting.get(sid))

    async def lost(self, unit: str) -> None:
        """Stop the subscription of ``unit`` (another process runs it now); commit what it
        finished (refused by the fencing token if it was taken already)."""
        sid = unit.removeprefix(UNIT_PREFIX)
        async with self._lock:
            if sid in self._deliverers:
                return  # its connector is the unit
            try:
                await self._halt(sid)
            except _HANDOVER_ERRORS as exc:
                log.warning("committing %s on hand-over failed: %s", sid, exc)

    async def _sync_loop(self) -> None:
        while True:
            await self.clock.sleep(self._sync_interval)
            try:
                await self.sync()
            except TideflowError as exc:
                log.warning("checking subscriptions failed, will retry: %s", exc)
            except Exception:  # a bug must not stop the checks for good
                log.exception("checking subscriptions failed, will retry")

    async def sync(self) -> dict[str, tuple[SubscriptionKind, SubscriptionState, int]]:
        """Follow changes made by other processes: restart the subscriptions running here
        that changed, start the active ones this process owns that do not run.

        Returns:
            Every subscription's kind, state and version.
        """
        versions = await self.subscriptions.versions()
        async with self._lock:
            for sid, worker in list(self._workers.items()):
                found = versions.get(sid)
                if found is None or found[1:] != (SubscriptionState.ACTIVE, worker.tracker.version):
                    await self._halt(sid)
            for sid, (kind, state, _) in versions.items():
                if state is not SubscriptionState.ACTIVE or sid in self._workers:
                    continue
                attached = sid in self._consumers or sid in self._deliverers
                here = sid in self._deliverers or self.ownership.owns(self.unit(sid))
                if here and (kind is SubscriptionKind.HTTP or attached):
                    sub = await self.subscriptions.find(sid)
                    if sub is not None and sub.state is SubscriptionState.ACTIVE:
                        self._run(sub)
        return versions

    async def __aenter__(self) -> Dispatcher:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    # -- subscriptions (the API) --------------------------------------------------

    async def create(self, body: Any, subscription_id: str | None = None) -> Subscription:
        """Validate and create an HTTP subscription and start delivering.

        Raises:
            InvalidArgument, InvalidFilter: The body is invalid (with its path).
            BusNotFound: The bus does not exist.
            AlreadyExists: The id is taken.
        """
        limit = timedelta(seconds=self.sender.timeout_limit)
        spec = parse_spec(body, max_timeout=limit)  # compiles the filters to check them
        await self._check_secrets(spec)
        committed = await self._start_offset(spec)
        async with self._lock:
            sub = await self.subscriptions.create(
                subscription_id or new_sortable_id(),
                spec,
                committed_offset=committed,
                now=self.clock.now(),
            )
            self._run(sub)
        self.ownership.changed()
        return sub

    async def _check_secrets(self, spec: SubscriptionSpec) -> None:
        """No credential in clear, and every secret its headers name granted to its sink.

        Raises:
            InvalidArgument: Naming the header (or the sink) and the secret.
        """
        check_credentials(spec)
        names = ref_names(spec.headers, "headers")
        if not names:
            return
        denied = await self.secrets.refused(spec.secret_subject, names) if self.secrets else names
        if denied:
            subject = spec.secret_subject
            raise InvalidArgument(
                f"headers: secret {denied[0]!r} is not granted to {subject!r}: the operator "
                f"grants it with tideflow serve --grant-secret '{subject}={denied[0]}' "
                "(or POST /secrets/grants)",
                argument="headers",
            )

    def grants_changed(self) -> None:
        """Secret grants changed (any server): sinks resolve their headers' secrets again."""
        for worker in self._workers.values():
            if isinstance(worker, DeliveryWorker):
                worker.forget_headers()

    async def get(self, subscription_id: str) -> tuple[Subscription, int | None]:
        """A subscription with fresh figures, and the head offset of its bus (``None`` if gone).

        Raises:
            SubscriptionNotFound: No such subscription.
        """
        await self.flush()
        sub = await self.subscriptions.get(subscription_id)
        try:
            head = await self.subscriptions.head(sub.bus)
        except BusNotFound:
            head = None
        return sub, head

    def committed(self, subscription_id: str) -> int | None:
        """The committed offset of a running subscription as this process knows it (it reaches
        the database within ``commit_interval``); ``None`` when it is not running here."""
        worker = self._workers.get(subscription_id)
        return None if worker is None else worker.tracker.committed

    async def list_all(self) -> list[tuple[Subscription, int | None]]:
        """Every subscription with the head offset of its bus."""
        await self.flush()
        subs = await self.subscriptions.list()
        heads = await self.subscriptions.heads([s.bus for s in subs])
        return [(s, heads.get(s.bus)) for s in subs]

    async def delete(self, subscription_id: str) -> None:
        """Stop and delete a subscription (its pending retries are dropped when they fire).

        Raises:
            SubscriptionNotFound: No such subscription.
        """
        async with self._lock:
            await self._halt(subscription_id)
            await self.subscriptions.delete(subscription_id)
            self._consumers.pop(subscription_id, None)
            self._deliverers.pop(subscription_id, None)
        self.ownership.changed()

    async def pause(self, subscription_id: str) -> Subscription:
        """Stop delivering; in-flight deliveries are abandoned and redone on resume."""
        async with self._lock:
            await self._halt(subscription_id)
            sub = await self.subscriptions.set_state(
                subscription_id, SubscriptionState.PAUSED, self.clock.now()
            )
        self.ownership.changed()
        return sub

    async def resume(self, subscription_id: str) -> Subscription:
        """Deliver again from the committed offset."""
        async with self._lock:
            sub = await self.subscriptions.set_state(
                subscription_id, SubscriptionState.ACTIVE, self.clock.now()
            )
            if sub.id not in self._workers:
                self._run(sub)
        self.ownership.changed()
        return sub

    async def reset(
        self, subscription_id: str, *, offset: int | None = None, time: datetime | None = None
    ) -> Subscription:
        """Replay (or skip): deliver next the event at ``offset``, or the first stored at ``time``.

        Raises:
            InvalidArgument: Neither or both given, or a negative offset.
            SubscriptionNotFound: No such subscription.
        """
        if (offset is None) == (time is None):
            raise InvalidArgument("reset needs exactly one of offset or time", argument="offset")
        if offset is not None and offset < 0:
            raise InvalidArgument("offset must be >= 0", argument="offset")
        async with self._lock:
            sub = await self.subscriptions.get(subscription_id)
            if time is not None:
                committed = await self.subscriptions.offset_before(sub.bus, time)
            else:
                committed = max(0, (offset or 0) - 1)
            await self._halt(subscription_id)
            sub = await self.subscriptions.set_offset(subscription_id, committed, self.clock.now())
            if sub.state is SubscriptionState.ACTIVE:
                self._run(sub)
        self.ownership.changed()
        return sub

    # -- internal consumers -------------------------------------------------------

    async def attach(
        self,
        subscription_id: str,
        bus: str,
        consumer: Consumer,
        *,
        filters: list[Mapping[str, Any]] | None = None,
        start: str | int = "latest",
    ) -> Subscription:
        """Run an in-process consumer on ``bus``; its offset is kept under ``subscription_id``.

        The first attach creates the subscription at ``start``; later ones (after a
        restart) continue from its committed offset. The consumer gets batches of
        matching ``(offset, event)`` in offset order, one batch at a time, and the
        offset is committed after it returns; if it raises, the batch is retried.

        Raises:
            InvalidArgument, InvalidFilter: Bad bus name, filters or start.
            BusNotFound: A new subscription's bus does not exist.
        """
        body: dict[str, Any] = {"bus": bus, "filters": filters or [], "from": start}
        spec = parse_spec(body, internal=True)
        async with self._lock:
            sub = await self._internal(subscription_id, spec)
            await self._halt(subscription_id)
            self._consumers[subscription_id] = consumer
            if sub.state is SubscriptionState.ACTIVE:
                self._run(sub)
            return sub

    async def detach(self, subscription_id: str) -> None:
        """Stop an in-process consumer or deliverer, keeping its committed offset."""
        async with self._lock:
            await self._halt(subscription_id)
            self._consumers.pop(subscription_id, None)
            self._deliverers.pop(subscription_id, None)

    async def attach_delivery(
        self, subscription_id: str, body: Mapping[str, Any], deliver: Deliver
    ) -> Subscription:
        """Deliver ``body``'s subscription (``bus``, ``filters``, ``transform``, ``delivery``,
        ``from``; no ``sink``) through ``deliver``, one event per call, with the retries,
        back-off, dead letter and ordering of an HTTP subscription (a connector's sink).

        The first attach creates the (internal) subscription; later ones continue from its
        committed offset with the stored spec.

        Raises:
            InvalidArgument, InvalidFilter: The body is invalid (with its path).
            BusNotFound: A new subscription's bus does not exist.
        """
        limit = timedelta(seconds=self.sender.timeout_limit)
        spec = parse_spec(body, internal=True, max_timeout=limit)
        async with self._lock:
            sub = await self._internal(subscription_id, spec)
            await self._halt(subscription_id)
            self._deliverers[subscription_id] = deliver
            if sub.state is SubscriptionState.ACTIVE:
                self._run(sub)
            return sub

    async def ensure_internal(self, subscription_id: str, body: Mapping[str, Any]) -> Subscription:
        """Create ``body``'s internal subscription now, at its ``from`` position, if it does
        not exist, without running it: a connector's sink created through the API takes
        every event appended after the call, even while the process that will deliver them
        (:meth:`attach_delivery`, where the cluster plans it) has not attached yet.

        Raises:
            InvalidArgument, InvalidFilter: The body is invalid (with its path).
            BusNotFound: The bus does not exist.
        """
        limit = timedelta(seconds=self.sender.timeout_limit)
        spec = parse_spec(body, internal=True, max_timeout=limit)
        async with self._lock:
            return await self._internal(subscription_id, spec)

    async def _internal(self, subscription_id: str, spec: SubscriptionSpec) -> Subscription:
        """The internal subscription ``subscription_id``, created at ``spec.start`` if new."""
        sub = await self.subscriptions.find(subscription_id)
        if sub is not None:
            return sub
        committed = await self._start_offset(spec)
        with contextlib.suppress(AlreadyExists):
            await self.subscriptions.create(
                subscription_id,
                spec,
                kind=SubscriptionKind.INTERNAL,
                committed_offset=committed,
                now=self.clock.now(),
            )
        return await self.subscriptions.get(subscription_id)

    def in_flight(self, subscription_id: str) -> int | None:
        """Events of a running subscription taken and not finished (``None``: not running
        here)."""
        worker = self._workers.get(subscription_id)
        return None if worker is None else worker.in_flight

    # -- committing ---------------------------------------------------------------

    async def flush(self, *, skipped: bool = True) -> None:
        """Commit the offsets and counters of every running subscription now (``skipped``:
        also offsets that moved only past skipped events)."""
        async with self._lock:
            await self._flush(list(self._workers.values()), skipped=skipped)

    async def _flush(self, workers: list[SubscriptionWorker], *, skipped: bool = True) -> None:
        progress = [
            (w, p) for w in workers if (p := w.tracker.progress(w.id, skipped=skipped)) is not None
        ]
        if not progress:
            return
        fenced = [self._fenced(p) for _, p in progress]
        try:
            await self.subscriptions.commit(fenced, self.clock.now())
        except BaseException:  # a failed write, or stop() cancelling the flush loop mid-commit
            for worker, item in progress:  # written with the next flush (stop's final one)
                worker.tracker.restore(item)
            raise

    def _fenced(self, progress: Progress) -> Progress:
        """``progress`` with the lease its worker runs under (none: not fenced)."""
        token = self._tokens.get(progress.subscription_id)
        if token is None:
            return progress
        return replace(progress, unit=self.unit(progress.subscription_id), token=token)

    async def _flush_loop(self) -> None:
        ticks = 0
        while True:
            await self.clock.sleep(self._commit_interval)
            ticks += 1
            try:
                await self.flush(skipped=ticks % self._skipped_every == 0)
            except Exception as exc:  # the database is down: keep delivering, commit later
                log.warning("committing offsets failed, will retry: %s", exc)

    # -- running ------------------------------------------------------------------

    def _run(self, sub: Subscription, awaiting: Mapping[int, int] | None = None) -> None:
        consumer = self._consumers.get(sub.id)
        deliver = self._deliverers.get(sub.id)
        if sub.kind is SubscriptionKind.INTERNAL and consumer is None and deliver is None:
            return  # its code is not attached in this process (yet)
        unit = self.unit(sub.id)
        if deliver is None and not self.ownership.owns(unit):
            return  # another process runs it (or will: the cluster plans it)
        self._tokens[sub.id] = None if deliver is not None else self.ownership.token(unit)
        reader = self._readers.get(sub.bus)
        if reader is None:
            reader = BusReader(
                sub.bus, self.store, batch_size=self._batch_size, wait_timeout=self._wait_timeout
            )
            self._readers[sub.bus] = reader
            reader.start(self.supervisor)
        filters = sub.spec.compiled_filters()
        worker: SubscriptionWorker
        if consumer is not None:
            worker = ConsumerWorker(
                sub, filters, self, reader.wake, consumer, self._consumer_retry_delay
            )
        else:
            worker = DeliveryWorker(sub, filters, self, reader.wake, awaiting, deliver)
        self._workers[sub.id] = worker
        reader.workers[sub.id] = worker
        reader.forget_buffer()
        reader.wake.set()

    async def _halt(self, subscription_id: str) -> None:
        """Stop a worker (under the lock) and commit what it finished."""
        worker = self._workers.pop(subscription_id, None)
        if worker is None:
            return
        try:
            await self._stop_worker(worker)
        finally:
            self._tokens.pop(subscription_id, None)

    async def _stop_worker(self, worker: SubscriptionWorker) -> None:
        subscription_id = worker.id
        reader = self._readers.get(worker.subscription.bus)
        if reader is not None:
            reader.workers.pop(subscription_id, None)
            if not reader.workers:
                del self._readers[reader.bus]
                await reader.stop(self.supervisor)
        await worker.close()
        await self._flush([worker])

    async def _start_offset(self, spec: SubscriptionSpec) -> int:
        head = await self.subscriptions.head(spec.bus)  # BusNotFound for a missing bus
        if spec.start == "latest":
            return head
        if spec.start == "earliest":
            return 0
        return max(0, int(spec.start) - 1)

    # -- the WorkerServices protocol (used by workers) --------------------------------------

    async def schedule_retry(
        self, subscription_id: str, offset: int, attempt: int, delay: float, reason: str
    ) -> None:
        """Try again after ``delay`` seconds: a durable timer, or a task without timers."""
        payload = {
            "subscription": subscription_id,
            "offset": offset,
            "attempt": attempt,
            "reason": reason,
        }
        if self.timers is not None:
            await self.timers.add_after(RETRY_KIND, delay, payload)
            return
        # Tracked, not supervised: one sleep and a hand-over that cannot fail; stop() cancels it.
        self._memory_retries.spawn(self._retry_in_memory(payload, delay))

    async def _retry_in_memory(self, payload: dict[str, Any], delay: float) -> None:
        await self.clock.sleep(delay)
        self._retry(payload)

    async def begin_attempts(self, subscription_id: str, offsets: Sequence[int]) -> bool:
        """Note events as handed to a consumer; ``False`` if one was noted already."""
        return await self.subscriptions.begin_attempts(subscription_id, offsets)

    async def begin_attempt(self, subscription_id: str, offset: int) -> int:
        """Note one event as handed over; how many attempts before never finished."""
        return await self.subscriptions.begin_attempt(subscription_id, offset)

    async def end_attempts(self, subscription_id: str, offsets: Sequence[int]) -> None:
        """Forget events a consumer finished with."""
        await self.subscriptions.end_attempts(subscription_id, offsets)

    async def dead_letter(self, bus: str, event: Mapping[str, Any]) -> None:
        """Append to the dead-letter bus, creating it on first use."""
        try:
            await self.store.append(bus, [event])
        except BusNotFound:
            with contextlib.suppress(AlreadyExists):
                await self.store.create_bus(bus)
            await self.store.append(bus, [event])

    async def _on_retry_timers(self, timers: list[TimerRecord], conn: asyncpg.Connection) -> None:
        """The timer handler: hand each due retry to its worker (the delivery runs outside).

        A retry of a subscription another process runs fires again shortly (that process's
        timer service may take it); one of a subscription nobody runs is dropped: its next
        owner redelivers from the committed offset.
        """
        for timer in timers:
            sid = str(timer.payload.get("subscription"))
            if sid in self._workers or not self._runs_elsewhere(sid):
                self._retry(timer.payload)
            elif self.timers is not None:
                await self.timers.add_after(RETRY_KIND, RETRY_BOUNCE, dict(timer.payload))

    def _runs_elsewhere(self, subscription_id: str) -> bool:
        return self.ownership.elsewhere(self.unit(subscription_id))

    def _retry(self, payload: Mapping[str, Any]) -> None:
        worker = self._workers.get(str(payload.get("subscription")))
        if not isinstance(worker, DeliveryWorker):
            return  # deleted, paused or reset: it redelivers from its committed offset
        worker.retry(int(payload["offset"]), int(payload["attempt"]))

    async def _pending_retries(self, only: str | None = None) -> dict[str, dict[int, int]]:
        """Retry timers still pending from before a restart (or a move): subscription ->
        offset -> attempt (of ``only`` when given)."""
        if self.timers is None:
            return {}
        found: dict[str, dict[int, int]] = {}
        records = await self.timers.list_timers(
            kind=RETRY_KIND, state=TimerState.PENDING, limit=1_000_000
        )
        for record in records:
            payload = record.payload
            if only is not None and payload.get("subscription") != only:
                continue
            by_offset = found.setdefault(str(payload["subscription"]), {})
            by_offset[int(payload["offset"])] = int(payload["attempt"])
        return found
