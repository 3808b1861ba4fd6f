"""The Temporal engine's side in ``tideflow serve``: start, wait for, stop and signal instances.

:class:`TemporalRuntime` answers what the instances API asks of a runtime
(start one or a batch, wait for the end, cancel, suspend, resume) with a
Temporal client, and keeps the mirror (:mod:`.gateway`) that the API reads:

- a start creates the mirrored row (the version resolved, the input checked
  against the value limits) and then the Temporal workflow whose id is the
  instance id (``tideflow.instance``, :mod:`._workflow`);
- waiting for the end takes the final mirrored row as soon as it is committed:
  handed over in this process by its worker's last record, or announced by the
  ``done`` notification of the transaction that wrote it (any worker) -- the
  workflow records its end in the mirror before it completes, so the status API
  shows the end from then on; the workflow's result is awaited beside them, for
  an end Tideflow did not record (a workflow terminated through Temporal);
- cancel is a Temporal cancellation; suspend and resume are updates (answered
  once the workflow recorded them);
- :meth:`signal_event` hands an event to an instance's buffered waits;
- for the workflow subscriber (:mod:`tideflow.triggers.correlation`) it is the
  runtime that events start and resume: waits are answered by
  :class:`~tideflow.runtime.waits.SignalDelivery` (:attr:`delivery`), which
  signals their events, and an event that starts an instance travels with its
  start (signal-with-start, :meth:`start_with_events`).

With ``run_worker`` it also runs a Temporal worker for the task queue in this
process (``tideflow serve --engine temporal``); ``tideflow worker --engine
temporal`` runs workers alone (:func:`run_workers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import asyncpg
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from tideflow import ids, limits
from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.errors import (
    ConflictError,
    EngineUnavailable,
    InstanceNotFound,
    StoreError,
    WorkflowNotFound,
)
from tideflow.notify import Listener
from tideflow.runtime.effects import WorkflowInterpreter
from tideflow.runtime.gateway import (
    NOTIFY_CHANNEL,
    InstanceRow,
    PostgresInstances,
    PostgresRegistry,
)
from tideflow.runtime.hosts.temporal._values import (
    SIGNAL_EVENT,
    SIGNAL_EVENTS,
    SIGNAL_RESUME,
    SIGNAL_SUSPEND,
    WORKFLOW_TYPE,
    InstanceStart,
    Progress,
    StoredDefinition,
    with_values,
)
from tideflow.runtime.hosts.temporal._workflow import compile_model
from tideflow.runtime.hosts.temporal.activities import (
    InstanceActivities,
    notices,
    stored_definition,
)
from tideflow.runtime.hosts.temporal.gateway import PostgresMirror
from tideflow.runtime.hosts.temporal.worker import carrying_values, instance_worker
from tideflow.runtime.lifecycle import LifecycleNotice
from tideflow.runtime.waits import SignalDelivery
from tideflow.supervise import Supervisor, TaskSet, Watched
from tideflow.workflow.model import Workflow

__all__ = ["TemporalOptions", "TemporalRuntime", "connect"]

log = logging.getLogger("tideflow.temporal")

_MAX_DEFINITIONS = 256


class TemporalOptions:
    """Where the Temporal cluster is and which task queue Tideflow's instances use."""

    def __init__(
        self, address: str, *, namespace: str = "default", task_queue: str = "tideflow"
    ) -> None:
        """Args:
        address: ``HOST:PORT`` of the Temporal front end.
        namespace: The Temporal namespace.
        task_queue: The task queue of the workflows and their activities.
        """
        self.address = address
        self.namespace = namespace
        self.task_queue = task_queue


async def connect(options: TemporalOptions) -> Client:
    """A Temporal client (with the data converter of the host's values).

    Raises:
        StoreError: The cluster cannot be reached (its address named).
    """
    converter = with_values(DataConverter.default)
    try:
        return await Client.connect(
            options.address, namespace=options.namespace, data_converter=converter
        )
    except (RPCError, RuntimeError, OSError) as exc:
        raise StoreError(f"temporal at {options.address}: {exc}") from exc


