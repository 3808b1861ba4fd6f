"""The Temporal host's activities: everything of an instance that does I/O.

The workflow (:mod:`._workflow`) stays deterministic; what it cannot do itself
runs here, in the worker process, and its result is recorded in the history:

- ``tideflow.definition`` (a local activity): the deployed definition a run
  executes, read from the registry once per run;
- ``tideflow.begin`` (a local activity): the same, and the run's first record
  (its mirrored row created unless it exists, shown running) -- one local
  activity instead of two at each run's start (``FOLD_BEGIN`` in ``._workflow``);
- ``tideflow.call``: one function call through the host's
  :class:`~tideflow.runtime.functions.FunctionInvoker`. A failure goes back
  as a non-retryable ``ApplicationError`` whose details are the durable host's
  error entry, so Temporal never retries a function failure: the Serverless
  Workflow retry policy stays the interpreter's, and both engines retry the
  same way. The call heartbeats; only a call whose worker was lost (its
  heartbeats stopped) is run again by Temporal, on another worker -- at least
  once, as on the durable host after a crash (same idempotency key);
- ``tideflow.publish`` (a local activity): produced CloudEvents handed to the
  host's sink (the Tideflow event store under ``tideflow serve``);
- ``tideflow.record`` (a local activity): the instance's progress -- status,
  state, timeline -- written to the mirror (:mod:`.gateway`) that the
  instances API reads; nothing without a mirror (tests of the host alone).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.errors import WorkflowNotFound
from tideflow.runtime.functions import AuthDefinition, FunctionInvoker, Invocation
from tideflow.runtime.hosts._journaled_effects import check_result, error_entry
from tideflow.runtime.hosts.durable import dialect_of, module_dir
from tideflow.runtime.hosts.temporal._values import (
    ACT_BEGIN,
    ACT_CALL,
    ACT_DEFINITION,
    ACT_PUBLISH,
    ACT_RECORD,
    CALL_FAILURE_TYPE,
    CallRequest,
    DefinitionRef,
    InstanceStart,
    Progress,
    Published,
    StoredDefinition,
)
from tideflow.runtime.lifecycle import LifecycleNotice
from tideflow.runtime.rows import InstanceRow, WorkflowVersion
from tideflow.secrets import NO_REDACTION, Redactor, SecretAccess, sealed_names, unseal
from tideflow.workflow.dsl1 import is_dsl1

__all__ = [
    "SYNC_THREADS",
    "DefinitionSource",
    "InstanceActivities",
    "InstanceMirror",
    "notices",
    "stored_definition",
]


class DefinitionSource(Protocol):
    """Where deployed definitions are read (:class:`~tideflow.runtime.gateway.PostgresRegistry`)."""

    async def get(self, workflow_id: str, version: str | None = None) -> WorkflowVersion:
        """``version`` of ``workflow_id``, or its latest; raises ``WorkflowNotFound``."""
        ...


class InstanceMirror(Protocol):
    """Where instances are mirrored (:class:`~.gateway.PostgresMirror`)."""

    async def create(
        self, news: Sequence[tuple[str, str, str | None, Any, str | None]]
    ) -> list[InstanceRow]:
        """Insert rows unless they exist."""
        ...

    async def record(
        self,
        instance_id: str,
        *,
        run_no: int,
        workflow_id: str,
        version: str,
        status: str,
        state: str | None,
        steps: Sequence[tuple[str, str, str | None, dict[str, Any]]],
        at: datetime,
        wait: dict[str, Any] | None = None,
        waited: str | None = None,
    ) -> None:
        """Add timeline entries and set the status; open or close an event wait."""
        ...

    async def finish(
        self,
        instance_id: str,
        status: str,
        *,
        output: Any = None,
        error: Any = None,
        data: Any,
        steps: Sequence[tuple[str, str, str | None, dict[str, Any]]] = (),
        run_no: int = 1,
        at: datetime | None = None,
    ) -> InstanceRow | None:
        """End an instance (with its last timeline entries, in one transaction)."""
        ...


T = TypeVar("T")

Publish = Callable[[str, Sequence[dict[str, Any]]], Awaitable[None]]
"""Hands an instance's produced events on: ``publish(instance_id, events)``."""


