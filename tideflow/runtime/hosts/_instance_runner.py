"""Runs one claimed instance on the durable host until it ends, parks or stops.

:class:`InstanceRunner` replays the run's journal through the interpreter
(:class:`~tideflow.runtime.hosts._journaled_effects.DurableEffects`) and
carries on for real. It depends on its host only through the roles of
:class:`~tideflow.runtime.hosts._runner_services.RunnerServices` (journal,
clock, definitions, sub-flows, notices), hands its effects the roles of
:class:`~tideflow.runtime.hosts._runner_services.EffectsServices`, and hands
the interpreter its callbacks (timeline rows, progress) with each run.

It watches its own effects: when every effect still pending is *parked*
(waiting for events, a long sleep, a child) and nothing else of the run is
active, the run cannot progress in memory, so the runner cancels it and
parks the instance -- it then holds no memory at all.

It also applies, at the next step boundary (a journal commit), a requested
cancel or suspend, and stops at once when a commit shows the lease was lost.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tideflow import tracing
from tideflow.clock import thread_seconds
from tideflow.errors import (
    NondeterminismError,
    StoreError,
    WorkflowLoadError,
    WorkflowNotFound,
    WorkflowValidationError,
)
from tideflow.expression_budget import EvaluationPending, deferring
from tideflow.runtime.effects import WorkflowInterpreter
from tideflow.runtime.functions import AuthDefinition
from tideflow.runtime.gateway import InstanceRow
from tideflow.runtime.hosts._journaled_effects import DurableEffects
from tideflow.runtime.hosts._runner_services import EffectsServices, RunnerServices
from tideflow.runtime.hosts.plumbing import ClockPace, redactor_of, resolve_auth
from tideflow.runtime.journal import Continue, Control, Finish, Park, Stop
from tideflow.runtime.lifecycle import CORRELATION_KINDS
from tideflow.runtime.result import ContinuedAs, Failed, RunResult, Step, Terminated, WorkflowError
from tideflow.runtime.state import InstanceState
from tideflow.runtime.status import InstanceStatus
from tideflow.secrets import NO_REDACTION, Redactor
from tideflow.supervise import scoped
from tideflow.workflow.model import Workflow

if TYPE_CHECKING:
    from opentelemetry.context import Context

    from tideflow.tracing import InstanceTrace

log = logging.getLogger("tideflow.runtime")

_SETTLE_TURNS = 4  # loop turns with no effect activity before a run counts as parked
_STOP_STATUS = {"cancel": InstanceStatus.CANCELLED, "suspend": InstanceStatus.SUSPENDED}
_TASK_NOTICES = {
    "task.started": "task.started",
    "task.completed": "task.completed",
    "task.faulted": "task.faulted",
    "retry": "task.retried",
}
"""DSL 1.0 interpreter steps -> the lifecycle notices they are."""


class _Parked:
    __slots__ = ("due", "future", "wait_key")

    def __init__(self, due: tuple[datetime, str] | None, wait_key: str | None) -> None:
        self.due = due  # (due time, step key): the earliest the effect must wake for
        self.wait_key = wait_key
        self.future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()


class _Active:
    """:meth:`InstanceRunner.active`: counts an effect's real work while it lasts."""

    __slots__ = ("_runner",)

    def __init__(self, runner: InstanceRunner) -> None:
        self._runner = runner

    def __enter__(self) -> None:
        self._runner._begin_work()

    def __exit__(self, *exc: object) -> None:
        self._runner._end_work()


