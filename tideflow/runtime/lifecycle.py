"""Lifecycle events: CloudEvents about workflow instances on the bus ``tideflow.lifecycle``.

The runtime reports what happens to its instances -- started, a state
entered, completed, failed, cancelled (and suspended, resumed) -- as
:class:`LifecycleNotice` values through a hook. :func:`lifecycle_event` turns
a notice into a structured CloudEvent (pure: no clock, no I/O), and
:class:`LifecyclePublisher` appends those events to the bus so that any
subscriber can monitor workflows.

Event ids are derived from the notice (instance, run, kind, step key), so a
notice reported twice -- for example again after a replay -- is stored once:
the event store recognises the duplicate by ``source`` and ``id``.

Event types are ``io.tideflow.instance.<kind>``; the source is
``/tideflow/workflows/<workflow id>``; the subject is the instance id; the
data is a JSON object with ``instanceId``, ``workflowId``, ``version``,
``status`` and, where they apply, ``state``, ``output``, ``error`` and
``parentId``.

Instances of DSL 1.0 workflows get, beside those, the specification's own
lifecycle events (:func:`standard_events`):
``io.serverlessworkflow.workflow.{started,completed,faulted,cancelled,suspended,resumed}.v1``
and ``io.serverlessworkflow.task.{created,started,completed,faulted,retried}.v1``
(the ``task.*`` notices have no Tideflow event of their own), with the same
source and subject. A ``listen`` task correlates events for the workflow: it
is ``workflow.correlation-started`` as it begins to wait and
``workflow.correlation-completed`` (with the ``correlationKeys`` its
``correlate`` resolved, ``{}`` when it has none) once it has consumed its
events (standard events only, no phase change). Their data names the
instance (``name`` for a workflow event, ``workflow`` for a task event, with
the task's JSON Pointer as ``task``) and the moment (``startedAt``, ``completedAt``, ``faultedAt``,
...), with ``output`` or ``error`` where they apply. A task is created as it
starts (``task.created`` comes just before ``task.started``, at the same
moment: the interpreter has no pending phase of its own). When the workflow
is suspended, resumed or cancelled, each task still open then (started, not
ended, read from the instance's timeline) gets ``task.suspended``,
``task.resumed`` or ``task.cancelled``. The optional
``workflow.status-changed`` and ``task.status-changed`` events follow every
change of a status phase (``pending``, ``running``, ``suspended``,
``cancelled``, ``faulted``, ``completed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final, Protocol

from tideflow.errors import AlreadyExists, TideflowError
from tideflow.isotime import format_timestamp
from tideflow.runtime.status import InstanceStatus
from tideflow.supervise import Supervisor

log = logging.getLogger("tideflow.lifecycle")

LIFECYCLE_BUS: Final = "tideflow.lifecycle"
"""The bus lifecycle events go to."""

EVENT_TYPE_PREFIX: Final = "io.tideflow.instance."

TASK_KINDS: Final = frozenset(
    {
        "task.started",
        "task.completed",
        "task.faulted",
        "task.retried",
        # derived by the publisher from other notices (see standard_events)
        "task.created",
        "task.suspended",
        "task.resumed",
        "task.cancelled",
    }
)
"""The kinds of notice about a DSL 1.0 task (standard events only)."""

CORRELATION_KINDS: Final = frozenset({"correlation.started", "correlation.completed"})
"""The kinds of notice about a DSL 1.0 ``listen`` correlating events (standard events only)."""

STANDARD_ONLY: Final = TASK_KINDS | CORRELATION_KINDS
"""The kinds of notice that have a standard event and no Tideflow event of their own."""

KINDS: Final = (
    frozenset(
        {"started", "state.entered", "completed", "failed", "cancelled", "suspended", "resumed"}
    )
    | STANDARD_ONLY
)
"""The kinds of notice; each but :data:`STANDARD_ONLY` becomes the event type
``io.tideflow.instance.<kind>``."""

STANDARD_PREFIX: Final = "io.serverlessworkflow."

_STANDARD: Final = {
    "started": ("workflow.started", "startedAt"),
    "completed": ("workflow.completed", "completedAt"),
    "failed": ("workflow.faulted", "faultedAt"),
    "cancelled": ("workflow.cancelled", "cancelledAt"),
    "suspended": ("workflow.suspended", "suspendedAt"),
    "resumed": ("workflow.resumed", "resumedAt"),
    "task.started": ("task.started", "startedAt"),
    "task.completed": ("task.completed", "completedAt"),
    "task.faulted": ("task.faulted", "faultedAt"),
    "task.retried": ("task.retried", "retriedAt"),
    "correlation.started": ("workflow.correlation-started", "startedAt"),
    "correlation.completed": ("workflow.correlation-completed", "completedAt"),
}
"""Notice kind -> (the standard event's name, its moment's property)."""

_DERIVED: Final = {
    "task.created": ("task.created", "createdAt"),
    "task.suspended": ("task.suspended", "suspendedAt"),
    "task.resumed": ("task.resumed", "resumedAt"),
    "task.cancelled": ("task.cancelled", "cancelledAt"),
}
"""Standard task events Tideflow derives from other notices (no notice of their own)."""

_PHASE: Final = {
    "started": "running",
    "completed": "completed",
    "failed": "faulted",
    "cancelled": "cancelled",
    "suspended": "suspended",
    "resumed": "running",
    "task.created": "pending",
    "task.started": "running",
    "task.completed": "completed",
    "task.faulted": "faulted",
    "task.suspended": "suspended",
    "task.resumed": "running",
    "task.cancelled": "cancelled",
}
"""Notice kind -> the 1.0 status phase it moves the workflow or the task to."""

_OPEN_TASK_EVENT: Final = {
    "suspended": "task.suspended",
    "resumed": "task.resumed",
    "cancelled": "task.cancelled",
}
"""A workflow notice -> what it does to each task still open."""

_REPEATABLE: Final = frozenset(
    {"suspended", "resumed", "task.suspended", "task.resumed", "task.cancelled"}
)
"""Notices that may come more than once in a run (never replayed): their standard
events' ids carry the moment."""

