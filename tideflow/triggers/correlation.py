"""Workflows as subscribers: start instances from events and resume the waiting ones.

:class:`WorkflowSubscriber` is one in-process consumer of the dispatcher
(internal subscription :data:`SUBSCRIPTION_ID` on the default bus). For each
event, in offset order:

1. **Starts.** Every deployed workflow whose start state waits for the
   event's type (:mod:`tideflow.triggers.workflow_events`) gets a new instance
   (``exclusive: true``), or keeps the event in a durable partial set keyed by
   its correlation values and gets an instance once the set is complete
   (``exclusive: false``; crash-safe and bounded by ``eventTimeout``, see
   :mod:`tideflow.triggers.start_sets`). The instance id is derived from the event's offset,
   so a batch handed over again starts nothing twice. The starting events go
   to the instance's *inbox* and are delivered when its first wait exists.
2. **Waiting instances.** The runtime's wait index (its port
   :class:`~tideflow.runtime.waits.EventWaits`: the subscriber touches no
   table of the runtime) is looked up by ``(type, correlation key, source)``
   -- one indexed query per batch, not a scan. A wait for any of its
   events is answered with the first matching event
   (:meth:`DurableRuntime.deliver_events`); a wait for all of them keeps each
   event in a durable partial set until the last one arrives. Under the SonataFlow
   dialect an event whose ``kogitoprocrefid`` names an instance of a dialect workflow is
   that instance's only: it is looked up by the instance id instead (its open waits for
   the type, or none: the event is dropped, as SonataFlow drops it).
3. **Early events.** An event of a consumed type that no instance waits for
   yet is kept (``tideflow_correlation_pending``, for ``pending_seconds``).
   When an instance starts waiting (the index NOTIFYs channel
   :data:`CHANNEL`), the kept events that arrived after the instance started
   are delivered to it: events are consumed from the instance's start (the
   bus head when it was created; for an instance an event started, that
   event's offset, since a source may commit the next ones before the start).

Deploys and deletes recompile a workflow's subscriptions: at once for this
process's registry (its ``on_change`` callback), and on the NOTIFY channel
``tideflow_registry`` for the other processes' (after a reconnect of the
listener, every workflow is recompiled: notifications may have been lost).
An event ingested right after a deploy through another process must not be
handled before that deploy is heard of. The registry's channel is heard on the
event store's LISTEN connection, beside the bus's own notifications (``<bus>
<last offset>``): PostgreSQL delivers one connection's notifications in commit
order, so once the bus's notification for an offset was heard, every deploy
committed before that event was heard too (the *fence*). A batch within the
fence recompiles only what was announced; a batch read ahead of its
notification (under load, or while the listener is down or just reconnected)
compares the registry's fingerprint first (one small query) and recompiles
what changed.

Partitions: the subscriber's work is :data:`PARTITIONS` internal subscriptions
of the bus (``tideflow.workflows``, ``tideflow.workflows.1``, ...), each a unit
of the cluster with its own offset and fencing token, so several processes
share it. Each partition reads the whole bus and, for each event:

- an exclusive start is made by the partition :func:`partition_of` its instance
  id (derived from the event's offset) names: one partition per start, and the
  same one again when a batch is handed over again (the id makes a second start
  a no-op anyway);
- everything that depends on the order of events -- answering waits, keeping
  events, non-exclusive start sets, their sweeps -- is partition 0's
  (``tideflow.workflows``), in offset order as before.

A new wait is answered from its inbox and from kept events by the process that
owns the partition of its instance (the others would race it for the same
rows; the database keeps a wait answered once and kept events in order, as it
does between the consuming batch and the new waits within one process). A
process that takes a partition over sweeps the open waits first.

See ``docs/events.md``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

import asyncpg

from tideflow import tracing
from tideflow.clock import Clock
from tideflow.errors import StoreError, TideflowError, WorkflowNotFound
from tideflow.eventstore.store import DEFAULT_BUS
from tideflow.notify import CONNECTION_ERRORS, Listener, Waiters
from tideflow.runtime.engine import InstanceEngine
from tideflow.runtime.gateway import REGISTRY_CHANNEL, PostgresRegistry
from tideflow.runtime.rows import InstanceRow
from tideflow.runtime.waits import NEW_WAIT_CHANNEL, Delivery, EventWaits, WaitMatch, WaitRef
from tideflow.supervise import Supervisor
from tideflow.triggers.start_sets import DEFAULT_RETENTION, StartSets, Taken
from tideflow.triggers.workflow_events import (
    PROCESS_REFERENCE,
    IndexKey,
    StartSpec,
    SubscriberIndex,
    compile_workflow,
    partition_of,
)

if TYPE_CHECKING:
    from tideflow.runtime.effects import WorkflowInterpreter
    from tideflow.triggers._workers import Consumer
    from tideflow.triggers.dispatcher import Dispatcher
    from tideflow.workflow.model import Workflow

__all__ = [
    "CHANNEL",
    "PARTITIONS",
    "SUBSCRIPTION_ID",
    "SubscribedRuntime",
    "WorkflowSubscriber",
    "partition_subscription",
]

log = logging.getLogger("tideflow.triggers.workflows")

Keyed = tuple[int, Mapping[str, Any], list[IndexKey]]
"""``(offset, event, the keys it is looked up and kept under)``."""

CHANNEL: Final = NEW_WAIT_CHANNEL
"""NOTIFY channel: payload ``<instance id>\\n<wait key>`` when an instance starts waiting."""

SUBSCRIPTION_ID: Final = "tideflow.workflows"
"""The internal subscription of partition 0 (the one that answers waits and keeps events)."""

PARTITIONS: Final = 4
"""The subscriber's partitions (units of the cluster). Fixed: every process must agree on it,
since it decides which partition starts which instance."""


def partition_subscription(index: int) -> str:
    """The internal subscription of partition ``index``."""
    return SUBSCRIPTION_ID if index == 0 else f"{SUBSCRIPTION_ID}.{index}"


_RETRY_ERRORS: tuple[type[BaseException], ...] = (TideflowError, *CONNECTION_ERRORS)
"""What answering new waits may raise while the database is away (tried again)."""

_PARALLEL: Final = 16
"""Deliveries in flight at once (each is one short transaction)."""


class SubscribedRuntime(InstanceEngine, Protocol):
    """What the subscriber needs of the engine that runs instances (the durable runtime,
    or the Temporal engine's :class:`~tideflow.runtime.hosts.temporal.runtime.TemporalRuntime`)."""

    @property
    def registry(self) -> PostgresRegistry:
        """Deployed workflows (its deploys and deletes reach the subscriber)."""
        ...

    @property
    def clock(self) -> Clock:
        """The services' clock."""
        ...

    @property
    def delivery(self) -> Delivery:
        """Answers waits and resumes their instances."""
        ...

    @property
    def signals_start(self) -> bool:
        """Starting events travel with the start (Temporal's signal-with-start) instead of
        through the inbox to the instance's first wait."""
        ...

    async def interpreter(
        self, workflow_id: str, version: str
    ) -> tuple[Workflow, WorkflowInterpreter]:
        """The model and interpreter of a deployed version."""
        ...

    async def start_with_events(
        self, workflow_id: str, version: str, instance_id: str, events: list[Any]
    ) -> InstanceRow:
        """Start an instance whose first wait takes ``events`` (with ``signals_start``)."""
        ...


def start_instance_id(spec: StartSpec, offset: int) -> str:
    """The id of the instance the event at ``offset`` starts: the same when redelivered."""
    name = f"tideflow:start/{spec.workflow_id}/{spec.version}/{offset}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


class WorkflowSubscriber:
    """Feeds deployed workflows from a bus (see the module docs).

    Args:
        pool: The database pool (migrated).
        runtime: The engine that runs the instances (durable or Temporal).
        dispatcher: The dispatcher the subscriber attaches to.
        bus: The bus workflows consume.
        pending_seconds: How long an event no instance waits for is kept.
        sweep_seconds: How often, when no notification came, the waits that
            kept events or an inbox are there for are looked up anyway.
        start_set_seconds: How long an incomplete non-exclusive start set
            without ``eventTimeout`` is kept (:mod:`tideflow.triggers.start_sets`).
        partitions: How many partitions (:data:`PARTITIONS`; the same in every process).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        runtime: SubscribedRuntime,
        dispatcher: Dispatcher,
        *,
        bus: str = DEFAULT_BUS,
        pending_seconds: float = 3600.0,
        sweep_seconds: float = 30.0,
        start_set_seconds: float = DEFAULT_RETENTION,
        partitions: int = PARTITIONS,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        self.partitions = partitions
        self.pool = pool
        self.runtime = runtime
        self.dispatcher = dispatcher
        self.bus = bus
        self.pending_seconds = pending_seconds
        self.sweep_seconds = sweep_seconds
        self.index = SubscriberIndex()
        self.waits = EventWaits(pool, runtime.delivery, runtime.clock)
        self.start_sets = StartSets(
            pool, self.waits, clock=runtime.clock, retention_seconds=start_set_seconds
        )
        self._waits: dict[tuple[str, str], None] = {}
        self._woken = asyncio.Event()
        self._must_sweep = False
        self.supervisor = Supervisor("workflows", clock=runtime.clock)
        """Owns the listener and the loop answering new waits (``/healthz`` reports them)."""
        self.listener = Listener(pool, "correlation", clock=runtime.clock, health=self.supervisor)
        self.listener.listen(CHANNEL, self._notified)
        self.listener.on_reconnect(self._resweep)  # new waits may have been missed meanwhile
        self._heard = -1  # the highest offset of the bus announced on the fence's connection
        self._fenced = False  # whether _heard is a fence (see the module docs)
        self._changes = 0  # the fence's connection's connects and drops, counted
        self._fence: Listener | None = None
        waiters = getattr(dispatcher.store, "waiters", None)
        registry = self.listener
        if isinstance(waiters, Waiters):  # deploys heard in commit order with the events
            self._fence = registry = waiters.listener
            registry.listen(waiters.channel, self._announced)
            registry.on_reconnect(self._fence_lost)
            registry.on_lost(self._fence_lost)
        # else no fence: the fingerprint is compared before every batch
        registry.listen(REGISTRY_CHANNEL, self._redeployed)  # by another process
        registry.on_reconnect(self._reload_all)
        self._redeploys: dict[str, None] = {}
        self._reload = False  # every workflow: deploys elsewhere may have been missed
        self._limit = asyncio.Semaphore(_PARALLEL)
        self._batches = 0
        self._unlisten: Callable[[], None] | None = None  # from the registry's deploys
        self._compiled: dict[str, str | None] = {}  # workflow id -> version compiled (None: gone)
        self._fingerprint: str | None = None  # the registry's, when _compiled followed it

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Compile every deployed workflow, listen for new waits, sweep, attach.

        The sweep answers the waits that began while no subscriber listened
        (an inbox or kept events for them), then the dispatcher hands over the
        events that arrived meanwhile from the committed offset.
        """
        self._unlisten = self.runtime.registry.on_change(self.refresh)
        for stored in await self.runtime.registry.list():
            await self.refresh(stored.workflow_id)
        self.supervisor.spawn("listen", self.listener.run)
        self.supervisor.spawn("answer", self._drain_loop)
        await self._sweep()
        await self._start_unstarted_sets()
        attach = self.dispatcher.attach
        first = await attach(SUBSCRIPTION_ID, self.bus, self._partition(0), start="latest")
        for index in range(1, self.partitions):
            # A partition new here starts where partition 0 stands (committed): partition 0
            # never made its starts, and a start made twice is a no-op.
            since = first.committed_offset + 1
            part = partition_subscription(index)
            await attach(part, self.bus, self._partition(index), start=since)

    def _partition(self, index: int) -> Consumer:
        async def consume(batch: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
            await self.consume(batch, partition=index)

        return consume

    async def stop(self) -> None:
        """Detach from the dispatcher and stop listening."""
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        for index in range(self.partitions):
            await self.dispatcher.detach(partition_subscription(index))
        await self.supervisor.stop()
        await self.waits.close()

    async def refresh(self, workflow_id: str) -> None:
        """Compile the latest version of ``workflow_id`` again (or forget it when deleted).

        The runtime's registry calls it after every deploy and delete.
        """
        try:
            stored = await self.runtime.registry.get(workflow_id)
        except WorkflowNotFound:
            self.index.put(workflow_id, None)
            self._compiled[workflow_id] = None
            return
        self._compiled[workflow_id] = stored.version
        try:
            workflow, interpreter = await self.runtime.interpreter(workflow_id, stored.version)
        except TideflowError as exc:
            log.error("workflow %s does not load, it subscribes to nothing: %s", workflow_id, exc)
            self.index.put(workflow_id, None)
            return
        events = compile_workflow(workflow, stored.version, sonataflow=interpreter.sonataflow)
        self.index.put(workflow_id, events)

    async def _follow_deploys(self, last: int) -> None:
        """Recompile the workflows deployed or deleted (by any process) before the event at
        offset ``last`` committed: those announced, when ``last`` is within the fence;
        else those the registry's fingerprint says changed since the last look."""
        if self._fenced and last <= self._heard:
            for workflow_id in list(self._redeploys):  # announced: usually none
                await self.refresh(workflow_id)
                self._redeploys.pop(workflow_id, None)
            return
        changes = self._changes
        listening = self._fence is not None and self._fence.connected.is_set()
        fingerprint = await self.runtime.registry.fingerprint()
        if fingerprint != self._fingerprint:
            heads = await self.runtime.registry.heads()
            for workflow_id in sorted(set(heads) | set(self._compiled)):
                if self._compiled.get(workflow_id) != heads.get(workflow_id):
                    await self.refresh(workflow_id)
            self._fingerprint = fingerprint
        if listening and changes == self._changes:  # LISTENing since before the look:
            self._fenced = True  # every deploy after it is announced on that connection

    def _announced(self, payload: str) -> None:
        """The event store's notification ``<bus> <last offset>``: the fence moves."""
        bus, _, last = payload.partition(" ")
        if bus == self.bus and last.isdigit():
            self._heard = max(self._heard, int(last))

    def _fence_lost(self) -> None:
        """The fence's connection (re)connected or dropped: deploys may have gone unheard,
        so the next batch compares the fingerprint."""
        self._changes += 1
        self._fenced = False

    # -- the consumer ------------------------------------------------------------

    async def consume(
        self, batch: Sequence[tuple[int, Mapping[str, Any]]], *, partition: int | None = None
    ) -> None:
        """Handle a batch of events from the bus as ``partition`` (see the module docs:
        partition 0 does all but the other partitions' starts; ``None``: all of it)."""
        await self._follow_deploys(batch[-1][0])
        batch = [(offset, self.index.aliased(event)) for offset, event in batch]
        exclusive: list[tuple[StartSpec, int, Mapping[str, Any]]] = []
        for offset, event in batch:
            for spec in self.index.starting(event):
                if spec.exclusive:  # independent instances: started together
                    instance_id = start_instance_id(spec, offset)
                    if partition in (None, partition_of(instance_id, self.partitions)):
                        exclusive.append((spec, offset, event))
                elif not partition:  # partial sets change in offset order
                    await self._start(spec, offset, event)
        # Their inboxes in one statement, before any of them can wait (a wait finding its
        # inbox is not indexed for other events).
        inboxes = [
            ((start_instance_id(spec, offset), spec.wait_key), [dict(event)], offset)
            for spec, offset, event in exclusive
            if self._by_inbox(spec)
        ]
        if inboxes:
            await self.waits.put_inboxes(inboxes)
        await asyncio.gather(*(self._start(*start, inboxed=True) for start in exclusive))
        if partition:
            return
        unmatched = await self._resume(batch)
        unmatched = [u for u in unmatched if self.index.keeps(u[1])]
        if unmatched:
            await self._keep(unmatched)
        self._batches += 1
        if self._batches % 1000 == 1:
            await self.waits.expire_kept(self.pending_seconds)
            await self.start_sets.sweep(SUBSCRIPTION_ID)

    async def _start(
        self, spec: StartSpec, offset: int, event: Mapping[str, Any], *, inboxed: bool = False
    ) -> None:
        """Start from ``event`` (``inboxed``: an exclusive start whose inbox is put already)."""
        try:
            await self._start_one(spec, offset, event, inboxed=inboxed)
        except StoreError:  # the database is away: the batch is handed over again (idempotent)
            raise
        except TideflowError as exc:  # the workflow is gone or no longer loads
            log.error("starting %s from event %s failed: %s", spec.workflow_id, offset, exc)

    async def _start_one(
        self, spec: StartSpec, offset: int, event: Mapping[str, Any], *, inboxed: bool = False
    ) -> None:
        if spec.exclusive:
            instance_id = start_instance_id(spec, offset)
            with tracing.starting(instance_id, offset, inbox=self._by_inbox(spec)):
                await self._launch(spec, instance_id, offset, [dict(event)], inboxed=inboxed)
            return
        taken = await self.start_sets.add(spec, offset, event)  # one transaction with the inbox
        if taken is not None:  # the event completing the set starts the instance
            with tracing.starting(taken.instance_id, offset, inbox=self._by_inbox(spec)):
                await self._start_taken(taken)

    def _by_inbox(self, spec: StartSpec) -> bool:
        """Whether the starting events reach the instance through the inbox of its first
        wait (not as its input, nor signalled with the start)."""
        return not spec.events_as_input and not self.runtime.signals_start

    async def _start_taken(self, taken: Taken) -> None:
        """Start a taken set's instance (idempotent: its events wait in the inbox).

        A DSL 1.0 ``schedule.on`` instance gets the events as its input: read
        from the inbox, which is emptied once the instance exists.
        """
        compiled = self.index.compiled.get(taken.workflow_id)
        spec = None if compiled is None else compiled.start
        if spec is None or not spec.events_as_input:
            await self.runtime.start_instance(
                taken.workflow_id, {}, version=taken.version, instance_id=taken.instance_id
            )
            return
        wait = (taken.instance_id, spec.wait_key)
        found = await self.waits.inbox_of([wait])
        events = found[0][1] if found else []
        await self.runtime.start_instance(
            taken.workflow_id, events, version=taken.version, instance_id=taken.instance_id
        )
        await self.waits.drop_inbox(wait)

    async def _start_unstarted_sets(self) -> None:
        """Start the taken sets a crash left without an instance; sweep the sets."""
        for taken in await self.start_sets.unstarted():
            try:
                await self._start_taken(taken)
            except TideflowError as exc:
                log.error("starting %s from its events failed: %s", taken.workflow_id, exc)
        await self.start_sets.sweep(SUBSCRIPTION_ID)

    async def _launch(
        self,
        spec: StartSpec,
        instance_id: str,
        offset: int,
        events: list[Any],
        *,
        inboxed: bool = False,
    ) -> None:
        # The instance consumes the events after its start event's offset: the bus head at
        # its creation may be past events a source committed right after that one.
        if spec.events_as_input:  # DSL 1.0 schedule.on: the events are the input
            await self.waits.put_origin(instance_id, offset)
            await self.runtime.start_instance(
                spec.workflow_id, events, version=spec.version, instance_id=instance_id
            )
            return
        if self.runtime.signals_start:  # signal-with-start: the instance buffers them
            await self.waits.put_origin(instance_id, offset)
            await self.runtime.start_with_events(
                spec.workflow_id, spec.version, instance_id, events
            )
            return
        if not inboxed:
            await self.waits.put_inbox((instance_id, spec.wait_key), events, offset)
        await self.runtime.start_instance(
            spec.workflow_id, {}, version=spec.version, instance_id=instance_id
        )

    async def _resume(self, batch: Sequence[tuple[int, Mapping[str, Any]]]) -> list[Keyed]:
        """Deliver to the waiting instances; return the events nobody waited for (with keys).

        An event addressed to a SonataFlow-dialect instance (:meth:`_addressed`) answers
        that instance's waits only; when the instance waits for none of its type yet (a
        callback's answer may come before the callback's action returned), it is kept for
        that instance alone (:func:`_kept_for_instance`), never for another.
        """
        keyed = [(offset, event, self.index.keys(event)) for offset, event in batch]
        addressed = await self._addressed(keyed)
        plain = [i for i, k in enumerate(keyed) if k[2] and i not in addressed]
        if not plain and not addressed:
            return []
        rows = [row for found in addressed.values() for row in found]
        looked = await self._lookup([keyed[i] for i in plain]) if plain else []
        rows += [dataclasses.replace(row, index=plain[row.index]) for row in looked]
        rows.sort(key=lambda row: row.index)  # in offset order, as one lookup gives them
        used = await self._deliver(rows, [(k[0], dict(k[1])) for k in keyed])
        return [keyed[i] for i in plain if i not in used] + [
            _kept_for_instance(keyed[i]) for i in addressed if i not in used
        ]

    async def _addressed(self, keyed: Sequence[Keyed]) -> dict[int, list[WaitMatch]]:
        """The events addressed to an instance of a SonataFlow-dialect workflow by
        ``kogitoprocrefid`` (by position): that instance's open waits for each one's type
        (none yet: the event is kept for it). An event naming no such instance goes the
        ordinary way."""
        asks = [
            (i, reference, str(event.get("type")))
            for i, (_, event, _) in enumerate(keyed)
            if (reference := self.index.addressed_to(event)) is not None
        ]
        if not asks:
            return {}
        async with self.waits.session() as session:
            found = await session.addressed(asks)
        addressed: dict[int, list[WaitMatch]] = {}
        for i, workflow_id, match in found:
            if self.index.is_sonataflow(workflow_id):
                rows = addressed.setdefault(i, [])
                if match is not None:
                    rows.append(match)
        return addressed

    async def _lookup(self, keyed: Sequence[Keyed]) -> list[WaitMatch]:
        found = [
            (i, kind, key, str(event.get("source") or ""))
            for i, (_, event, keys) in enumerate(keyed)
            for kind, key in keys
        ]
        async with self.waits.session() as session:
            return await session.match(found)

    async def _deliver(
        self, rows: Sequence[WaitMatch], events: Sequence[tuple[int, dict[str, Any]]]
    ) -> set[int]:
        """Answer waits: the first event for an any-wait, partial sets for all-waits.

        A wait that kept events may take (older than any event of the batch)
        is not answered here: the batch's event is kept behind them and the
        wait takes the oldest kept one (:meth:`_keep`), so a listen consumes
        events in the order they arrived even when one arrives just as its
        wait opens, before the new wait's kept events were handed to it.

        Returns:
            The indexes of the events used; a later event for a wait an earlier
            one answered is not, and is kept for the instance's next wait (as
            is an event whose wait was answered meanwhile, by kept events).
        """
        first: dict[WaitRef, int] = {}
        parts: list[tuple[WaitRef, str, dict[str, Any]]] = []
        used: set[int] = set()
        for row in rows:
            wait = (row.instance_id, row.wait_key)
            if row.all_events:
                parts.append((wait, row.name, events[row.index][1]))
                used.add(row.index)
            elif not row.behind:
                first.setdefault(wait, row.index)
        if tracing.delivered():  # which delivered (traced) event resumes which instance
            resumed = {r.instance_id: events[r.index][0] for r in rows if r.all_events}
            resumed.update((w[0], events[i][0]) for w, i in first.items())
            with tracing.resuming(resumed):
                await self._answer_parts(first, parts, events, used)
        else:
            await self._answer_parts(first, parts, events, used)
        return used

    async def _answer_parts(
        self,
        first: Mapping[WaitRef, int],
        parts: Sequence[tuple[WaitRef, str, dict[str, Any]]],
        events: Sequence[tuple[int, dict[str, Any]]],
        used: set[int],
    ) -> None:
        """Answer the any-waits (adding the events taken to ``used``), then the parts."""
        answers = list(first.items())
        taken = await self._answer_many([(*w, [events[i][1]]) for w, i in answers])
        used.update(i for (_, i), ok in zip(answers, taken, strict=True) if ok)
        for wait, name, event in parts:
            await self._add_part(wait, name, event)

    async def _answer(self, wait: WaitRef, events: list[dict[str, Any]]) -> bool:
        async with self._limit:
            try:
                return await self.waits.answer(wait, events)
            except TideflowError as exc:
                log.error("delivering to %s failed: %s", wait[0], exc)
                return False

    async def _answer_many(
        self, answers: list[tuple[str, str, list[dict[str, Any]]]]
    ) -> list[bool]:
        """Answer many waits in one statement (the woken instances resume in this process);
        whether each wait took its events (it may have been answered meanwhile).

        A database failure raises: nothing of the batch was delivered, and the
        dispatcher hands the batch over again (at-least-once).
        """
        if not answers:
            return []
        async with self.waits.session() as session:
            return await session.answer_many(answers)

    async def _add_part(self, wait: WaitRef, name: str, event: dict[str, Any]) -> None:
        complete = await self.waits.add_part(wait, name, event)
        if complete is not None:
            await self._answer(wait, complete)

    async def _keep(self, unmatched: Sequence[Keyed]) -> None:
        """Keep events nobody waited for; then look again (a wait may have committed since)."""
        await self.waits.keep(
            [
                (kind, key, offset, str(event.get("source") or ""), dict(event))
                for offset, event, keys in unmatched
                for kind, key in keys
            ]
        )
        await self._from_pending(await self._waits_of(unmatched))

    async def _waits_of(self, unmatched: Sequence[Keyed]) -> list[WaitRef]:
        """The open waits that ``unmatched`` (just kept) may answer: by key (every event: a
        strict workflow may correlate on an attribute of that name too), and an event kept
        for one instance (:func:`_kept_for_instance`) by that instance's id as well."""
        waits = [(r.instance_id, r.wait_key) for r in await self._lookup(unmatched)]
        asks = [
            (i, instance_id, kind)
            for i, u in enumerate(unmatched)
            if (instance_id := _instance_of(u)) is not None
            for kind, _ in u[2]
        ]
        if asks:
            async with self.waits.session() as session:
                found = await session.addressed(asks)
            waits += [(m.instance_id, m.wait_key) for _, _, m in found if m is not None]
        return waits

    # -- new waits ---------------------------------------------------------------

    def _notified(self, payload: str) -> None:
        instance_id, _, wait_key = payload.partition("\n")
        self._waits[(instance_id, wait_key)] = None
        self._woken.set()

    def _redeployed(self, workflow_id: str) -> None:
        self._redeploys[workflow_id] = None  # recompiled by the loop answering new waits
        self._woken.set()

    async def _refresh_redeployed(self) -> None:
        """Recompile the workflows other processes deployed or deleted."""
        if self._reload:
            try:
                listed = await self.runtime.registry.list()
            except _RETRY_ERRORS as exc:
                log.warning("listing workflows failed, will retry: %s", exc)
                return
            self._reload = False
            self._redeploys.update(dict.fromkeys(self.index.compiled))  # deleted ones too
            self._redeploys.update(dict.fromkeys(w.workflow_id for w in listed))
        while self._redeploys:
            workflow_id = next(iter(self._redeploys))
            try:
                await self.refresh(workflow_id)
            except _RETRY_ERRORS as exc:
                log.warning("recompiling %s failed, will retry: %s", workflow_id, exc)
                await asyncio.sleep(1.0)
                self._woken.set()
                return
            self._redeploys.pop(workflow_id, None)

    def _resweep(self) -> None:
        """The listener (re)connected: notifications of new waits may have been lost."""
        self._must_sweep = True
        self._woken.set()

    def _reload_all(self) -> None:
        """The registry's listener (re)connected: deploys and deletes elsewhere may have
        been missed (recompiled by the loop answering new waits)."""
        self._reload = True
        self._woken.set()

    async def _sweep(self) -> None:
        """Queue the open waits that an inbox or kept events are there for."""
        self._waits.update(dict.fromkeys(await self.waits.waits_with_events()))
        self._woken.set()

    async def _try_sweep(self) -> bool:
        try:
            await self._sweep()
        except _RETRY_ERRORS as exc:
            log.warning("sweeping waits failed, will retry: %s", exc)
            return False
        return True

    def _answering(self) -> frozenset[int]:
        """The partitions whose new waits this process answers: those it consumes (the
        others would race it for the same rows)."""
        ownership, unit = self.dispatcher.ownership, self.dispatcher.unit
        return frozenset(
            index
            for index in range(self.partitions)
            if ownership.owns(unit(partition_subscription(index)))
        )

    async def _drain_loop(self) -> None:
        answering: frozenset[int] = frozenset()
        idle = 0.0  # seconds waited in vain since the last sweep
        while True:
            # Not answering every partition here: look again soon, to sweep at once after a
            # takeover.
            every = len(answering) == self.partitions
            seconds = self.sweep_seconds if every else min(self.sweep_seconds, 1.0)
            try:
                async with asyncio.timeout(seconds):
                    await self._woken.wait()
            except TimeoutError:  # a notification lost (not seen by the listener): sweep
                idle += seconds
                if self._answering() - answering:
                    self._woken.set()  # just taken over: sweep below
                elif answering and idle >= self.sweep_seconds:
                    idle = 0.0
                    await self._try_sweep()
                continue
            self._woken.clear()
            await self._refresh_redeployed()
            now = self._answering()
            if now - answering:  # what was dropped here before, now this process answers
                self._must_sweep = True
            answering = now
            if not answering:
                self._waits.clear()
                continue
            if self._must_sweep:  # after a reconnect, or a takeover
                idle = 0.0
                self._must_sweep = not await self._try_sweep()
                if self._must_sweep:
                    await asyncio.sleep(1.0)
                    self._woken.set()
                    continue
            waits = [w for w in self._waits if partition_of(w[0], self.partitions) in answering]
            self._waits = {}
            for start in range(0, len(waits), 5000):
                chunk = waits[start : start + 5000]
                try:
                    await self._from_inbox(chunk)
                    await self._from_pending(chunk)
                except _RETRY_ERRORS as exc:
                    log.warning("answering new waits failed, will retry: %s", exc)
                    self._waits.update(dict.fromkeys(chunk))
                    await asyncio.sleep(1.0)
                    self._woken.set()

    async def _from_inbox(self, waits: Sequence[WaitRef]) -> None:
        """Answer new waits from their inboxes: in one statement that claims the instances
        woken for this process (they resume here, no other process is woken for them)."""
        await self.waits.answer_inboxes(await self.waits.inbox_of(waits))

    async def _from_pending(self, waits: Sequence[WaitRef]) -> None:
        """Deliver kept events to ``waits`` (those that arrived after each instance started).

        A wait takes one kept event (the oldest), or one per event name when it
        waits for all of them; the others stay kept for the instance's next
        wait. An event taken for a wait that closed meanwhile is kept again.
        """
        if not waits:
            return
        taken: set[int] = set()
        served: set[tuple[WaitRef, str]] = set()
        for kept in await self.waits.kept_for(waits):
            wait = (kept.instance_id, kept.wait_key)
            slot = (wait, kept.name if kept.all_events else "")
            if kept.offset in taken or slot in served:
                continue
            if not await self.waits.claim_kept(kept.offset):
                continue
            taken.add(kept.offset)
            served.add(slot)
            if kept.all_events:
                await self._add_part(wait, kept.name, kept.event)
            elif not await self._answer(wait, [kept.event]):
                source = str(kept.event.get("source") or "")
                await self.waits.keep([(kept.indexed_type, kept.key, kept.offset, source,
                                        kept.event)])  # fmt: skip


def _kept_for_instance(keyed: Keyed) -> Keyed:
    """An event addressed by ``kogitoprocrefid``, to be kept under a key no wait has but
    its instance's: ``{"kogitoprocrefid": <instance id>}`` (the kept events a new wait
    may take include those, by its instance's id: ``pending_for_waits``)."""
    offset, event, _ = keyed
    key = {PROCESS_REFERENCE: str(event[PROCESS_REFERENCE])}
    return offset, event, [(str(event.get("type")), key)]


def _instance_of(keyed: Keyed) -> str | None:
    """The instance an event kept by :func:`_kept_for_instance` is for (else ``None``)."""
    keys = keyed[2]
    if len(keys) == 1 and set(keys[0][1]) == {PROCESS_REFERENCE}:
        return keys[0][1][PROCESS_REFERENCE]
    return None
