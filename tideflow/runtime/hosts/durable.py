"""The durable host: workflow instances journaled in PostgreSQL, replayed after a crash.

:class:`DurableRuntime` is the service ``tideflow serve`` runs (``async with``
or :meth:`~DurableRuntime.start` / :meth:`~DurableRuntime.stop`). It runs
the pure interpreter with journaled effects
(:mod:`tideflow.runtime.hosts._journaled_effects`): every effect result is
committed -- group-committed with the other instances' writes
(:mod:`tideflow.runtime.journal`) -- before the interpreter sees it, so
after a crash a replay of the journal brings an instance back to where it
stopped without calling completed functions again. Function calls are
at-least-once: a call in flight at a crash is made again on replay, with the
same idempotency key as every other attempt of that call (the one rule of
:mod:`tideflow.runtime.hosts.plumbing`).

Waiting instances hold no memory: they are parked in the database (an event
wait row; for sleeps, retry back-offs and timeouts a wake-up timer of the
timer service, added in the parking transaction -- see
:mod:`tideflow.runtime.wakeups`) and replayed when
:meth:`~DurableRuntime.deliver_events`, a child's end or their timer wakes
them. The runtime uses the :class:`~tideflow.timer.service.TimerService` it
is given (``tideflow serve`` shares one) or starts its own.
Sleeps of at most ``memory_sleep`` seconds are slept in memory instead, the
instance staying leased (their due time is journaled: after a crash the
lease runs out and a replay in any process ends the sleep at its due time),
which saves a park and a replay for the short pauses that dominate retries.

Processes sharing a database share the instances through leases
(:mod:`tideflow.runtime.claimer`).

The host by concept, imports running one way (service -> runner -> effects):

- this module: the service -- lifecycle, instances, the runners in memory,
  and every role of :mod:`~tideflow.runtime.hosts._runner_services` its
  runners (:class:`RunnerServices`) and their effects (:class:`EffectsServices`) use;
- :mod:`~tideflow.runtime.hosts._instance_runner`: one claimed instance run
  until it ends, parks or stops;
- :mod:`~tideflow.runtime.hosts._journaled_effects`: the journaled
  :class:`~tideflow.runtime.effects.Effects` of one run;
- :mod:`~tideflow.runtime.hosts.plumbing`: what every host shares.

Events answering waits come through the runtime's port
(:mod:`tideflow.runtime.waits`), whose delivery reaches the runners in memory
here through its ``Runners`` Protocol.

Compiled definitions (:class:`Definitions`) are the service's: one load per
workflow version, shared by its runners. A 0.8 version is built from the
resolved document stored with it at deploy
(:attr:`~tideflow.runtime.rows.WorkflowVersion.resolved`): what was validated
then, with nothing fetched again. An interpreter -- 0.8 or 1.0, by the stored
document's ``document.dsl`` -- is compiled once per ``(workflow id, version)``
and run by every instance of that version; the callbacks of a run (timeline
rows, state reports) are passed to
:meth:`~tideflow.runtime.interpreter.Interpreter.run`, so one cached
interpreter serves any number of runners at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, cast

import asyncpg

from tideflow import ids, limits, tracing
from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.egress import EgressPolicy
from tideflow.errors import (
    ConflictError,
    FunctionCallError,
    InstanceNotFound,
    TideflowError,
    ValueLimitExceeded,
    WorkflowLoadError,
    WorkflowNotFound,
    WorkflowValidationError,
)
from tideflow.notify import CONNECTION_ERRORS
from tideflow.references import resolve_definition
from tideflow.runtime import gateway
from tideflow.runtime.claimer import ClaimerOptions, InstanceClaimer
from tideflow.runtime.dsl1 import Interpreter as Interpreter1
from tideflow.runtime.effects import SubflowCall, WorkflowInterpreter
from tideflow.runtime.functions import FunctionInvoker, Invocation
from tideflow.runtime.functions.policy import PythonPolicy
from tideflow.runtime.gateway import InstanceRow, PostgresInstances, PostgresRegistry
from tideflow.runtime.hosts._instance_runner import InstanceRunner, quarantine_error
from tideflow.runtime.hosts._runner_services import (
    EmitSink,
    InstanceRef,
    LifecycleEvent,
    LifecycleHook,
    RuntimeOptions,
)
from tideflow.runtime.interpreter import Interpreter
from tideflow.runtime.journal import JournalWriter, NewInstance
from tideflow.runtime.result import WorkflowError
from tideflow.runtime.status import InstanceStatus
from tideflow.runtime.waits import Answer, WaitDelivery
from tideflow.runtime.wakeups import WAKE_KIND, TimerLoader, fire_wakeups
from tideflow.secrets import SecretAccess
from tideflow.supervise import Supervisor, TaskSet
from tideflow.timer.service import TimerService
from tideflow.workflow.dsl1 import is_dsl1, load_document
from tideflow.workflow.loader import build_definition, parse_document
from tideflow.workflow.model import Workflow

__all__ = ["DurableRuntime", "LifecycleEvent", "RuntimeOptions"]

T = TypeVar("T")
log = logging.getLogger("tideflow.runtime")

Definition = tuple[Workflow, WorkflowInterpreter]
"""A version's model and its interpreter."""


