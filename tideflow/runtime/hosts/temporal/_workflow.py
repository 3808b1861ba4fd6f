"""The one Temporal workflow type, ``tideflow.instance``: the unchanged interpreter inside it.

Each Tideflow instance is one Temporal workflow (its id is the instance id).
The run gets its definition once -- in its input from a starter that has it
(:attr:`InstanceStart.definition`: the first run of an instance started through
Tideflow), else from the ``tideflow.begin`` local activity, which also writes
the run's first record (``tideflow.definition`` in histories from before
:data:`FOLD_BEGIN`) -- so a replay compiles exactly what the first run
compiled, and compiles it -- once
per worker process and document -- and runs the 0.8 or 1.0 interpreter with
:class:`TemporalEffects`, which map every effect onto Temporal:

- function calls -> ``tideflow.call`` activities whose failures Temporal never
  retries (the interpreter's retry policy decides; its back-off sleeps are
  timers); Temporal runs a call again only when its worker was lost;
- sleeps, action/state/workflow timeouts, ``eventTimeout`` -> Temporal timers
  (``asyncio`` timers on the workflow's deterministic loop);
- ``now()``/``new_id()`` -> ``workflow.now()``/``workflow.uuid4()``;
- event waits -> the ``tideflow.event`` signal: events are buffered in
  arrival order, so an event signalled before its wait is not lost, and a
  wait takes the earliest buffered events it accepts (correlation bound by
  the first correlated event, as on the other hosts);
- sub-flows -> child workflows (ids as on the durable host: a pure function of
  parent, run and step); ``continueAs`` -> continue-as-new;
- cancel -> Temporal cancellation; suspend/resume -> updates (the caller gets
  its answer once the mirror shows it) that hold the run at its next effect;
- produced events -> the ``tideflow.publish`` local activity.

Workers run it outside Temporal's sandbox, the tests inside it with ``tideflow``
(and the pure libraries it uses, such as ``jq``) passed through (:mod:`.worker`
says why): the interpreter reads no clock and draws no random number.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar, cast

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
)
from temporalio.exceptions import (
    TimeoutError as TemporalTimeout,
)
from temporalio.workflow import ParentClosePolicy

from tideflow.errors import FunctionCallError, StepTimeout
from tideflow.runtime.dsl1 import Interpreter as Interpreter1
from tideflow.runtime.effects import (
    Deadline,
    EventEmit,
    EventWait,
    FunctionCall,
    SleepRequest,
    SubflowCall,
    WorkflowInterpreter,
)
from tideflow.runtime.hosts._journaled_effects import child_id, raise_entry
from tideflow.runtime.hosts._local_support import EventFeed
from tideflow.runtime.hosts.plumbing import (
    bounded,
    call_arguments,
    complete_event,
    idempotency_key,
    redact_result,
    redacted_steps,
    redactor_of,
    resolve_auth,
)
from tideflow.runtime.hosts.temporal._values import (
    ACT_BEGIN,
    ACT_CALL,
    ACT_DEFINITION,
    ACT_PUBLISH,
    ACT_RECORD,
    CALL_FAILURE_TYPE,
    FAILURE_TYPE,
    QUERY_PROGRESS,
    SIGNAL_EVENT,
    SIGNAL_EVENTS,
    SIGNAL_RESUME,
    SIGNAL_SUSPEND,
    WORKFLOW_TYPE,
    CallRequest,
    DefinitionRef,
    InstanceStart,
    Progress,
    Published,
    StoredDefinition,
)
from tideflow.runtime.interpreter import Interpreter
from tideflow.runtime.result import ContinuedAs, Failed, RunResult, Step
from tideflow.runtime.status import InstanceStatus
from tideflow.secrets import refused_reads, sealed_secrets
from tideflow.workflow.dsl1 import is_dsl1, load_document
from tideflow.workflow.loader import build_definition
from tideflow.workflow.model import Workflow

__all__ = ["InstanceWorkflow", "TemporalEffects", "compile_definition", "compile_model"]

T = TypeVar("T")

CALL_TIMEOUT = timedelta(hours=1)
"""An activity's start-to-close limit when the action sets no ``actionExecTimeout``."""
_LOCAL_TIMEOUT = timedelta(seconds=30)
_ON_LOSS = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10)
)
"""A call is retried by Temporal only when its worker was lost: its failures are non-retryable."""
_HEARTBEAT_TIMEOUT = timedelta(seconds=20)
"""How long a call may go unheard before Temporal runs it again elsewhere (its worker is
taken as lost). It was 10 s, and a 1,000-instance run at load 17 ran more calls twice than
its killed worker explains: most likely activities handed to a worker whose event loop was
busy (up to 100 calls, plain ``def`` functions block it) beat too late. The SDK sends
heartbeats at most every 0.8 of this."""
_LOCAL_RETRY = RetryPolicy(maximum_attempts=5, initial_interval=timedelta(milliseconds=200))
_UNTIL_DONE = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)
"""The mirror and the event store are Tideflow's own: an outage holds the instance, no more."""
_MAX_COMPILED = 256
_PARK_SECONDS = 1.0  # a sleep this long shows the instance as waiting
FOLD_WAITED = "tideflow.fold-waited"
"""The ``workflow.patched()`` id of folding a wait's end into the run's next record: an
answered wait no longer costs a local activity of its own when the run ends (or waits,
sleeps, calls) right after it. Histories recorded before it replay the old way."""
FOLD_BEGIN = "tideflow.fold-begin"
"""The ``workflow.patched()`` id of reading the definition and writing the run's first record
in one local activity (``tideflow.begin``) instead of two: each local activity costs the
worker an activation of the workflow (payloads converted in and out of the sandbox), and
the start is where every run pays it. Histories recorded before it replay the old way."""