class InstanceActivities:
    """The activities of one worker (register :meth:`all` with the Temporal worker)."""

    def __init__(
        self,
        definitions: DefinitionSource,
        invoker: FunctionInvoker,
        publish: Publish,
        *,
        base_dir: Path,
        invoke: Callable[[Invocation], Awaitable[Any]] | None = None,
        mirror: InstanceMirror | None = None,
        clock: Clock = SYSTEM_CLOCK,
        module_dirs: Sequence[Path] = (),
        on_lifecycle: Callable[[LifecycleNotice], None] | None = None,
        secrets: SecretAccess | None = None,
    ) -> None:
        """Args:
        definitions: The registry.
        invoker: Calls functions.
        publish: Takes produced events.
        base_dir: The folder relative function references resolve in.
        invoke: Calls through a policy (``python:`` modules) instead of ``invoker``.
        mirror: Where progress is recorded (``None``: nowhere).
        clock: Stamps timeline entries.
        module_dirs: More folders searched for ``python:`` modules, in order (after
            ``base_dir``), as on the durable host.
        on_lifecycle: Takes the lifecycle notices of recorded progress (started, states
            entered, completed, failed, cancelled), as the durable runtime reports them.
        secrets: The operator's secrets and grants: a call's sealed secrets are replaced
            by the values granted to its workflow (:mod:`tideflow.secrets.sealed`);
            ``None``: no secrets.
        """
        self._definitions = definitions
        self._invoker = invoker
        self._invoke = invoke or invoker.invoke
        self._publish = publish
        self._base_dir = base_dir
        self._mirror = mirror
        self._clock = clock
        self._module_dirs = tuple(module_dirs)
        self._module_cache: dict[str, Path] = {}
        self._on_lifecycle = on_lifecycle
        self._secrets = secrets
        self._on_end: list[Callable[[str, InstanceRow | None], None]] = []
        self._finishing: set[str] = set()

    def on_end(self, callback: Callable[[str, InstanceRow | None], None]) -> None:
        """Call ``callback(instance_id, row)`` once this worker has committed an instance's
        end (its Temporal workflow completes right after): ``row`` is the final mirrored
        row, ``None`` if the instance had ended already. A waiter in this process learns
        the end without a round trip (:meth:`.runtime.TemporalRuntime.wait_for_completion`)."""
        self._on_end.append(callback)

    def finishing(self, instance_id: str) -> bool:
        """Whether this worker is committing ``instance_id``'s end right now (its
        callbacks follow: :meth:`on_end`)."""
        return instance_id in self._finishing

    def all(self) -> list[Callable[..., Any]]:
        """The activity functions, for ``Worker(activities=...)``."""
        return [self.definition, self.begin, self.call, self.publish, self.record]

    @activity.defn(name=ACT_DEFINITION)
    async def definition(self, ref: DefinitionRef) -> StoredDefinition:
        """The resolved definition of ``ref`` (a missing one fails the instance)."""
        try:
            return stored_definition(await self._definitions.get(ref.workflow_id, ref.version))
        except WorkflowNotFound as exc:
            raise ApplicationError(str(exc), type="WorkflowNotFound", non_retryable=True) from exc

    @activity.defn(name=ACT_BEGIN)
    async def begin(self, start: InstanceStart) -> StoredDefinition:
        """A run's definition, and its first record: the mirrored row created unless it
        exists, then shown running (a missing definition fails the instance, unrecorded).

        The first run of an instance whose starter has just created its row (``mirrored``:
        running, with this version and input) writes nothing to the mirror; its ``started``
        notice is reported all the same.
        """
        stored = await self.definition(
            DefinitionRef(workflow_id=start.workflow_id, version=start.version)
        )
        first = Progress(
            instance_id=start.instance_id,
            run_no=start.run_no,
            workflow_id=stored.workflow_id,
            version=stored.version,
            status="running",
            create=True,
            input=start.input,
            parent_id=start.parent_id,
        )
        if start.mirrored and start.run_no == 1:
            self._report(first)
        else:
            await self.record(first)
        return stored

    @activity.defn(name=ACT_CALL)
    async def call(self, request: CallRequest) -> Any:
        """Invoke one function; a failure is a non-retryable ``ApplicationError``."""
        auth = None if request.auth is None else AuthDefinition(**request.auth)
        invocation = Invocation(
            name=request.name,
            operation=request.operation,
            type=request.type,
            arguments=request.arguments or {},
            selection_set=request.selection_set,
            auth=auth,
            idempotency_key=request.idempotency_key,
            base_dir=module_dir(
                request.operation, self._base_dir, self._module_dirs, self._module_cache
            ),
            timeout=request.timeout,
        )
        redactor, key = NO_REDACTION, request.seal_key
        try:
            sealed = [request.arguments, request.selection_set, request.auth]
            if key is not None and (names := sealed_names(sealed, key)):
                values = await self._secret_values(request.subject, names)
                redactor = Redactor(values)
                invocation = _unsealed(invocation, values, key)
            result = await _beating(self._invoke(invocation))
            check_result(result, request.name)
        except Exception as exc:  # every failure is the call's outcome, as on the durable host
            entry = redactor.value(error_entry(exc))  # history is stored in Temporal: no secret
            failure = ApplicationError(
                entry["message"], entry, type=CALL_FAILURE_TYPE, non_retryable=True
            )
            # the cause goes into history too (its message unredacted): none with secrets
            raise failure from (None if redactor else exc)
        return redactor.value(result)

    async def _secret_values(self, subject: str | None, names: list[str]) -> dict[str, Any]:
        """The values of ``names`` granted to ``subject`` and set (none without secrets)."""
        if self._secrets is None or not subject:
            return {}
        return await self._secrets.values(subject, names)

    @activity.defn(name=ACT_PUBLISH)
    async def publish(self, published: Published) -> None:
        """Hand produced events to the sink."""
        await self._publish(published.instance_id, published.events)

    @activity.defn(name=ACT_RECORD)
    async def record(self, progress: Progress) -> None:
        """Write an instance's progress to the mirror (create, move on, end)."""
        mirror = self._mirror
        if mirror is None:
            return
        p = progress
        if p.create:
            await mirror.create([(p.instance_id, p.workflow_id, p.version, p.input, p.parent_id)])
        steps = [(s["kind"], s["key"], s.get("state"), _detail(s)) for s in p.steps]
        if p.final:  # one transaction: the last steps, the end (its waits dropped), NOTIFY
            self._finishing.add(p.instance_id)
            try:
                ended = await mirror.finish(
                    p.instance_id,
                    p.status,
                    output=p.output,
                    error=p.error,
                    data=p.data,
                    steps=steps,
                    run_no=p.run_no,
                    at=self._clock.now(),
                )
            finally:
                self._finishing.discard(p.instance_id)
            for callback in self._on_end:  # committed: what the status API shows from now on
                callback(p.instance_id, ended)
        else:
            await mirror.record(
                p.instance_id,
                run_no=p.run_no,
                workflow_id=p.workflow_id,
                version=p.version,
                status=p.status,
                state=p.state,
                steps=steps,
                at=self._clock.now(),
                wait=p.wait,
                waited=p.waited,
            )
        self._report(p)

    def _report(self, progress: Progress) -> None:
        """Hand on the lifecycle notices of recorded progress."""
        if self._on_lifecycle is not None:
            for notice in notices(progress, self._clock.now()):
                self._on_lifecycle(notice)