class Definitions:
    """Workflow models and interpreters by version, loaded from the registry once each.

    Args:
        registry: Where deployed definitions are stored.
        base_dir: Folder for relative function references.
        module_dirs: More folders searched for ``python:`` modules, in order.
        dialect: The interpreter dialect for every version (else the one each
            version was deployed with).
        egress: What an old version's references may read when it is
            resolved here (stored before resolved documents were kept).
        secrets: Gives each version the values of the secrets granted to its
            workflow id (:mod:`tideflow.secrets.access`), read at its first load here.
    """

    def __init__(
        self,
        registry: PostgresRegistry,
        *,
        base_dir: Path,
        module_dirs: tuple[Path, ...] = (),
        dialect: str | None = None,
        egress: EgressPolicy | None = None,
        secrets: SecretAccess,
    ) -> None:
        self._registry = registry
        self._egress = egress
        self._secrets = secrets
        self._base_dir = base_dir
        self._module_dirs = module_dirs
        self._dialect = dialect
        self._loading: dict[
            tuple[str, str], asyncio.Future[tuple[Workflow, WorkflowInterpreter]]
        ] = {}
        self._module_dir_cache: dict[str, Path] = {}
        self._loads = TaskSet("definition load", log, awaited=True)

    async def get(self, workflow_id: str, version: str) -> Definition:
        """The workflow model and its interpreter, compiled once per version.

        Raises:
            WorkflowNotFound: No such version.
            WorkflowValidationError: The stored definition no longer loads.
        """
        key = (workflow_id, version)
        loading = self._loading.get(key)
        if loading is None:  # one load per version, however many runners ask at once
            loading = self._loading[key] = self._loads.spawn(self._load(*key))
        elif loading.done() and not loading.cancelled() and loading.exception() is None:
            return loading.result()  # the usual case: no shield, no await
        try:
            return await asyncio.shield(loading)
        except TideflowError:
            self._loading.pop(key, None)
            raise

    def forget_secrets(self) -> None:
        """Secret grants changed: versions that use secrets load again at their next run."""
        for key, loading in list(self._loading.items()):
            settled = loading.done() and not loading.cancelled() and loading.exception() is None
            if not settled or loading.result()[0].secrets:
                del self._loading[key]

    async def _load(self, workflow_id: str, version: str) -> tuple[Workflow, WorkflowInterpreter]:
        stored = await self._registry.get(workflow_id, version)
        dialect = self._dialect or dialect_of(stored.content_type)
        if is_dsl1(stored.definition):
            model, _ = load_document(stored.definition, source=workflow_id, processes=False)
            values = await self._secrets.values(workflow_id, model.secrets)
            dsl1 = Interpreter1(model, secrets=values)
            # A 1.0 model and interpreter offer what the hosts read of a 0.8 pair
            # (identifier, version, secrets; run, secrets, constants).
            return cast(Workflow, model), dsl1
        source = f"workflow {workflow_id!r} version {version!r}"
        if stored.resolved is not None:  # exactly what was validated at deploy
            workflow = build_definition(stored.resolved, source=source, dialect=dialect).workflow
        else:  # deployed before resolved documents were kept: resolve the source once
            document = parse_document(stored.source_text, source)
            definition = await resolve_definition(
                document,
                source=source,
                base_dir=self._base_dir,
                dialect=dialect,
                egress=self._egress,
            )
            workflow = definition.workflow
        values = await self._secrets.values(workflow_id, workflow.secrets)
        interpreter = Interpreter(workflow, secrets=values, dialect=dialect)
        return workflow, interpreter

    def base_dir_for(self, operation: str) -> Path:
        """The folder a function's relative references resolve in.

        For ``python:pkg.mod:fn``: the first of ``base_dir`` and
        ``module_dirs`` holding ``pkg.py`` or ``pkg/`` (else ``base_dir``).
        """
        if not self._module_dirs or not operation.startswith("python:"):
            return self._base_dir
        return module_dir(operation, self._base_dir, self._module_dirs, self._module_dir_cache)