_compiled: dict[str, tuple[Workflow, WorkflowInterpreter]] = {}
"""Compiled definitions of this worker process, by document digest: a pure function of the
document, so sharing them between runs (and replays) cannot change what a run does."""


def compile_model(stored: StoredDefinition) -> tuple[Workflow, WorkflowInterpreter]:
    """The model and interpreter of a stored definition, compiled once per process.

    Raises:
        WorkflowValidationError: It no longer loads.
    """
    text = json.dumps([stored.document, stored.dialect], sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()
    found = _compiled.get(digest)
    if found is not None:
        return found
    source = f"workflow {stored.workflow_id!r} version {stored.version!r}"
    if is_dsl1(stored.document):
        model1, _ = load_document(stored.document, source=source, processes=False)
        model, interpreter = cast(Workflow, model1), cast(WorkflowInterpreter, Interpreter1(model1))
    else:
        model = build_definition(stored.document, source=source, dialect=stored.dialect).workflow
        interpreter = Interpreter(model, dialect=stored.dialect)  # secrets: see with_seals
    if len(_compiled) >= _MAX_COMPILED:
        _compiled.pop(next(iter(_compiled)), None)  # activations run on several threads
    _compiled[digest] = (model, interpreter)
    return model, interpreter


def compile_definition(stored: StoredDefinition) -> tuple[Workflow, WorkflowInterpreter]:
    """:func:`compile_model` for a run.

    Raises:
        ApplicationError: It no longer loads, or it uses secrets in a way the Temporal engine
            cannot (an expression computing on a secret, a 1.0 authentication policy read
            from a secret: :func:`~tideflow.secrets.sealed.refused_reads`).
    """
    model, interpreter = compile_model(stored)
    if model.secrets and (refused := refused_reads(stored.document, dsl1=is_dsl1(stored.document))):
        source = f"workflow {stored.workflow_id!r} version {stored.version!r}"
        why = "; ".join(map(str, refused))
        raise ApplicationError(
            f"{source} uses secrets ({', '.join(model.secrets)}): {why} (docs/temporal.md)",
            type="SecretsUnsupported",
            non_retryable=True,
        )
    return model, interpreter


def with_seals(interpreter: WorkflowInterpreter, model: Workflow, key: str) -> WorkflowInterpreter:
    """The interpreter of one run whose ``$SECRETS`` are the run's seals (never values: the
    call activity puts the values in, :mod:`tideflow.secrets.sealed`)."""
    if not model.secrets or not isinstance(interpreter, Interpreter | Interpreter1):
        return interpreter
    own = copy.copy(interpreter)  # the compiled definition shared, the secrets its own
    own.secrets = sealed_secrets(model.secrets, key)
    return own


_SIGNALLED_KEPT: Final = 10_000
"""How many signalled events' keys a run remembers to drop a repeated signal."""


@workflow.defn(name=WORKFLOW_TYPE)
class InstanceWorkflow:
    """One Tideflow instance (see the module docs)."""

    def __init__(self) -> None:
        self.feed = EventFeed()
        self._signalled: dict[tuple[str, str], None] = {}
        """(source, id) of the events signalled to this run, the newest _SIGNALLED_KEPT."""
        self.suspended = False
        self.state: str | None = None
        self.steps = 0
        self._pending: list[dict[str, Any]] = []
        self.seal_key: str | None = None
        """The run's seal key (:mod:`tideflow.secrets.sealed`), if its workflow uses secrets."""
        self.waited: str | None = None
        """The key of a wait that ended and is not recorded yet (:data:`FOLD_WAITED`)."""
        self.status = "running"
        """What the run is doing (``running``, ``waiting``); the mirror shows ``suspended``
        instead while it is."""
        self._progress = Progress(instance_id="", run_no=1, workflow_id="", version="", status="")

    @workflow.signal(name=SIGNAL_EVENT)
    def event(self, event: dict[str, Any]) -> None:
        """An event for this instance (buffered until a wait takes it)."""
        self._offer([event])

    @workflow.signal(name=SIGNAL_EVENTS)
    def events(self, events: list[dict[str, Any]]) -> None:
        """Events for this instance, in order (buffered until a wait takes them)."""
        self._offer(events)

    def _offer(self, events: list[dict[str, Any]]) -> None:
        """Buffer ``events``, but those signalled before (by source and id): a delivery is
        signalled again when its commit failed after the signal (``SignalDelivery``)."""
        for event in events:
            key = (str(event.get("source")), str(event.get("id")))
            if "id" in event and key in self._signalled:
                continue
            if "id" in event:
                self._signalled[key] = None
                if len(self._signalled) > _SIGNALLED_KEPT:  # the oldest forgotten first
                    del self._signalled[next(iter(self._signalled))]
            self.feed.pending.append(event)

    @workflow.update(name=SIGNAL_SUSPEND)
    async def suspend(self) -> None:
        """Hold the run at its next effect (shown as suspended at once)."""
        if not self.suspended and self._progress.instance_id:
            self.suspended = True
            await self.record(self.status)

    @workflow.update(name=SIGNAL_RESUME)
    async def resume(self) -> None:
        """Let a suspended run go on."""
        if self.suspended:
            self.suspended = False
            await self.record(self.status)

    @property
    def workflow_id(self) -> str:
        """The deployed workflow this run executes."""
        return self._progress.workflow_id

    @workflow.query(name=QUERY_PROGRESS)
    def progress(self) -> dict[str, Any]:
        """Where the run is: its state, whether it is suspended, events buffered."""
        return {
            "state": self.state,
            "suspended": self.suspended,
            "steps": self.steps,
            "bufferedEvents": len(self.feed.pending),
        }

    @workflow.run
    async def run(self, start: InstanceStart) -> dict[str, Any]:
        """Run the instance; return ``{status, output, timeline}`` or fail with its error."""
        instance_id = start.instance_id or workflow.info().workflow_id
        if start.definition is not None:  # the starter gave it and made the first record
            stored = start.definition
            self._begun(stored, instance_id, start.run_no)
        elif workflow.patched(FOLD_BEGIN):  # the definition and the first record at once
            stored = await workflow.execute_local_activity(
                ACT_BEGIN,
                replace(start, instance_id=instance_id),
                result_type=StoredDefinition,
                start_to_close_timeout=_LOCAL_TIMEOUT,
                retry_policy=_UNTIL_DONE,  # a missing definition is non-retryable
            )
            self._begun(stored, instance_id, start.run_no)
        else:
            stored = await workflow.execute_local_activity(
                ACT_DEFINITION,
                DefinitionRef(workflow_id=start.workflow_id, version=start.version),
                result_type=StoredDefinition,
                start_to_close_timeout=_LOCAL_TIMEOUT,
                retry_policy=_LOCAL_RETRY,
            )
            self._begun(stored, instance_id, start.run_no)
            await self.record("running", create=True, input=start.input, parent_id=start.parent_id)
        try:
            model, interpreter = compile_definition(stored)
        except ApplicationError as exc:
            name = exc.type or "InvalidDefinition"
            error = {"name": name, "code": name, "message": exc.message}
            await self.record("failed", error=error)
            raise
        if model.secrets:  # drawn only here: runs without secrets draw the same ids as before
            self.seal_key = workflow.uuid4().hex
            interpreter = with_seals(interpreter, model, self.seal_key)
        effects = TemporalEffects(self, model, interpreter, instance_id, start.run_no)
        timeline: list[dict[str, Any]] = []

        def on_step(step: Step) -> None:
            self.steps += 1
            if step.state is not None:
                self.state = step.state
            entry = step.to_json()
            timeline.append(entry)
            self._pending.append(entry)

        redactor = redactor_of(interpreter)  # seals show as ***
        try:
            result: RunResult = await interpreter.run(
                start.input,
                effects,
                instance_id=instance_id,
                on_step=redacted_steps(on_step, redactor),
            )
            await effects.flush()
        except asyncio.CancelledError:
            await self.record("cancelled")
            raise
        return await self._end(redact_result(result, redactor), start, instance_id, timeline)

    def _begun(self, stored: StoredDefinition, instance_id: str, run_no: int) -> None:
        self._progress = Progress(
            instance_id=instance_id,
            run_no=run_no,
            workflow_id=stored.workflow_id,
            version=stored.version,
            status="running",
        )

    async def _end(
        self,
        result: RunResult,
        start: InstanceStart,
        instance_id: str,
        timeline: list[dict[str, Any]],
    ) -> dict[str, Any]:
        if isinstance(result, ContinuedAs):
            await self.record("running")
            workflow.continue_as_new(
                InstanceStart(
                    workflow_id=result.workflow_id,
                    version=result.version,
                    input=result.input,
                    instance_id=instance_id,
                    run_no=start.run_no + 1,
                    parent_id=start.parent_id,
                )
            )
        if isinstance(result, Failed):
            error = result.error.to_json()
            await self.record("failed", error=error, data=result.data)
            raise ApplicationError(
                result.error.message or result.error.name,
                {"error": error, "data": result.data, "timeline": timeline},
                type=FAILURE_TYPE,
                non_retryable=True,
            )
        status = result.status.value
        if status == "failed":  # a workflow timeout: no error value of its own
            error = {"name": "timeout", "code": "TIMEOUT", "message": "workflowExecTimeout"}
            await self.record("failed", error=error, data=result.output)
            raise ApplicationError(
                "workflowExecTimeout",
                {"error": error, "data": result.output, "timeline": timeline},
                type=FAILURE_TYPE,
                non_retryable=True,
            )
        await self.record(status, output=result.output)
        return {"status": status, "output": result.output, "timeline": timeline}

    async def record(self, status: str, **change: Any) -> None:
        """Write the run's progress (timeline since the last record) to the mirror."""
        if self.waited is not None:  # a wait that ended since the last record
            change.setdefault("waited", self.waited)
            self.waited = None
        steps, self._pending = self._pending, []
        self.status = status
        holds = self.suspended and not InstanceStatus(status).final
        shown = InstanceStatus.SUSPENDED.value if holds else status
        progress = replace(self._progress, status=shown, state=self.state, steps=steps, **change)
        await workflow.execute_local_activity(
            ACT_RECORD,
            progress,
            start_to_close_timeout=_LOCAL_TIMEOUT,
            retry_policy=_UNTIL_DONE,
        )


class TemporalEffects:
    """The :class:`~tideflow.runtime.effects.Effects` of one run inside Temporal."""

    def __init__(
        self,
        instance: InstanceWorkflow,
        model: Workflow,
        interpreter: WorkflowInterpreter,
        instance_id: str,
        run_no: int,
    ) -> None:
        """Args:
        instance: The workflow object (buffered events, suspension).
        model: The definition being run.
        interpreter: Its interpreter (constants, dialect).
        instance_id: The instance's id.
        run_no: The run (``continueAs`` counts up).
        """
        self._instance = instance
        self._model = model
        self._interpreter = interpreter
        self._instance_id = instance_id
        self._run_no = run_no
        self._variables = {"CONST": interpreter.constants, "SECRETS": interpreter.secrets}
        self._redactor = redactor_of(interpreter)
        self._outbox: list[dict[str, Any]] = []

    async def _go_on(self, *, settle: bool = True) -> None:
        """Hold here while the instance is suspended; record an ended wait first (``settle``:
        the effect may take long, so the mirror must not show the instance waiting)."""
        if settle and self._instance.waited is not None:
            await self._instance.record("running")
        if self._instance.suspended:
            await workflow.wait_condition(lambda: not self._instance.suspended)

    async def call_function(self, call: FunctionCall) -> Any:
        """A ``tideflow.call`` activity, never retried for its failures, bounded by a timer."""
        await self._go_on()
        auth = resolve_auth(self._model, call.function.auth_ref, self._variables)
        request = CallRequest(
            name=call.name,
            operation=call.function.operation,
            type=call.function.type,
            arguments=dict(call_arguments(call, sonataflow=self._interpreter.sonataflow)),
            selection_set=call.selection_set,
            auth=None if auth is None else {
                "name": auth.name, "scheme": auth.scheme, "properties": dict(auth.properties)
            },
            idempotency_key=idempotency_key(self._instance_id, call.key, self._run_no),
            timeout=call.timeout_seconds,
            subject=self._instance.workflow_id if self._model.secrets else None,
            seal_key=self._instance.seal_key,
        )  # fmt: skip
        limit = CALL_TIMEOUT
        if call.timeout_seconds is not None and not math.isinf(call.timeout_seconds):
            limit = timedelta(seconds=max(1.0, call.timeout_seconds * 2))
        if call.invoke == "async":
            workflow.start_activity(
                ACT_CALL,
                request,
                start_to_close_timeout=limit,
                heartbeat_timeout=_HEARTBEAT_TIMEOUT,
                retry_policy=_ON_LOSS,
            )
            return None
        handle = workflow.execute_activity(
            ACT_CALL,
            request,
            start_to_close_timeout=limit,
            heartbeat_timeout=_HEARTBEAT_TIMEOUT,
            retry_policy=_ON_LOSS,
        )
        try:
            return await _limited(handle, call.timeout_seconds, call.key)
        except ActivityError as exc:
            raise _call_error(exc, call.key) from None

    async def wait_for_events(self, wait: EventWait) -> list[dict[str, Any]] | None:
        """The earliest buffered events the wait accepts, signalled before or after it began."""
        await self._go_on()
        feed = self._instance.feed
        if feed.ready(wait) is None:  # indexed, so the trigger side signals its events
            await self._instance.record("waiting", wait=self._wait_row(wait))
        try:
            async with _timer(wait.timeout_seconds):
                while (found := feed.take_ready(wait)) is None:
                    await workflow.wait_condition(lambda: feed.ready(wait) is not None)
        except TimeoutError:
            found = None
        if workflow.patched(FOLD_WAITED):  # recorded with the next record (or effect)
            self._instance.waited = wait.key
            self._instance.status = "running"
        else:
            await self._instance.record("running", waited=wait.key)
        return found

    def _wait_row(self, wait: EventWait) -> dict[str, Any]:
        """The wait as the durable host records it (correlation bound by earlier events)."""
        bound = self._instance.feed.bound
        specs = [
            {
                "name": spec.name,
                "type": spec.type,
                "source": spec.source,
                "correlation": {
                    name: value if value is not None else bound.get(name)
                    for name, value in spec.correlation
                },
            }
            for spec in wait.events
        ]
        types = sorted({spec.type for spec in wait.events})
        return {"key": wait.key, "all": wait.all, "events": specs, "types": types}

    async def sleep(self, request: SleepRequest) -> None:
        """A Temporal timer; ``math.inf`` waits until a deadline cancels it."""
        await self._go_on()
        if math.isinf(request.seconds):
            await workflow.wait_condition(lambda: False)
        parks = request.reason == "state" or request.seconds >= _PARK_SECONDS
        if parks:
            await self._instance.record("waiting")
        await asyncio.sleep(max(0.0, request.seconds))
        if parks:
            await self._instance.record("running")

    async def emit(self, request: EventEmit) -> None:
        """Queue the event; it is published at the next flush (one local activity a batch)."""
        await self._go_on(settle=False)
        event = complete_event(request.event, self._model, self.now())
        self._outbox.append(self._redactor.value(event))  # seals show as ***
        await self.flush()

    async def flush(self) -> None:
        """Publish the queued events."""
        if not self._outbox:
            return
        events, self._outbox = self._outbox, []
        await workflow.execute_local_activity(
            ACT_PUBLISH,
            Published(instance_id=self._instance_id, events=events),
            start_to_close_timeout=_LOCAL_TIMEOUT,
            retry_policy=_UNTIL_DONE,
        )

    async def run_subflow(self, call: SubflowCall) -> Any:
        """A child workflow (its id a pure function of this run and the step)."""
        await self._go_on()
        child = child_id(self._instance_id, self._run_no, call.key)
        start = InstanceStart(
            workflow_id=call.workflow_id,
            version=call.version,
            input=call.input,
            instance_id=child,
            parent_id=self._instance_id,
        )
        if call.invoke == "async":
            keep = call.on_parent_complete == "continue"
            policy = ParentClosePolicy.ABANDON if keep else ParentClosePolicy.TERMINATE
            await workflow.start_child_workflow(
                WORKFLOW_TYPE, start, id=child, parent_close_policy=policy
            )
            return None
        try:
            done = await _limited(
                workflow.execute_child_workflow(WORKFLOW_TYPE, start, id=child),
                call.timeout_seconds,
                call.key,
            )
        except ChildWorkflowError as exc:
            raise _subflow_error(exc, call.workflow_id) from None
        return cast(dict[str, Any], done).get("output")

    async def within(self, deadline: Deadline, body: Callable[[], Awaitable[T]]) -> T:
        """Await ``body()`` under a Temporal timer."""
        return await bounded(body(), deadline.seconds, deadline.key, deadline.kind)

    def now(self) -> datetime:
        """``workflow.now()``: the time of the current workflow task, the same on replay."""
        return workflow.now()

    def new_id(self) -> str:
        """``workflow.uuid4()``: seeded by the run, the same on replay."""
        return str(workflow.uuid4())


def _timer(seconds: float | None) -> asyncio.Timeout:
    """``asyncio.timeout`` of ``seconds`` (``None``/``inf``: none): a Temporal timer."""
    if seconds is None or math.isinf(seconds):
        return asyncio.timeout(None)
    return asyncio.timeout(max(0.0, seconds))


async def _limited(awaitable: Awaitable[T], seconds: float | None, key: str) -> T:
    """Await an activity or child workflow under a Temporal timer; :class:`StepTimeout` when
    it runs out (Temporal reports the cancelled activity or child as its own error)."""
    limit = _timer(seconds)
    try:
        async with limit:
            return await awaitable
    except (ActivityError, ChildWorkflowError, TimeoutError):
        if limit.expired():
            raise StepTimeout(key=key, kind="action") from None
        raise


def _call_error(exc: ActivityError, key: str) -> Exception:
    """The interpreter's view of a failed ``tideflow.call`` activity."""
    cause = exc.cause
    if isinstance(cause, ApplicationError) and cause.type == CALL_FAILURE_TYPE and cause.details:
        try:
            raise_entry(cause.details[0])
        except (FunctionCallError, StepTimeout) as raised:
            return raised
    if isinstance(cause, TemporalTimeout):
        return StepTimeout(key=key, kind="action")
    return FunctionCallError(str(cause or exc), code="ActivityFailed", retryable=True)


def _subflow_error(exc: ChildWorkflowError, workflow_id: str) -> FunctionCallError:
    """The interpreter's view of a failed child workflow (as on the other hosts)."""
    cause = exc.cause
    error: dict[str, Any] = {}
    if isinstance(cause, ApplicationError) and cause.type == FAILURE_TYPE and cause.details:
        error = dict(cause.details[0].get("error") or {})
    message = error.get("message") or str(cause or exc)
    return FunctionCallError(
        f"sub-workflow {workflow_id!r} failed: {message}",
        code=error.get("code") or error.get("name") or type(cause or exc).__name__,
        retryable=False,
    )