def notices(progress: Progress, at: datetime) -> list[LifecycleNotice]:
    """The lifecycle notices of recorded progress (pure): ``started`` for a run's first
    record, ``state.entered`` per entered state, and the end."""
    p = progress
    base = LifecycleNotice(
        kind="started",
        instance_id=p.instance_id,
        workflow_id=p.workflow_id,
        version=p.version,
        at=at,
        parent_id=p.parent_id,
        run_no=p.run_no,
    )
    found = [base] if p.create else []
    for step in p.steps:
        if step.get("kind") == "state.entered":
            entered = replace(base, kind="state.entered", state=step.get("state"))
            found.append(replace(entered, key=str(step.get("key") or "")))
    if p.final:
        error = None if p.error is None else {**p.error, "state": p.error.get("state", p.state)}
        found.append(replace(base, kind=p.status, state=p.state, output=p.output, error=error))
    return found


def _unsealed(invocation: Invocation, values: dict[str, Any], key: str) -> Invocation:
    """The invocation with its seals replaced by the secrets' values (``tideflow.secrets``)."""
    auth = invocation.auth
    if auth is not None:
        auth = replace(auth, properties=unseal(auth.properties, values, key))
    selection = invocation.selection_set
    return replace(
        invocation,
        arguments=unseal(invocation.arguments, values, key),
        selection_set=None if selection is None else unseal(selection, values, key),
        auth=auth,
    )


def _detail(step: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in step.items() if k not in ("kind", "key", "state")}


def stored_definition(stored: WorkflowVersion) -> StoredDefinition:
    """What a run compiles of a deployed version: its resolved document (a 1.0 one as is).

    Raises:
        WorkflowNotFound: It was deployed before resolved documents were kept.
    """
    document = stored.definition if is_dsl1(stored.definition) else stored.resolved
    if document is None:
        raise WorkflowNotFound(
            f"workflow {stored.workflow_id!r} version {stored.version!r} was deployed before "
            "resolved documents were kept: deploy it again to run it on Temporal"
        )
    return StoredDefinition(
        workflow_id=stored.workflow_id,
        version=stored.version,
        document=document,
        dialect=dialect_of(stored.content_type),
    )


SYNC_THREADS = 32
"""Threads of a worker's invoker for plain ``def`` functions (``FunctionInvoker(sync_threads=)``):
the worker's event loop runs every activity, local activity and heartbeat of the worker, so a
blocking function must not run on it. Calls beyond this many wait for a thread (heartbeating)."""

HEARTBEAT_EVERY = 2.0
"""Seconds between a running call's heartbeats (the workflow's heartbeat timeout is larger):
a call whose worker died is noticed within the timeout and run again on another worker."""


async def _beating(call: Awaitable[T]) -> T:
    """Await ``call`` while telling Temporal every :data:`HEARTBEAT_EVERY` s that it runs.

    The first beat goes after :data:`HEARTBEAT_EVERY` s, not at once: Temporal sends a
    run's first heartbeat to the server at once (an RPC), and most calls end sooner. It
    beat at once while plain ``def`` functions ran on the event loop and could hold it past
    the heartbeat timeout; they run on the worker's threads now (:data:`SYNC_THREADS`).
    The beats are timer callbacks (in the activity's context), not a task beside the call:
    a call that ends within :data:`HEARTBEAT_EVERY` s costs one timer, no task.
    """
    loop = asyncio.get_running_loop()
    timer: asyncio.TimerHandle

    def beat() -> None:
        nonlocal timer
        activity.heartbeat()
        timer = loop.call_later(HEARTBEAT_EVERY, beat)

    timer = loop.call_later(HEARTBEAT_EVERY, beat)
    try:
        return await call
    finally:
        timer.cancel()