def module_dir(
    operation: str, base_dir: Path, module_dirs: Sequence[Path], cache: dict[str, Path]
) -> Path:
    """Where a ``python:pkg.mod:fn`` operation's module resolves: the first of ``base_dir``
    and ``module_dirs`` holding ``pkg.py`` or ``pkg/`` (else ``base_dir``), kept in ``cache``
    by top-level package; ``base_dir`` for any other operation."""
    if not module_dirs or not operation.startswith("python:"):
        return base_dir
    top = operation[len("python:") :].split(":", 1)[0].split(".", 1)[0]
    found = cache.get(top)
    if found is None:
        found = next(
            (
                folder
                for folder in (base_dir, *module_dirs)
                if (folder / f"{top}.py").is_file() or (folder / top).is_dir()
            ),
            base_dir,
        )
        cache[top] = found
    return found


def dialect_of(content_type: str) -> str | None:
    """The ``dialect`` parameter a version was deployed with (``?dialect=``), if any."""
    for part in content_type.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip() == "dialect" and value.strip():
            return value.strip()
    return None


class DurableRuntime:
    """The durable workflow runtime of one process (see the module docs).

    Args:
        pool: The database pool (migrated).
        options: Lease, memory, functions...
        invoker: Function invoker (made from ``options`` by default, and closed on stop).
        clock: The clock for sleeps, timeouts and ``now()``.
        emit: Where events produced by workflows go (the event store); by
            default they are kept in :attr:`emitted`.
        on_lifecycle: Called (synchronously, keep it quick) with every
            :class:`LifecycleEvent` after it is committed.
        timers: The timer service that fires parked instances' wake-ups (its
            handler is registered here: pass it before it starts). By default
            the runtime starts and stops a service of its own.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        options: RuntimeOptions | None = None,
        *,
        invoker: FunctionInvoker | None = None,
        clock: Clock = SYSTEM_CLOCK,
        emit: EmitSink | None = None,
        on_lifecycle: LifecycleHook | None = None,
        timers: TimerService | None = None,
    ) -> None:
        self.options = options or RuntimeOptions()
        self.pool = pool
        self.clock = clock
        self.registry = PostgresRegistry(pool)
        self.instances = PostgresInstances(pool)
        self._own_invoker = invoker is None
        self.invoker = invoker or FunctionInvoker(
            overrides=self.options.functions,
            servers=self.options.servers,
            brokers=self.options.brokers,
        )
        self.python_policy = self.options.python_policy or PythonPolicy.for_server(
            folders=[self.options.base_dir]
        )
        self.supervisor = Supervisor("runtime", clock=clock)
        """Owns the journal writer and the claimer (``/healthz`` reports them)."""
        self.writer = JournalWriter(pool, self.options.owner, self.options.lease_seconds, clock)
        self.worker = InstanceClaimer(
            pool,
            ClaimerOptions(
                owner=self.options.owner,
                lease_seconds=self.options.lease_seconds,
                poll_seconds=self.options.poll_seconds,
                max_running=self.options.max_running,
            ),
            spawn=self._claimed,
            # a delivery's claim is not committed while its runs' writes are staged: a lease
            # renewal meanwhile would take it for lost (journal.Stage)
            running=lambda: self.writer.unstaged(list(self._runners)),
            lost=self._lost,
            done=self._ended_elsewhere,
            clock=clock,
            health=self.supervisor,
        )
        self.reclaimed: int | None = None
        """Leases of this owner's previous life ended at start (``options.take_over``;
        ``None``: not tried)."""
        self.emitted: list[dict[str, Any]] = []
        self._emit = emit
        self.on_lifecycle = on_lifecycle
        self._runners: dict[str, InstanceRunner] = {}
        self._tasks = TaskSet("durable runtime task", log)
        """The runners' tasks and fire-and-forget calls (``stop()`` waits for them)."""
        self._done: dict[str, list[asyncio.Future[InstanceRow | None]]] = {}
        self._definitions = Definitions(
            self.registry,
            base_dir=self.options.base_dir,
            module_dirs=self.options.module_dirs,
            dialect=self.options.dialect,
            egress=self.invoker.egress,
            secrets=self.options.secrets,
        )
        self.delivery = WaitDelivery(
            pool,
            self.options.owner,
            self.options.lease_seconds,
            runners=self,
            journal=self.writer,
            clock=clock,
        )
        """Answers event waits; the runtime's port (:class:`~tideflow.runtime.waits.EventWaits`)
        calls it directly, so an event's way to its instance does not pass through here."""
        self._own_timers = timers is None
        self.timers = timers or TimerService(pool, clock=clock)
        self.timers.register(WAKE_KIND, fire_wakeups)
        self._timer_loader = TimerLoader(self.timers)
        self.writer.on_wake_timers = self._timer_loader.poke

    # --- service lifecycle -------------------------------------------------------

    async def __aenter__(self) -> DurableRuntime:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start the journal writer, the worker and (when it owns one) the timer service;
        with ``options.take_over``, first end the leases of this owner's previous life."""
        if self.options.take_over:
            try:
                self.reclaimed = await self.worker.take_over()
            except CONNECTION_ERRORS as exc:  # its leases run out instead
                log.warning("reclaiming the leases of a previous life failed: %s", exc)
        if self._own_timers:
            await self.timers.start()
        # Both survive database outages themselves; anything else they raise is
        # logged by the supervisor, which runs them again after a back-off.
        self.supervisor.spawn("journal", self.writer.run)
        self.supervisor.spawn("claimer", self.worker.run)
        await asyncio.sleep(0)

    async def stop(self) -> None:
        """Stop: in-memory instances are handed back (runnable) for any process to replay."""
        for runner in list(self._runners.values()):
            runner.interrupt("shutdown")
        await self._tasks.wait(timeout=10)
        self.writer.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self.supervisor.wait("journal")  # commits what the runners left
        await self.supervisor.stop()
        await self._tasks.cancel()
        try:
            await self.worker.release_all()
        except CONNECTION_ERRORS as exc:
            log.warning("releasing leases failed: %s", exc)
        await self._stop_timers()
        if self._own_invoker:
            await self.invoker.aclose()

    async def _stop_timers(self) -> None:
        await self._timer_loader.close()
        if self._own_timers:
            await self.timers.stop()

    async def kill(self) -> None:
        """Stop abruptly, as a crash would: nothing is handed back (tests)."""
        for runner in list(self._runners.values()):
            runner.kill()
        self.writer.close()
        await self.supervisor.stop()
        await self._tasks.cancel()
        await self._stop_timers()
        if self._own_invoker:
            await self.invoker.aclose()

    # --- instances ---------------------------------------------------------------

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
        """Create an instance of the workflow (latest version by default) and run it here.

        ``headers``: the filtered headers of the HTTP request starting it
        (``$WORKFLOW.headers``; :mod:`tideflow.api.start_headers`).

        Raises:
            WorkflowNotFound: No such workflow (or version), or it is deleted.
            WorkflowValidationError: The stored definition no longer loads.
            ValueLimitExceeded: The input is nested too deep or too large.
        """
        limits.check_value(input, "the instance input")  # before any writer meets it
        new = NewInstance(
            id=instance_id or ids.new_sortable_id(),
            workflow_id=workflow_id,
            version=version,
            input=input,
            parent_id=parent_id,
            headers=headers,
        )
        row = await self.writer.create(new)
        if row is None:
            if instance_id is not None:
                with contextlib.suppress(InstanceNotFound):
                    return await self.instances.get(instance_id)
            await self.registry.get(workflow_id, version)  # raises WorkflowNotFound
            raise WorkflowNotFound(f"workflow {workflow_id!r} is deleted: no new instances")
        self._spawn(row, fresh=True)
        if tracing.enabled() and (runner := self._runners.get(row.id)) is not None:
            runner.trace_start()  # an event delivered, or a request, in a sampled trace
        self.lifecycle("started", row, parentId=row.parent_id, run=row.run_no)
        return row

    signals_start = False
    """Starting events reach an instance through the inbox of its first wait (the workflow
    subscriber's :class:`~tideflow.triggers.correlation.SubscribedRuntime`)."""

    async def start_with_events(
        self, workflow_id: str, version: str, instance_id: str, events: list[Any]
    ) -> InstanceRow:
        """Not used here (``signals_start`` is false): the subscriber fills the inbox."""
        raise NotImplementedError("the durable host takes starting events from the inbox")

    async def start_instances(
        self,
        workflow_id: str,
        inputs: Sequence[Any],
        *,
        version: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> list[InstanceRow]:
        """Create instances of one workflow version, one per input, all or none, and run them.

        ``headers``: the filtered headers of the HTTP request starting them, for each.

        The creates are queued together, so the journal writer commits them in one
        transaction: every instance is created, or (the workflow deleted, the
        database away) none is.

        Raises:
            WorkflowNotFound: No such workflow (or version), or it is deleted.
            ValueLimitExceeded: An input is nested too deep or too large (``inputs[i]``).
            StoreError: The commit failed (nothing was created).
        """
        for index, value in enumerate(inputs):
            limits.check_value(value, f"inputs[{index}]")
        futures = [
            self.writer.create(
                NewInstance(
                    id=ids.new_sortable_id(),
                    workflow_id=workflow_id,
                    version=version,
                    input=value,
                    headers=headers,
                )
            )
            for value in inputs
        ]  # no await between the creates: one batch, one transaction
        created = await asyncio.gather(*futures)
        rows = [row for row in created if row is not None]
        if len(rows) < len(created):  # none was created: the version is not there
            await self.registry.get(workflow_id, version)  # raises WorkflowNotFound
            raise WorkflowNotFound(f"workflow {workflow_id!r} is deleted: no new instances")
        for row in rows:
            self._spawn(row, fresh=True)
            self.lifecycle("started", row, parentId=None, run=row.run_no)
        return rows

    async def start_child(
        self, call: SubflowCall, child: str, parent_id: str, parent_key: str | None
    ) -> None:
        """Create and run a sub-flow instance (nothing when it exists already)."""
        try:
            version = await self.resolve_version(call.workflow_id, call.version)
            await self.interpreter(call.workflow_id, version)
        except (WorkflowNotFound, WorkflowLoadError, WorkflowValidationError) as exc:
            raise FunctionCallError(
                f"sub-workflow {call.workflow_id!r} cannot be started: {exc}",
                code="SubflowNotFound",
                retryable=False,
            ) from exc
        try:
            limits.check_value(call.input, "the sub-workflow's input")
        except ValueLimitExceeded as exc:
            raise FunctionCallError(exc.message, code=exc.code, retryable=False) from None
        new = NewInstance(
            id=child,
            workflow_id=call.workflow_id,
            version=version,
            input=call.input,
            parent_id=parent_id,
            parent_key=parent_key,
        )
        row = await self.writer.create(new)
        if row is None:
            try:
                await self.instances.get(child)  # started before a crash: fine
            except InstanceNotFound:
                raise FunctionCallError(
                    f"sub-workflow {call.workflow_id!r} cannot be started: it is deleted",
                    code="SubflowNotFound",
                    retryable=False,
                ) from None
            return
        self._spawn(row, fresh=True)
        self.lifecycle("started", row, parentId=row.parent_id, run=row.run_no)

    async def wait_for_completion(
        self,
        instance_id: str,
        timeout: float | None,  # noqa: ASYNC109 -- the API passes ?wait=SECONDS
    ) -> InstanceRow:
        """The instance once it has ended, or as it is when ``timeout`` seconds pass.

        Raises:
            InstanceNotFound: No such instance.
        """
        future: asyncio.Future[InstanceRow | None] = asyncio.get_running_loop().create_future()
        self._done.setdefault(instance_id, []).append(future)
        try:
            # A runner in memory tells its waiters when its end commits -- unless it has told
            # them already (it stays in memory until its task finishes): then read the row.
            runner = self._runners.get(instance_id)
            if runner is None or runner.ended:
                row = await self.instances.get(instance_id)
                if row.final:
                    return row
            try:
                async with asyncio.timeout(timeout):
                    final = await future
            except TimeoutError:
                final = None
            if final is not None:
                return final
            return await self.instances.get(instance_id)
        finally:
            waiters = self._done.get(instance_id, [])
            if future in waiters:
                waiters.remove(future)
            if not waiters:
                self._done.pop(instance_id, None)

    @property
    def waiting_for_ends(self) -> int:
        """How many :meth:`wait_for_completion` calls are open (long polls, tests)."""
        return sum(len(futures) for futures in self._done.values())

    async def deliver_events(
        self, instance_id: str, wait_key: str, events: list[dict[str, Any]]
    ) -> bool:
        """Answer an open event wait with ``events``: journal them and wake the instance.

        See :meth:`~tideflow.runtime.waits.WaitDelivery.deliver_events`.

        Returns:
            Whether the wait was open and took the events.
        """
        return await self.delivery.deliver_events(instance_id, wait_key, events)

    async def deliver_many(
        self, answers: Sequence[Answer], conn: asyncpg.Connection | None = None
    ) -> list[bool]:
        """Answer many waits ``(instance id, wait key, events)`` in one transaction.

        The parked instances they wake are claimed by this process in the same
        transaction and resumed here at once (see
        :mod:`tideflow.runtime.waits`). ``conn``: a connection
        the caller holds (saves a pool round trip); one from the pool by default.

        Returns:
            For each answer, whether its wait was open and took the events.
        """
        return await self.delivery.deliver_many(answers, conn)

    # --- the runners in memory (what deliveries and the claimer see) ---------------

    @property
    def room(self) -> int:
        """How many more instances may run in memory here."""
        return self.options.max_running - len(self._runners)

    def holds(self, instance_id: str) -> bool:
        """Whether a runner for ``instance_id`` is in memory here."""
        return instance_id in self._runners

    def resume_claimed(self, row: InstanceRow, loaded: tuple[list[dict[str, Any]], int]) -> None:
        """Run an instance claimed outside the worker, with its journal and step count."""
        self.worker.claimed += 1
        if row.id in self._runners:  # cannot happen: we held no lease; the lease will run out
            log.warning("instance %s claimed while a runner was in memory", row.id)
        self._spawn(row, fresh=False, loaded=loaded)
        if tracing.enabled() and (runner := self._runners.get(row.id)) is not None:
            runner.traced(tracing.resume_parent(row.id))

    def hand_over(self, instance_id: str, wait_key: str, events: list[dict[str, Any]]) -> None:
        """Give journaled events to the instance's runner if it is parked in memory here."""
        runner = self._runners.get(instance_id)
        # Traced once taken (it runs on at its next turn): a runner parking at this moment
        # leaves the instance, and the trace it continues, to the claimer.
        if runner is not None and runner.deliver(wait_key, events) and tracing.enabled():
            runner.traced(tracing.resume_parent(instance_id))

    async def cancel(self, instance_id: str) -> InstanceRow:
        """Cancel now when idle, else at the instance's next step."""
        row = await self.instances.request_cancel(instance_id)
        if row.status == InstanceStatus.CANCELLED:
            self.lifecycle("cancelled", row)
            self.finished(instance_id)
        return row

    async def cancel_child(self, instance_id: str) -> None:
        """Cancel a sub-flow whose parent ended (``onParentComplete: terminate``)."""
        with contextlib.suppress(InstanceNotFound):
            row = await self.instances.get(instance_id)
            if not row.final:
                await self.cancel(instance_id)

    async def suspend(self, instance_id: str) -> InstanceRow:
        """Suspend now when idle, else at the instance's next step."""
        row = await self.instances.request_suspend(instance_id)
        if row.status == InstanceStatus.SUSPENDED:
            self.lifecycle("suspended", row)
        return row

    async def resume(self, instance_id: str) -> InstanceRow:
        """Resume a suspended instance (it replays and continues)."""
        row = await self.instances.request_resume(instance_id)
        self.lifecycle("resumed", row)
        self.worker.poke()
        return row

    async def retry(self, instance_id: str) -> InstanceRow:
        """Run a failed instance again from its failed step (it replays its journal).

        Raises:
            InstanceNotFound: No such instance.
            ConflictError: It has not failed.
        """
        row = await self.instances.request_retry(instance_id)
        if row is None:
            current = await self.instances.get(instance_id)
            raise ConflictError(
                f"instance {instance_id!r} is {current.status}, not failed: only a failed "
                "instance can be retried"
            )
        self.lifecycle("resumed", row)
        self.worker.poke()
        return row

    def finished(self, instance_id: str, row: InstanceRow | None = None) -> None:
        """Wake whoever waits for ``instance_id`` to end (``row``: its final row, if known)."""
        for future in self._done.get(instance_id, []):
            if not future.done():
                future.set_result(row)

    def _ended_elsewhere(self, instance_id: str) -> None:
        # NOTIFY done:<id>. For an instance running here the runner itself
        # hands its waiters the final row (the notification may come first: waking them
        # now would cost each a read of the row).
        if instance_id not in self._runners:
            self.finished(instance_id)

    # --- what the runners and their effects use (the roles of _runner_services) -----

    async def interpreter(
        self, workflow_id: str, version: str
    ) -> tuple[Workflow, WorkflowInterpreter]:
        """The workflow model and its interpreter, compiled once per version.

        Raises:
            WorkflowNotFound: No such version.
            WorkflowValidationError: The stored definition no longer loads.
        """
        return await self._definitions.get(workflow_id, version)

    def grants_changed(self) -> None:
        """Secret grants changed (any server): a version that uses secrets receives them
        anew at its next run (a replay, a new instance); runs in progress keep theirs."""
        self._definitions.forget_secrets()

    async def is_dsl1(self, workflow_id: str, version: str) -> bool:
        """Whether a deployed version is a DSL 1.0 definition (its loaded interpreter says).

        Raises:
            WorkflowNotFound: No such version.
            WorkflowValidationError: The stored definition no longer loads.
        """
        _, interpreter = await self._definitions.get(workflow_id, version)
        return isinstance(interpreter, Interpreter1)

    async def resolve_version(self, workflow_id: str, version: str | None) -> str:
        """The stored version ``version`` names (the latest when ``None``)."""
        return (await self.registry.get(workflow_id, version)).version

    def base_dir_for(self, operation: str) -> Path:
        """The folder a function's relative references resolve in.

        For ``python:pkg.mod:fn``: the first of ``base_dir`` and
        ``module_dirs`` holding ``pkg.py`` or ``pkg/`` (else ``base_dir``).
        """
        return self._definitions.base_dir_for(operation)

    @property
    def memory_sleep(self) -> float:
        """Longest sleep slept in memory."""
        return self.options.memory_sleep

    def invoke(self, invocation: Invocation) -> Awaitable[Any]:
        """Call a function; a ``python:`` module the policy refuses is never imported.

        Definitions are checked when deployed; this catches those stored
        before the policy changed (``FORBIDDEN``, not retryable).
        """
        if self.invoker.has_override(invocation.name):  # bound callables import nothing
            return self.invoker.invoke(invocation)
        return self.python_policy.guard(invocation, self.invoker.invoke)

    def background(self, awaitable: Awaitable[Any]) -> None:
        """Run a fire-and-forget call (``invoke: async``); its errors are logged only."""

        async def guarded() -> None:
            try:
                await awaitable
            except TideflowError as exc:
                log.info("async function call failed: %s", exc)

        # Short-lived and tracked (stop() cancels it); guarded() logs its failure.
        self._tasks.spawn(guarded())

    async def emit(self, event: dict[str, Any]) -> None:
        """Hand a produced CloudEvent to the sink."""
        if self._emit is None:
            self.emitted.append(event)
        else:
            await self._emit(event)

    def lifecycle(self, kind: str, instance: InstanceRef, **detail: Any) -> None:
        """Tell the lifecycle hook (``instance``: a stored row or a runner)."""
        if self.on_lifecycle is None:
            return
        state = detail.pop("state", None)
        event = LifecycleEvent(
            kind=kind,
            instance_id=instance.id,
            workflow_id=instance.workflow_id,
            version=instance.version,
            state=state,
            detail={k: v for k, v in detail.items() if v is not None},
        )
        try:
            self.on_lifecycle(event)
        except Exception:  # a monitoring hook must not break instances
            log.exception("lifecycle hook failed")

    async def load_run(self, instance_id: str, run_no: int) -> tuple[list[dict[str, Any]], int]:
        """The run's journal and how many interpreter steps its timeline already has."""
        async with self.pool.acquire() as conn:
            return await gateway.load_run(conn, instance_id, run_no)

    async def time_out_wait(self, instance_id: str, run_no: int, wait_key: str) -> Any:
        """End an event wait whose timeout passed, unless events won the race.

        Returns:
            The wait's result: ``None`` (timed out, now journaled) or the
            events delivered just before.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            await gateway.lock_wait(conn, instance_id, wait_key)  # waits for a delivery
            entry = await gateway.journal_entry(conn, instance_id, run_no, "wait", wait_key)
            if entry is not None:
                return entry.get("result")
            await gateway.time_out_wait(conn, instance_id, wait_key, run_no)
        return None

    async def settle(
        self, instance_id: str, run_no: int, op: str, key: str, entry: dict[str, Any]
    ) -> dict[str, Any]:
        """Journal ``entry`` for a step unless another answer got there first; return the winner.

        The instance's row lock orders this against a child answering its parent.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            await gateway.lock_instance(conn, instance_id)
            found = await gateway.journal_entry(conn, instance_id, run_no, op, key)
            if found is not None:
                return found  # type: ignore[no-any-return]
            await gateway.insert_entry(conn, instance_id, run_no, op, key, entry)
        return entry

    async def drop_waits(self, instance_id: str, prefix: str | None) -> None:
        """Forget the event waits whose keys start with ``prefix`` (all with ``None``)."""
        async with self.pool.acquire() as conn:
            await gateway.drop_waits_under(conn, instance_id, prefix)

    # --- runners -------------------------------------------------------------------

    async def _claimed(self, rows: list[InstanceRow]) -> None:
        async with self.pool.acquire() as conn:
            loaded = await gateway.load_runs(conn, [r.id for r in rows], [r.run_no for r in rows])
        for row in rows:
            journal = loaded[row.id]
            if row.crashes >= self.options.quarantine_after:  # not run again: it kills runners
                self._spawn(row, fresh=False, quarantine=quarantine_error(row, journal[0]))
            else:
                self._spawn(row, fresh=False, loaded=journal)
            if tracing.enabled() and (parent := tracing.resume_parent(row.id)) is not None:
                self._runners[row.id].traced(parent)  # the first wait of an event's start

    def _spawn(
        self,
        row: InstanceRow,
        *,
        fresh: bool,
        loaded: tuple[list[dict[str, Any]], int] | None = None,
        quarantine: WorkflowError | None = None,
    ) -> None:
        if row.id in self._runners:
            return
        runner = InstanceRunner(
            self, row, effects_host=self, fresh=fresh, loaded=loaded, quarantine=quarantine
        )
        self._runners[row.id] = runner
        # One task per instance, tracked in a set, not supervised: runner.run() handles
        # every failure itself (the instance stops and is replayed), and _ended sees it end.
        task = self._tasks.spawn(runner.run())
        task.add_done_callback(functools.partial(self._ended, row.id))

    def _ended(self, instance_id: str, _task: object = None) -> None:
        runner = self._runners.pop(instance_id, None)
        if runner is not None and runner.stalled:
            self.worker.hand_back(instance_id)
        if self.room == 1:
            self.worker.poke()  # there is room again: claim what waited for it

    def _lost(self, instance_id: str) -> None:
        runner = self._runners.get(instance_id)
        if runner is not None:
            runner.interrupt("lost")

    @property
    def running(self) -> int:
        """Instances in memory now."""
        return len(self._runners)