OpenTask = tuple[str, str]
"""A task started and not ended: (its step key, its JSON Pointer)."""

_STATUS_OF_KIND: Final = {
    "started": InstanceStatus.RUNNING,
    "state.entered": InstanceStatus.RUNNING,
    "completed": InstanceStatus.COMPLETED,
    "failed": InstanceStatus.FAILED,
    "cancelled": InstanceStatus.CANCELLED,
    "suspended": InstanceStatus.SUSPENDED,
    "resumed": InstanceStatus.RUNNING,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleNotice:
    """One thing that happened to an instance, as the runtime reports it.

    Attributes:
        kind: One of :data:`KINDS`.
        instance_id: The instance.
        workflow_id: Its workflow.
        version: The workflow version it runs.
        at: When it happened.
        state: The state entered (``state.entered``) or where it failed.
        output: The output of a completed instance, when the reporter has it.
        error: The error of a failed instance, ``{name, code, message, state}``.
        parent_id: The parent instance of a sub-flow.
        run_no: The run number (``continueAs`` starts run 2, 3, ...).
        key: The step key, telling apart repeated entries of the same state.
        reference: A DSL 1.0 task's JSON Pointer (``/do/0/greet``).
        correlation_keys: The keys a completed correlation resolved (``correlate``:
            name -> value).
    """

    kind: str
    instance_id: str
    workflow_id: str
    version: str
    at: datetime
    state: str | None = None
    output: Any = None
    error: Mapping[str, Any] | None = None
    parent_id: str | None = None
    run_no: int = 1
    key: str = ""
    reference: str | None = None
    correlation_keys: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown lifecycle kind {self.kind!r}; one of {sorted(KINDS)}")


def open_tasks_of(timeline: Sequence[Any]) -> list[OpenTask]:
    """The DSL 1.0 tasks of the latest run that started and did not end, in start order.

    Args:
        timeline: Timeline rows (``run_no``, ``kind``, ``step_key``, ``state``,
            ``detail``), oldest first.
    """
    if not timeline:
        return []
    latest = max(entry.run_no for entry in timeline)
    started: dict[str, str] = {}
    for entry in timeline:
        if entry.run_no != latest:
            continue
        if entry.kind == "task.started":
            started[entry.step_key] = entry.detail.get("reference") or entry.state or ""
        elif entry.kind in ("task.completed", "task.faulted"):
            started.pop(entry.step_key, None)
    return list(started.items())


def event_id(notice: LifecycleNotice) -> str:
    """A stable id: the same notice always gets the same id (deduplicated by the store)."""
    suffix = f"/{notice.key}" if notice.key else ""
    return f"{notice.instance_id}/{notice.run_no}/{notice.kind}{suffix}"


def lifecycle_event(notice: LifecycleNotice) -> dict[str, Any]:
    """The structured CloudEvent for ``notice``."""
    data: dict[str, Any] = {
        "instanceId": notice.instance_id,
        "workflowId": notice.workflow_id,
        "version": notice.version,
        "status": _STATUS_OF_KIND[notice.kind],
    }
    if notice.state is not None:
        data["state"] = notice.state
    if notice.kind == "completed":  # null too: a workflow may complete with no output
        data["output"] = notice.output
    if notice.error is not None:
        data["error"] = dict(notice.error)
    if notice.parent_id is not None:
        data["parentId"] = notice.parent_id
    return {
        "specversion": "1.0",
        "id": event_id(notice),
        "source": f"/tideflow/workflows/{notice.workflow_id}",
        "type": EVENT_TYPE_PREFIX + notice.kind,
        "subject": notice.instance_id,
        "time": format_timestamp(notice.at),
        "datacontenttype": "application/json",
        "data": data,
    }


def standard_events(
    notice: LifecycleNotice, open_tasks: Sequence[OpenTask] = ()
) -> list[dict[str, Any]]:
    """Every standard CloudEvent a DSL 1.0 instance's ``notice`` stands for, in order.

    Args:
        notice: The notice (a kind of :data:`_STANDARD`).
        open_tasks: For ``suspended``, ``resumed`` and ``cancelled``: the tasks open then.
    """
    events: list[dict[str, Any]] = []
    if notice.kind == "task.started":
        created = replace(notice, kind="task.created")
        events += [standard_event(created), status_changed(created)]
    events.append(standard_event(notice))
    if notice.kind in _PHASE:
        events.append(status_changed(notice))
    derived = _OPEN_TASK_EVENT.get(notice.kind)
    if derived is not None:
        for key, reference in open_tasks:
            at = f"{notice.key}/{key}" if notice.key else key
            task = replace(notice, kind=derived, key=at, reference=reference)
            events += [standard_event(task), status_changed(task)]
    return events


def status_changed(notice: LifecycleNotice) -> dict[str, Any]:
    """The optional ``workflow.status-changed`` or ``task.status-changed`` event of ``notice``."""
    task = notice.kind.startswith("task.")
    data: dict[str, Any] = {"updatedAt": format_timestamp(notice.at), "status": _PHASE[notice.kind]}
    if task:
        data["workflow"] = notice.instance_id
        data["task"] = notice.reference or notice.state
    else:
        data["name"] = notice.instance_id
    return _standard_envelope(notice, "task" if task else "workflow", "status-changed", data)


def _standard_envelope(
    notice: LifecycleNotice, scope: str, name: str, data: dict[str, Any]
) -> dict[str, Any]:
    return _envelope(notice, f"{scope}.{name}", data, suffix=f"/{scope}.{name}")


def _envelope(
    notice: LifecycleNotice, name: str, data: dict[str, Any], *, suffix: str = ""
) -> dict[str, Any]:
    """A standard event of ``notice`` (its id: the notice's, ``/standard``, ``suffix``)."""
    # Suspensions, resumes and cancels are not replayed: their moment tells them apart.
    when = f"@{format_timestamp(notice.at)}" if notice.kind in _REPEATABLE else ""
    return {
        "specversion": "1.0",
        "id": f"{event_id(notice)}{when}/standard{suffix}",
        "source": f"/tideflow/workflows/{notice.workflow_id}",
        "type": f"{STANDARD_PREFIX}{name}.v1",
        "subject": notice.instance_id,
        "time": format_timestamp(notice.at),
        "datacontenttype": "application/json",
        "data": data,
    }


def standard_event(notice: LifecycleNotice) -> dict[str, Any]:
    """The specification's lifecycle CloudEvent for a DSL 1.0 instance's ``notice``."""
    if notice.kind in _DERIVED:
        name, moment = _DERIVED[notice.kind]
        scope, _, event = name.partition(".")
        task = {moment: format_timestamp(notice.at), "workflow": notice.instance_id,
                "task": notice.reference or notice.state}  # fmt: skip
        return _standard_envelope(notice, scope, event, task)
    name, moment = _STANDARD[notice.kind]
    data: dict[str, Any] = {moment: format_timestamp(notice.at)}
    if notice.kind in TASK_KINDS:
        data["workflow"] = notice.instance_id
        data["task"] = notice.reference or notice.state
    else:
        data["name"] = notice.instance_id
        data["definition"] = {"id": notice.workflow_id, "version": notice.version}
    if notice.kind in CORRELATION_KINDS:
        data["task"] = notice.reference or notice.state
    if notice.kind == "correlation.completed":
        data["correlationKeys"] = dict(notice.correlation_keys or {})
    if notice.kind in ("completed", "task.completed"):
        data["output"] = notice.output
    if notice.error is not None:
        data["error"] = dict(notice.error)
    return _envelope(notice, name, data)


class _Appender(Protocol):
    async def create_bus(self, name: str) -> Any: ...

    async def append(self, bus: str, events: Sequence[Mapping[str, Any]]) -> Any: ...


class LifecyclePublisher:
    """Appends lifecycle events to :data:`LIFECYCLE_BUS` (the runtime's lifecycle hook).

    A failed append is logged, never raised: monitoring must not stop a
    workflow. Use :meth:`start` once (it creates the bus if missing), then
    await the publisher with notices, or :meth:`post` them from synchronous
    code (a background task appends them in batches); :meth:`stop` flushes.

    Args:
        store: The event store (anything with ``create_bus`` and ``append``).
        bus: The bus name.
        on_publish: Called with the number of events after each append (metrics).

    Attributes:
        is_dsl1: Tells whether a workflow version is DSL 1.0 (its instances'
            notices get the standard events too); set once the runtime exists.
        open_tasks: Reads an instance's open tasks (:func:`open_tasks_of` of its timeline).
    """

    def __init__(
        self,
        store: _Appender,
        bus: str = LIFECYCLE_BUS,
        *,
        on_publish: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.on_publish = on_publish
        self.published = 0
        """How many events were appended (duplicates included)."""
        self.is_dsl1: Callable[[str, str], Awaitable[bool]] | None = None
        self.open_tasks: Callable[[str], Awaitable[Sequence[OpenTask]]] | None = None
        """The tasks of an instance still open (started, not ended), for the task
        events of a suspend, resume or cancel; set once the runtime exists."""

        self._queue: list[LifecycleNotice] = []
        self._ready = asyncio.Event()
        self.supervisor = Supervisor("lifecycle")
        """Owns the task that publishes the notices given to :meth:`post`."""

    async def start(self) -> None:
        """Create the bus unless it exists, and start the task that publishes :meth:`post`."""
        with contextlib.suppress(AlreadyExists):
            await self.store.create_bus(self.bus)
        if not self.supervisor.running("publish"):  # a second start only checks the bus
            self.supervisor.spawn("publish", self._drain)

    async def stop(self) -> None:
        """Publish what is queued, then stop the task."""
        await self.supervisor.stop()
        await self._flush()

    def post(self, notice: LifecycleNotice) -> None:
        """Queue a notice without waiting (for synchronous hooks); published soon after."""
        self._queue.append(notice)
        self._ready.set()

    async def _drain(self) -> None:
        while True:
            await self._ready.wait()
            # One pass of the event loop first: the tasks woken with these notices (a long
            # poll answering the end that was just committed) go before the events are built
            # and appended -- monitoring after the answer -- and the notices of that pass
            # join the batch.
            await asyncio.sleep(0)
            try:
                await self._flush()
            except Exception:  # the publisher must outlive any one bad batch
                log.exception("lifecycle events lost")

    async def _flush(self) -> None:
        self._ready.clear()
        batch, self._queue = self._queue, []
        await self.publish(batch)

    async def __call__(self, *notices: LifecycleNotice) -> None:
        """Append one event per notice (in one group-committed call)."""
        await self.publish(notices)

    async def _standard(self, notice: LifecycleNotice) -> bool:
        if notice.kind not in _STANDARD or self.is_dsl1 is None:
            return False
        try:
            return await self.is_dsl1(notice.workflow_id, notice.version)
        except Exception:  # a version that no longer loads, a stopped runtime: no standard
            log.warning("no standard lifecycle event for %s", notice.instance_id, exc_info=True)
            return False

    async def _open_tasks(self, notice: LifecycleNotice) -> Sequence[OpenTask]:
        if notice.kind not in _OPEN_TASK_EVENT or self.open_tasks is None:
            return ()
        try:
            return await self.open_tasks(notice.instance_id)
        except Exception:  # monitoring must not stop a workflow: the task events are lost
            log.warning("no task events for %s", notice.instance_id, exc_info=True)
            return ()

    async def publish(self, notices: Sequence[LifecycleNotice]) -> None:
        """Append one event per notice; log instead of raising when the store fails."""
        if not notices:
            return
        events = [lifecycle_event(n) for n in notices if n.kind not in STANDARD_ONLY]
        for notice in notices:
            if await self._standard(notice):
                events += standard_events(notice, await self._open_tasks(notice))
        if not events:
            return
        try:
            await self.store.append(self.bus, events)
        except TideflowError as exc:
            log.warning("could not append %d lifecycle events: %s", len(events), exc)
            return
        self.published += len(events)
        if self.on_publish is not None:
            self.on_publish(len(events))