class TemporalRuntime:
    """Instances on Temporal, mirrored in PostgreSQL (see the module docs)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        client: Client,
        options: TemporalOptions,
        *,
        registry: PostgresRegistry | None = None,
        activities: InstanceActivities | None = None,
        clock: Clock = SYSTEM_CLOCK,
        on_lifecycle: Callable[[LifecycleNotice], None] | None = None,
    ) -> None:
        """Args:
        pool: The database pool (registry, mirror).
        client: The Temporal client (its connection is used with the data converter of
            the host's values: :func:`.worker.carrying_values`).
        options: Namespace and task queue.
        registry: The workflow registry (one is made on ``pool`` by default).
        activities: Run a worker with these in this process (``None``: no worker here).
        clock: The clock of the services around it (the workflow subscriber's).
        on_lifecycle: Takes the ``started`` notice of each instance it starts with its
            definition (the worker reports the rest: ``InstanceActivities``).
        """
        self.client = carrying_values(client)
        self.options = options
        self.registry = registry or PostgresRegistry(pool)
        self.instances = PostgresInstances(pool)
        self.mirror = PostgresMirror(pool)
        self.clock = clock
        self.supervisor = Supervisor("temporal")
        self.delivery = SignalDelivery(pool, self)
        """Answers the event waits the workflows record, by signalling their events."""
        self._activities = activities
        self._worker: Worker | None = None
        self._on_lifecycle = on_lifecycle
        self._definitions: dict[tuple[str, str], StoredDefinition] = {}
        """Resolved definitions by ``(workflow, version)``: a stored version never changes
        (deploying it again with another source is refused), so they are read once."""
        self._ends: dict[str, list[asyncio.Future[InstanceRow | None]]] = {}
        """The open :meth:`wait_for_completion` calls, by instance."""
        self._reads = TaskSet("reading an ended instance", log)
        """Reads of ended instances' rows, on their ``done`` notifications."""
        self._listener = Listener(pool, "temporal ends", health=self.supervisor)
        self._listener.listen(NOTIFY_CHANNEL, self._notified)
        if activities is not None:
            activities.on_end(self._resolve)

    async def start(self) -> None:
        """Listen for ends; start the worker of this process, if it runs one (supervised)."""
        self.supervisor.spawn("listen", self._listener.run)
        activities = self._activities
        if activities is None:
            return

        async def run() -> None:  # a new worker on each (re)start
            self._worker = instance_worker(self.client, self.options.task_queue, activities)
            await self._worker.run()

        self.supervisor.spawn("worker", run)

    async def stop(self) -> None:
        """Stop the worker: workflow tasks and activities in flight finish first."""
        if self._worker is not None:
            try:
                await self._worker.shutdown()
            except (RuntimeError, RPCError) as exc:  # never started, or already shut down
                log.warning("temporal worker shutdown: %s", exc)
        await self.supervisor.stop()
        await self._reads.cancel()

    async def __aenter__(self) -> TemporalRuntime:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start_instance(
        self,
        workflow_id: str,
        input: Any,
        *,
        version: str | None = None,
        parent_id: str | None = None,
        instance_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> InstanceRow:
        """Create the mirrored instance, then its Temporal workflow.

        ``headers`` are not kept: ``$WORKFLOW.headers`` is ``{}`` on this engine.

        Raises:
            WorkflowNotFound: No such workflow (or version), or it is deleted.
            ValueLimitExceeded: The input is nested too deep or too large.
            StoreError: Temporal refused the start (the row is marked failed).
        """
        limits.check_value(input, "the instance input")
        new = (instance_id or ids.new_sortable_id(), workflow_id, version, input, parent_id)
        rows = await self.mirror.create([new])
        if not rows:
            return await self._not_created(workflow_id, version, instance_id)
        await self._run(rows[0])
        return rows[0]

    async def start_instances(
        self,
        workflow_id: str,
        inputs: Sequence[Any],
        *,
        version: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> list[InstanceRow]:
        """Create instances of one workflow version, one per input, all or none, and run them.

        ``headers`` are not kept: ``$WORKFLOW.headers`` is ``{}`` on this engine.

        Raises:
            WorkflowNotFound: No such workflow (or version), or it is deleted.
            ValueLimitExceeded: An input is nested too deep or too large (``inputs[i]``).
        """
        for index, value in enumerate(inputs):
            limits.check_value(value, f"inputs[{index}]")
        news = [(ids.new_sortable_id(), workflow_id, version, value, None) for value in inputs]
        rows = await self.mirror.create(news)
        if len(rows) < len(news):
            await self._not_created(workflow_id, version, None)
        for row in rows:
            await self._run(row)
        return rows

    async def _not_created(
        self, workflow_id: str, version: str | None, instance_id: str | None
    ) -> InstanceRow:
        if instance_id is not None:
            try:
                return await self.instances.get(instance_id)
            except InstanceNotFound:  # not created for another reason: say which below
                pass
        await self.registry.get(workflow_id, version)  # raises WorkflowNotFound
        raise WorkflowNotFound(f"workflow {workflow_id!r} is deleted: no new instances")

    signals_start = True
    """Starting events go with the start (signal-with-start), not through the inbox."""

    async def start_with_events(
        self, workflow_id: str, version: str, instance_id: str, events: list[Any]
    ) -> InstanceRow:
        """Start an instance with ``events`` buffered for its first wait (signal-with-start).

        Idempotent: an instance that exists already is returned as it is (its events
        were signalled with its start).

        Raises:
            WorkflowNotFound: No such workflow (or version), or it is deleted.
        """
        rows = await self.mirror.create([(instance_id, workflow_id, version, {}, None)])
        if not rows:
            return await self._not_created(workflow_id, version, instance_id)
        await self._run(rows[0], events)
        return rows[0]

    async def interpreter(
        self, workflow_id: str, version: str
    ) -> tuple[Workflow, WorkflowInterpreter]:
        """The model and interpreter of a deployed version (as a worker compiles them).

        Raises:
            WorkflowNotFound: No such version, or it was stored without its resolved document.
            WorkflowValidationError: The stored definition no longer loads.
        """
        stored = stored_definition(await self.registry.get(workflow_id, version))
        return compile_model(stored)

    async def _definition(self, workflow_id: str, version: str) -> StoredDefinition | None:
        """The resolved definition a run of ``version`` compiles (``None``: one deployed
        before resolved documents were kept -- the run's ``tideflow.begin`` says so)."""
        key = (workflow_id, version)
        found = self._definitions.get(key)
        if found is None:
            try:
                found = stored_definition(await self.registry.get(workflow_id, version))
            except WorkflowNotFound:
                return None
            if len(self._definitions) >= _MAX_DEFINITIONS:
                self._definitions.pop(next(iter(self._definitions)))
            self._definitions[key] = found
        return found

    async def _run(self, row: InstanceRow, events: list[Any] | None = None) -> None:
        """Start the workflow of a row just created (running, its version resolved): with
        its definition, so the run begins without a local activity (it would read the
        definition and write the record the row already is); ``started`` is reported here."""
        definition = await self._definition(row.workflow_id, row.version)
        start = InstanceStart(
            workflow_id=row.workflow_id,
            version=row.version,
            input=row.input,
            instance_id=row.id,
            parent_id=row.parent_id,
            mirrored=True,  # the row was just created: the run's first record writes nothing
            definition=definition,
        )
        signal: dict[str, Any] = {}
        if events:
            signal = {"start_signal": SIGNAL_EVENTS, "start_signal_args": [events]}
        try:
            await self.client.start_workflow(
                WORKFLOW_TYPE, start, id=row.id, task_queue=self.options.task_queue, **signal
            )
        except RPCError as exc:
            error = {"name": "error", "code": "TEMPORAL", "message": f"start refused: {exc}"}
            await self.mirror.finish(row.id, "failed", error=error, data=None)
            raise StoreError(f"temporal refused to start instance {row.id}: {exc}") from exc
        if definition is not None and self._on_lifecycle is not None:
            first = Progress(
                instance_id=row.id,
                run_no=1,
                workflow_id=row.workflow_id,
                version=row.version,
                status="running",
                create=True,
                parent_id=row.parent_id,
            )
            for notice in notices(first, self.clock.now()):
                self._on_lifecycle(notice)

    def handle(self, instance_id: str) -> WorkflowHandle[Any, Any]:
        """The Temporal handle of an instance (its latest run)."""
        return self.client.get_workflow_handle(instance_id)

    async def wait_for_completion(
        self,
        instance_id: str,
        timeout: float | None,  # noqa: ASYNC109 -- the API passes ?wait=SECONDS
    ) -> InstanceRow:
        """The instance once it has ended, or as it is when ``timeout`` seconds pass.

        The end is taken from the mirror as soon as the workflow's last record committed it
        (see the module docs), without waiting for Temporal to complete the workflow.

        Raises:
            InstanceNotFound: No such instance.
        """
        future: asyncio.Future[InstanceRow | None] = asyncio.get_running_loop().create_future()
        self._ends.setdefault(instance_id, []).append(future)
        try:
            row = await self.instances.get(instance_id)
            if row.final:
                return row
            # In this task, the wait for the workflow's result beside it: the end committed
            # answers at the next pass of the loop, and that wait (a Temporal long poll,
            # holding nothing) is cancelled without waiting for its way out.
            with contextlib.suppress(TimeoutError):  # still running: the row as it is
                async with asyncio.timeout(timeout), Watched(self._result(instance_id)):
                    await future
            ended = future.result() if future.done() and not future.cancelled() else None
            return ended if ended is not None else await self.instances.get(instance_id)
        finally:
            waiters = self._ends.get(instance_id, [])
            if future in waiters:
                waiters.remove(future)
            if not waiters:
                self._ends.pop(instance_id, None)

    async def _result(self, instance_id: str) -> None:
        """Return once the workflow has ended, however it ended."""
        try:
            await self.handle(instance_id).result()
        except WorkflowFailureError as exc:  # failed or cancelled: the row says how
            log.debug("instance %s ended: %s", instance_id, exc)
        except (RPCError, RuntimeError) as exc:  # the cluster is away (RuntimeError: the
            # client's connection is gone), or the history is gone: the caller reads the row
            log.warning("instance %s: waiting for its end failed: %s", instance_id, exc)

    def _resolve(self, instance_id: str, row: InstanceRow | None) -> None:
        """Answer the waits for ``instance_id``: its final ``row``, or ``None`` (they read
        it). A worker of this process calls it once it committed an instance's end."""
        for future in self._ends.get(instance_id, []):
            if not future.done():
                future.set_result(row)

    def _notified(self, payload: str) -> None:
        """``done:<ids>``: instances whose end a worker committed (any process); the row of
        each one waited for is read once for all its waiters (unless this process's worker
        hands it over first)."""
        if not payload.startswith("done:"):
            return
        here = self._activities
        for instance_id in payload[5:].split(","):
            if (here is None or not here.finishing(instance_id)) and self._waited(instance_id):
                self._reads.spawn(self._read_end(instance_id))

    def _waited(self, instance_id: str) -> bool:
        return any(not future.done() for future in self._ends.get(instance_id, ()))

    async def _read_end(self, instance_id: str) -> None:
        if not self._waited(instance_id):  # handed over by this process's worker meanwhile
            return
        try:
            row: InstanceRow | None = await self.instances.get(instance_id)
        except (InstanceNotFound, StoreError, asyncpg.PostgresError, OSError) as exc:
            log.debug("instance %s: reading its end failed: %s", instance_id, exc)
            row = None  # its waiters read it themselves
        if row is None or row.final:
            self._resolve(instance_id, row)

    async def cancel(self, instance_id: str) -> InstanceRow:
        """Cancel the workflow (it records ``cancelled`` as it stops)."""
        row = await self.instances.get(instance_id)
        if not row.final:
            await self._signal(instance_id, None)
        return row

    async def suspend(self, instance_id: str) -> InstanceRow:
        """Hold the instance at its next step."""
        row = await self.instances.get(instance_id)
        if not row.final:
            await self._signal(instance_id, SIGNAL_SUSPEND, update=True)
            row = await self.instances.get(instance_id)
        return row

    async def resume(self, instance_id: str) -> InstanceRow:
        """Let a suspended instance go on."""
        row = await self.instances.get(instance_id)
        if not row.final:
            await self._signal(instance_id, SIGNAL_RESUME, update=True)
            row = await self.instances.get(instance_id)
        return row

    async def retry(self, instance_id: str) -> InstanceRow:
        """Not offered on Temporal (its own workflow reset does this).

        Raises:
            ConflictError: Always.
        """
        raise ConflictError(
            f"instance {instance_id!r}: retry is not available under --engine temporal "
            "(use Temporal's workflow reset)"
        )

    async def signal_event(self, instance_id: str, event: dict[str, Any]) -> None:
        """Hand an event to the instance's waits (buffered until one takes it).

        Raises:
            EngineUnavailable: Temporal did not take the signal, and not because the
                instance ended (the event was not handed over).
        """
        await self._signal(instance_id, SIGNAL_EVENT, event)

    async def signal_events(self, instance_id: str, events: list[dict[str, Any]]) -> None:
        """Hand events to the instance's waits, in order, in one signal.

        Raises:
            EngineUnavailable: Temporal did not take the signal, and not because the
                instance ended (the caller's delivery is rolled back and made again).
        """
        await self._signal(instance_id, SIGNAL_EVENTS, events)

    async def _signal(
        self, instance_id: str, name: str | None, *args: Any, update: bool = False
    ) -> None:
        """Send a signal, an update or (``name`` ``None``) the cancellation.

        Only a refusal because the instance has ended is taken (logged): the caller reads
        the row, which shows the end. Every other refusal -- the cluster unreachable, a
        timeout -- raises, so the caller is told and nothing is taken as done that was not.

        Raises:
            EngineUnavailable: Temporal did not take it, and not because the instance ended.
        """
        handle = self.handle(instance_id)
        what = name or "cancel"
        try:
            if name is None:
                await handle.cancel()
            elif update:  # answered once the workflow applied it (and recorded it)
                await handle.execute_update(name, *args)
            else:
                await handle.signal(name, *args)
        except WorkflowUpdateFailedError as exc:  # it ended while the update was open
            log.info("instance %s: %s not applied: %s", instance_id, what, exc)
        except (RPCError, RuntimeError) as exc:  # RuntimeError: the client's connection is gone
            if isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND:
                log.info("instance %s: %s not delivered, it ended: %s", instance_id, what, exc)
                return
            raise EngineUnavailable(
                f"temporal at {self.options.address}: {what} for instance {instance_id} "
                f"not delivered: {exc}"
            ) from exc