class InstanceRunner:
    """Runs one instance this process holds the lease of (see the module docs)."""

    def __init__(
        self,
        host: RunnerServices,
        row: InstanceRow,
        *,
        effects_host: EffectsServices,
        fresh: bool = False,
        loaded: tuple[list[dict[str, Any]], int] | None = None,
        quarantine: WorkflowError | None = None,
    ) -> None:
        """Args:
        host: The host's roles the runner uses (journal, clock, definitions, notices).
        row: The claimed instance.
        effects_host: The host's roles the run's effects use (invoker, clock, emit,
            sub-flows, contested journal writes).
        fresh: The instance was just created here: no journal to load.
        loaded: Its journal and timeline step count, loaded with others' at claim time.
        quarantine: Fail the instance with this error instead of running it (its runners
            kept dying at the same step: :func:`quarantine_error`).
        """
        self.host = host
        self._effects_host = effects_host
        self.instance_id = row.id
        self.run_no = row.run_no
        self.workflow_id = row.workflow_id
        self.version = row.version
        self.input = row.input
        self.headers = row.headers or {}  # $WORKFLOW.headers: the start request's, filtered
        self.requested = row.requested
        self.quarantine = quarantine
        self.parent_id = row.parent_id
        self._data = row.data
        self._workflow: Workflow | None = None
        self._fresh = fresh
        self._loaded = loaded
        self._interpreter: WorkflowInterpreter | None = None
        self.redactor: Redactor = NO_REDACTION
        """Hides the run's secrets in everything it writes or publishes (not in its journal)."""
        self._active = 0
        self._ticks = 0
        self._parked: list[_Parked] = []
        self._signal: asyncio.Future[None] | None = None
        self._stop: str | None = None
        self.stalled = False
        """It stopped on a database error: the runtime hands the instance back for a replay."""
        self.ended = False
        """Its end is committed and its waiters were told (its task may still be finishing:
        a waiter coming now reads the row instead of waiting to be told)."""
        self._task: asyncio.Future[RunResult] | None = None
        self._skip = 0
        self._wake: tuple[datetime, str] | None = None
        self._effects: DurableEffects | None = None
        self._started: dict[str, float] = {}
        self._activity = _Active(self)
        self._pace = ClockPace(thread_seconds)
        """When the run passes the event loop a turn: after a slice of the thread's CPU
        time, not of the host clock's -- a process preempted between a commit and the
        next check would pass a turn the run did not owe, and its next write would miss
        the group commit of the others (``bench/RESULTS.md``, issue 10). A new slice
        after each commit."""
        self.trace: InstanceTrace | None = None
        """The spans of this run, when a traced event (or request) started or resumed it."""

    @property
    def id(self) -> str:
        """The instance's id."""
        return self.instance_id

    @property
    def workflow(self) -> Workflow:
        """The definition of the current run (loaded when the run starts)."""
        assert self._workflow is not None, "no run started"
        return self._workflow

    def kill(self) -> None:
        """Stop at once without writing anything, as a crash would (tests)."""
        self._stop = "killed"
        if self._task is not None:
            self._task.cancel()

    # --- called by the effects ------------------------------------------------------

    def active(self) -> _Active:
        """Mark an effect as doing real work (the run is not parked meanwhile): a context
        manager (one object per runner, not a generator per effect: every call uses it)."""
        return self._activity

    def _begin_work(self) -> None:
        self._active += 1
        self._ticks += 1
        self.host.writer.flush()  # the steps before it are not left lingering meanwhile

    def _end_work(self) -> None:
        self._active -= 1
        self._ticks += 1
        if self._active == 0 and self._parked:
            self._poke()

    async def commit(self, op: str, key: str, entry: dict[str, Any]) -> None:
        """Journal an entry and wait for its commit; apply what the commit reports."""
        control = await self.host.writer.append(self.instance_id, self.run_no, op, key, entry)
        self._pace.rested()  # the commit gave the loop its turn: no extra one before the next write
        self._apply(control)
        if self._stop is not None:
            await asyncio.sleep(0)  # the cancellation lands here, before the next step

    def queue(self, op: str, entry: dict[str, Any]) -> None:
        """Journal an entry without waiting (``now``/``new_id``: the next commit covers it)."""
        writer = self.host.writer
        future = writer.append(self.instance_id, self.run_no, op, "", entry, awaited=False)
        future.add_done_callback(_consume)

    async def outside(self) -> None:
        """Before work outside the journal (a call, an emit, a child, a write of its own
        transaction): wait for the delivery that claimed the instance to commit, when it
        has not yet (:class:`~tideflow.runtime.journal.Stage`); stop if it rolled back."""
        barrier = self.host.writer.barrier(self.instance_id)
        if barrier is not None and not await barrier:
            self.interrupt("lost")
            await asyncio.sleep(0)  # the cancellation lands here, before the work

    async def register_wait(self, wait: dict[str, Any]) -> None:
        """Record an event wait (committed before the run may park on it)."""
        self._apply(await self.host.writer.add_wait(self.instance_id, wait))
        self._pace.rested()
        if self._stop is not None:
            await asyncio.sleep(0)

    def _apply(self, control: Control) -> None:
        if not control.held:
            self.interrupt("lost")
        elif control.requested is not None:
            self.interrupt(control.requested)

    def interrupt(self, reason: str) -> None:
        """Stop the run at once: ``lost`` (lease), ``cancel``, ``suspend`` or ``shutdown``."""
        if self._stop is None:
            self._stop = reason
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def park(
        self, *, wake: datetime | None, key: str = "", wait_key: str | None = None
    ) -> Any:
        """Never return (unless events arrive in this process): the run is parked here.

        Args:
            wake: The effect's due time (``None``: none).
            key: The effect's step key (names its wake-up timer).
            wait_key: The event wait's key, for events delivered in this process.
        """
        own = () if wake is None else ((wake, key),)
        dues = [*own, *DurableEffects.enclosing_dues()]
        parked = _Parked(min(dues) if dues else None, wait_key)
        self._parked.append(parked)
        self._ticks += 1
        if self._active == 0:
            self._poke()
        try:
            return await parked.future
        finally:
            self._parked.remove(parked)

    def traced(self, parent: Context | None) -> None:
        """Continue the trace of the event resuming the instance (``None``: untraced)."""
        if parent is None and self.trace is None:
            return
        if self.trace is not None:
            self.trace.end()
        self.trace = tracing.instance_trace(
            self.instance_id, self.workflow_id, str(self.version), parent
        )

    def trace_start(self) -> None:
        """Continue the trace of what created the instance (an event, a request), if any."""
        self.trace = tracing.start_trace(self.instance_id, self.workflow_id, str(self.version))

    def deliver(self, wait_key: str, events: list[dict[str, Any]]) -> bool:
        """Hand events (already journaled) to a wait parked in memory."""
        for parked in self._parked:
            if parked.wait_key == wait_key and not parked.future.done():
                parked.future.set_result(events)
                return True
        return False

    def note(self, kind: str, key: str, state: str | None = None, **detail: Any) -> None:
        """A host-level timeline row (``timer.*``, ``instance.*``)."""
        detail = self.redactor.value(detail)
        self.host.writer.note(self.instance_id, self.run_no, kind, key, state, detail)

    @property
    def sonataflow(self) -> bool:
        """The definition runs with SonataFlow's leniencies (deployed with that dialect)."""
        return self._interpreter is not None and self._interpreter.sonataflow

    def auth(self, name: str | None) -> AuthDefinition | None:
        """The workflow's auth definition ``name``, its properties evaluated."""
        interpreter = self._interpreter
        assert interpreter is not None, "no run started"
        variables = {"CONST": interpreter.constants, "SECRETS": interpreter.secrets}
        return resolve_auth(self.workflow, name, variables)

    # --- interpreter callbacks (passed with each run) ---------------------------

    def on_step(self, step: Step) -> None:
        """Write a timeline row for every step a replay has not written before."""
        self._ticks += 1  # the run is making progress: not parked
        if self._skip > 0:
            self._skip -= 1
            return
        if self.trace is not None:
            self.trace.step(step.kind, step.key, step.state)
        detail = self.redactor.value(step.detail)  # the step's own dict: not changed here
        if step.kind == "action.started":
            self._started[step.key] = self.host.clock.monotonic()
        elif step.kind in ("action.completed", "action.failed") and step.key in self._started:
            took = self.host.clock.monotonic() - self._started.pop(step.key)
            detail = {**detail, "durationMs": round(took * 1000, 3)}
        self.host.writer.note(
            self.instance_id, self.run_no, step.kind, step.key, step.state, detail
        )
        if step.kind == "state.entered":
            self.host.lifecycle(
                "state.entered", self, state=step.state, key=step.key, run=self.run_no
            )
        elif step.kind in _TASK_NOTICES:  # a DSL 1.0 task: the standard lifecycle events
            error = detail.get("error")
            reference = detail.get("reference") or (error or {}).get("instance")
            self.host.lifecycle(_TASK_NOTICES[step.kind], self, state=step.state, key=step.key,
                                run=self.run_no, reference=reference, error=error)  # fmt: skip
        elif step.kind in CORRELATION_KINDS:  # a DSL 1.0 listen: the workflow correlates events
            self.host.lifecycle(step.kind, self, state=step.state, key=step.key, run=self.run_no,
                                reference=detail.get("reference"),
                                correlationKeys=detail.get("correlationKeys"))  # fmt: skip

    def on_state(self, state: InstanceState) -> None:
        """Save the current state and data (coalesced into the next commit)."""
        if state.current_state is not None:  # a state boundary, not the run's end
            data = self.redactor.value(state.data)
            self.host.writer.progress(self.instance_id, state.current_state, data)

    # --- the run ---------------------------------------------------------------

    async def run(self) -> None:
        """Run (and follow ``continueAs``) until the instance ends, parks or stops."""
        try:
            await self._run()
        finally:
            if self.trace is not None:
                self.trace.end()
                self.trace = None

    async def _run(self) -> None:
        try:
            if self.quarantine is not None:  # nothing of it runs: not even its replay
                await self._finish(Failed(error=self.quarantine, data=self._data))
                return
            if self.requested is not None:
                await self._stopped(self.requested)
                return
            while True:
                try:
                    result = await self._one_run()
                except EvaluationPending as pending:
                    if await self._evaluated(pending):
                        continue
                    return
                if result is None:
                    return
                if not isinstance(result, ContinuedAs):
                    await self._finish(result)
                    return
                if not await self._continue(result):
                    return
        except (StoreError, OSError) as exc:
            self.stalled = True
            log.warning(
                "instance %s stopped: %s (it is replayed once the database answers)",
                self.instance_id,
                exc,
            )
        except NondeterminismError as exc:
            await self._finish(Failed(error=_host_error("nondeterminism", str(exc)), data=None))
        except Exception:  # a bug must not take the process down; the lease runs out
            log.exception("instance %s crashed its runner", self.instance_id)

    async def _one_run(self) -> RunResult | None:
        journal: list[dict[str, Any]] = []
        if self._loaded is not None:
            journal, self._skip = self._loaded
            self._loaded = None
        elif not self._fresh:
            journal, self._skip = await self.host.load_run(self.instance_id, self.run_no)
        self._fresh = False
        try:
            self._workflow, interpreter = await self.host.interpreter(
                self.workflow_id, self.version
            )
        except (WorkflowNotFound, WorkflowLoadError, WorkflowValidationError) as exc:
            return Failed(error=_host_error("definition", str(exc), code="DEFINITION"))
        self._interpreter = interpreter
        self.redactor = redactor_of(interpreter)
        effects = self._effects = DurableEffects(self, self._effects_host, journal)

        async def deferred_run() -> RunResult:
            deferring.set(True)  # in the run's own context: slow expressions are pending
            self._pace.rested()  # its slice begins with its task, not when it was created
            try:
                return await interpreter.run(  # instead of blocking the event loop
                    self.input,
                    effects,
                    instance_id=self.instance_id,
                    headers=self.headers,
                    on_step=self.on_step,
                    on_state=self.on_state,
                    pace=self._pace,
                )
            finally:
                self._poke()  # the loop below wakes one pass sooner than by the done callback

        loop = asyncio.get_running_loop()
        async with scoped([deferred_run()]) as (task,):  # the run ends with this call
            self._task = task
            self._signal = loop.create_future()
            task.add_done_callback(self._poke)
            while True:
                # Woken when the run ends or every effect left is parked (no task per wait).
                await self._signal
                if task.done():
                    break
                self._signal = loop.create_future()
                if await self._settled():
                    dues = [p.due for p in self._parked if p.due is not None]
                    self._wake = min(dues) if dues else None
                    self.interrupt("park")
            if task.cancelled() or self._stop is not None:
                await asyncio.gather(task, return_exceptions=True)
                await self._stopped(self._stop or "lost")
                return None
            return task.result()

    async def _evaluated(self, pending: EvaluationPending) -> bool:
        """Wait (off the event loop) for the expression the run needs, then replay the
        run from its journal: the replay finds the outcome remembered. False: stopped."""
        # Not work outside, but long: the delivery that claimed the instance does not wait
        barrier = self.host.writer.barrier(self.instance_id)
        if barrier is not None and not await barrier:
            return False  # it rolled back: the instance is not ours
        self.host.writer.flush()  # the steps before it are on record meanwhile
        await pending.wait()
        self._apply(await self.host.writer.sync(self.instance_id))  # every note committed
        if self._stop is not None:
            await self._stopped(self._stop)
            return False
        return True

    def _poke(self, _task: object = None) -> None:
        if self._signal is not None and not self._signal.done():
            self._signal.set_result(None)

    async def _settled(self) -> bool:
        ticks = self._ticks
        for _ in range(_SETTLE_TURNS):
            await asyncio.sleep(0)
        return self._active == 0 and bool(self._parked) and ticks == self._ticks

    async def _stopped(self, reason: str) -> None:
        writer = self.host.writer
        if reason == "park":
            due, key = self._wake or (None, "")
            park = Park(wake_at=due, wake_key=key, run_no=self.run_no)
            await writer.transition(self.instance_id, park)
        elif reason in _STOP_STATUS:
            status = _STOP_STATUS[reason]
            self.note(f"instance.{status}", "", None)
            control = await writer.transition(self.instance_id, Stop(status=status))
            if control.held:
                self.host.lifecycle(status, self, run=self.run_no)
                if status == InstanceStatus.CANCELLED:
                    self.ended = True
                    self.host.finished(self.instance_id)
                    await self._terminate_children()
        elif reason == "shutdown":
            await writer.transition(self.instance_id, Stop(status=None))

    async def _finish(self, result: RunResult) -> None:
        if isinstance(result, Failed):
            change = Finish(status=result.status, error=result.error.to_json(), data=result.data)
        elif not isinstance(result, Terminated) or result.reason != "timeout":
            change = Finish(status=InstanceStatus.COMPLETED, output=result.output)
        else:
            error = _host_error("timeout", "workflowExecTimeout expired", code="TIMEOUT")
            change = Finish(status=result.status, output=result.output, error=error.to_json())
        change = replace(
            change,
            output=self.redactor.value(change.output),
            error=self.redactor.value(change.error),
            data=self.redactor.value(change.data),
            has_parent=self.parent_id is not None,
        )
        control = await self.host.writer.transition(self.instance_id, change)
        if control.held:
            self.host.lifecycle(
                change.status, self, error=change.error, output=change.output, run=self.run_no
            )
            self.ended = True
            self.host.finished(self.instance_id, control.row)
            await self._terminate_children()

    async def _terminate_children(self) -> None:
        # onParentComplete: terminate -- after the parent's end is committed
        # (a crash in between leaves those children running).
        if self._effects is not None:
            for child in self._effects.children_to_terminate():
                await self.host.cancel_child(child)

    async def _continue(self, result: ContinuedAs) -> bool:
        version = await self.host.resolve_version(result.workflow_id, result.version)
        change = Continue(
            workflow_id=result.workflow_id,
            version=version,
            input=self.redactor.value(result.input),
        )
        control = await self.host.writer.transition(self.instance_id, change)
        if not control.held:
            return False
        self.run_no += 1
        self.workflow_id, self.version, self.input = result.workflow_id, version, change.input
        self._fresh = True
        self._started.clear()
        return True


def quarantine_error(row: InstanceRow, journal: list[dict[str, Any]]) -> WorkflowError:
    """The error of an instance whose runners died ``row.crashes`` times at the same step
    (``journal``: its run's journal, whose last entry is the step before that one)."""
    keys = [entry["key"] for entry in journal if entry.get("key")]
    where = f"at the step after {keys[-1]!r}" if keys else "at its first step"
    state = f" in state {row.current_state!r}" if row.current_state else ""
    return WorkflowError(
        name="quarantined",
        code="QUARANTINED",
        message=f"quarantined: its runner stopped {row.crashes} times without releasing it "
        f"{where}{state} (a crash or a killed process each time); it is not run again",
        state=row.current_state,
    )


def _host_error(name: str, message: str, *, code: str | None = None) -> WorkflowError:
    return WorkflowError(name=name, code=code or name.upper(), message=message)


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
