"""Services of the durable runtime that its instance runners use, and its option types.

:class:`RunnerServices` is the part of
:class:`~tideflow.runtime.hosts.durable.DurableRuntime` an
:class:`~tideflow.runtime.hosts._durable_runner.InstanceRunner` calls:
compiled definitions (one load per version), journal loading, function
calls with deadlines, produced events and lifecycle notifications.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from tideflow import ids
from tideflow.errors import StepTimeout, TideflowError
from tideflow.runtime.functions import FunctionInvoker, Invocation
from tideflow.runtime.functions.policy import PythonPolicy
from tideflow.runtime.functions.python import PythonFunction
from tideflow.runtime.gateway import PostgresRegistry, Q, dumps, loads
from tideflow.runtime.hosts._durable_runner import current_runner
from tideflow.runtime.interpreter import Interpreter
from tideflow.runtime.result import Step
from tideflow.runtime.state import InstanceState
from tideflow.settings import Settings
from tideflow.workflow import loader
from tideflow.workflow.model import Workflow
from tideflow.workflow.secrets import load_secrets

T = TypeVar("T")
log = logging.getLogger("tideflow.runtime")


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeOptions:
    """How a :class:`DurableRuntime` runs instances."""

    owner: str = field(default_factory=ids.new_id)
    """Lease owner id of this process."""
    lease_seconds: float = field(default_factory=lambda: Settings.from_env().lease_seconds)
    """Lease length (see :mod:`tideflow.runtime.claimer`); ``TIDEFLOW_LEASE_SECONDS``."""
    poll_seconds: float = 2.0
    """Slow poll for runnable instances."""
    max_running: int = 2000
    """Instances in memory at once."""
    memory_sleep: float = 5.0
    """Sleeps up to this many seconds are slept in memory, the instance staying leased
    (a crash: replayed after the lease, the sleep ends at its journaled due time);
    longer ones park with a wake-up timer of the timer service."""
    base_dir: Path = field(default_factory=Path.cwd)
    """Folder for relative OpenAPI documents and ``python:`` modules."""
    module_dirs: tuple[Path, ...] = ()
    """More folders searched for ``python:`` modules not in ``base_dir``
    (``tideflow serve``: every ``--workflows`` folder), in order."""
    functions: Mapping[str, PythonFunction] = field(default_factory=dict)
    """Callables replacing functions by name (tests, ``--functions``)."""
    servers: Mapping[str, str] = field(default_factory=dict)
    """Server URLs for REST functions (see :class:`FunctionInvoker`)."""
    dialect: str | None = None
    """``"sonataflow"`` turns on SonataFlow's leniencies."""
    python_policy: PythonPolicy | None = None
    """Modules ``python:`` functions may import; by default those in ``base_dir``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleEvent:
    """Something that happened to an instance, for ``tideflow.lifecycle`` subscribers."""

    kind: str
    """``started``, ``state.entered``, ``completed``, ``failed``, ``cancelled``,
    ``suspended``, ``resumed``."""
    # detail keys: ``run`` (run number), ``key`` (state.entered step key),
    # ``output`` (completed), ``error`` (failed), ``parentId`` (started)
    instance_id: str
    workflow_id: str
    version: str
    state: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_cloudevent(self, event_id: str, time: str) -> dict[str, Any]:
        """The event as a structured CloudEvent (type ``io.tideflow.instance.<kind>``)."""
        return {
            "specversion": "1.0",
            "id": event_id,
            "source": f"/tideflow/workflows/{self.workflow_id}",
            "type": f"io.tideflow.instance.{self.kind}",
            "subject": self.instance_id,
            "time": time,
            "datacontenttype": "application/json",
            "data": {
                "instanceId": self.instance_id,
                "workflowId": self.workflow_id,
                "version": self.version,
                "state": self.state,
                **self.detail,
            },
        }


LifecycleHook = Callable[[LifecycleEvent], None]
EmitSink = Callable[[dict[str, Any]], Awaitable[None]]


class RunnerServices:
    """What instance runners use (a base of ``DurableRuntime``, which sets these attributes)."""

    options: RuntimeOptions
    pool: asyncpg.Pool
    registry: PostgresRegistry
    invoker: FunctionInvoker
    python_policy: PythonPolicy
    emitted: list[dict[str, Any]]
    on_lifecycle: LifecycleHook | None
    _emit: EmitSink | None
    _tasks: set[asyncio.Task[Any]]
    _interpreters: dict[tuple[str, str], asyncio.Future[tuple[Workflow, Interpreter]]]
    _module_dir_cache: dict[str, Path]

    async def interpreter(self, workflow_id: str, version: str) -> tuple[Workflow, Interpreter]:
        """The workflow model and its interpreter, compiled once per version.

        Raises:
            WorkflowNotFound: No such version.
            WorkflowValidationError: The stored definition no longer loads.
        """
        key = (workflow_id, version)
        loading = self._interpreters.get(key)
        if loading is None:  # one load per version, however many runners ask at once
            loading = self._interpreters[key] = asyncio.ensure_future(self._load(*key))
        elif loading.done() and not loading.cancelled() and loading.exception() is None:
            return loading.result()  # the usual case: no shield, no await
        try:
            return await asyncio.shield(loading)
        except TideflowError:
            self._interpreters.pop(key, None)
            raise

    async def _load(self, workflow_id: str, version: str) -> tuple[Workflow, Interpreter]:
        stored = await self.registry.get(workflow_id, version)
        dialect = self.options.dialect or _dialect_of(stored.content_type)
        workflow = loader.load_workflow(
            stored.source_text, base_dir=self.options.base_dir, local_files=True, dialect=dialect
        )
        interpreter = Interpreter(
            workflow,
            secrets=load_secrets(workflow.secrets, strict=False),
            on_step=_on_step,
            on_state=_on_state,
            dialect=dialect,
        )
        return workflow, interpreter

    async def resolve_version(self, workflow_id: str, version: str | None) -> str:
        """The stored version ``version`` names (the latest when ``None``)."""
        return (await self.registry.get(workflow_id, version)).version

    async def load_run(self, instance_id: str, run_no: int) -> tuple[list[dict[str, Any]], int]:
        """The run's journal and how many interpreter steps its timeline already has."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(Q["get_journal"], instance_id, run_no)
            steps = await conn.fetchval(Q["count_timeline"], instance_id, run_no)
        journal = [{"op": r["op"], "key": r["step_key"], **loads(r["entry"])} for r in rows]
        return journal, steps

    @property
    def dialect(self) -> str | None:
        """The interpreter dialect."""
        return self.options.dialect

    @property
    def base_dir(self) -> Path:
        """Folder for relative function references."""
        return self.options.base_dir

    def base_dir_for(self, operation: str) -> Path:
        """The folder a function's relative references resolve in.

        For ``python:pkg.mod:fn``: the first of ``base_dir`` and
        ``module_dirs`` holding ``pkg.py`` or ``pkg/`` (else ``base_dir``).
        """
        if not self.options.module_dirs or not operation.startswith("python:"):
            return self.options.base_dir
        top = operation[len("python:") :].split(":", 1)[0].split(".", 1)[0]
        cache = self._module_dir_cache
        found = cache.get(top)
        if found is None:
            found = next(
                (
                    folder
                    for folder in (self.options.base_dir, *self.options.module_dirs)
                    if (folder / f"{top}.py").is_file() or (folder / top).is_dir()
                ),
                self.options.base_dir,
            )
            cache[top] = found
        return found

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

    async def bounded(self, awaitable: Awaitable[T], seconds: float | None, key: str) -> T:
        """Await ``awaitable``; raise :class:`StepTimeout` after ``seconds``."""
        if seconds is None or math.isinf(seconds):
            return await awaitable
        limit = asyncio.timeout(max(0.0, seconds))
        try:
            async with limit:
                return await awaitable
        except TimeoutError:
            if limit.expired():
                raise StepTimeout(key=key, kind="action") from None
            raise

    def background(self, awaitable: Awaitable[Any]) -> None:
        """Run a fire-and-forget call (``invoke: async``); its errors are logged only."""

        async def guarded() -> None:
            try:
                await awaitable
            except TideflowError as exc:
                log.info("async function call failed: %s", exc)

        # Short-lived and tracked (stop() cancels it); guarded() logs its failure.
        self._track(asyncio.ensure_future(guarded()))

    async def emit(self, event: dict[str, Any]) -> None:
        """Hand a produced CloudEvent to the sink."""
        if self._emit is None:
            self.emitted.append(event)
        else:
            await self._emit(event)

    def lifecycle(self, kind: str, source: Any, **detail: Any) -> None:
        """Tell the lifecycle hook (``source``: an :class:`InstanceRow` or a runner)."""
        if self.on_lifecycle is None:
            return
        state = detail.pop("state", None)
        event = LifecycleEvent(
            kind=kind,
            instance_id=getattr(source, "instance_id", None) or source.id,
            workflow_id=source.workflow_id,
            version=source.version,
            state=state,
            detail={k: v for k, v in detail.items() if v is not None},
        )
        try:
            self.on_lifecycle(event)
        except Exception:  # a monitoring hook must not break instances
            log.exception("lifecycle hook failed")

    async def time_out_wait(self, instance_id: str, run_no: int, wait_key: str) -> Any:
        """End an event wait whose timeout passed, unless events won the race.

        Returns:
            The wait's result: ``None`` (timed out, now journaled) or the
            events delivered just before.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.fetchrow(Q["lock_wait"], instance_id, wait_key)  # waits for a delivery
            entry = await conn.fetchval(Q["journal_entry"], instance_id, run_no, "wait", wait_key)
            if entry is not None:
                return loads(entry).get("result")
            await conn.execute(Q["time_out_wait"], instance_id, wait_key, run_no)
        return None

    async def settle(
        self, instance_id: str, run_no: int, op: str, key: str, entry: dict[str, Any]
    ) -> dict[str, Any]:
        """Journal ``entry`` for a step unless another answer got there first; return the winner.

        The instance's row lock orders this against a child answering its parent.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(Q["lock_instance"], instance_id)
            found = await conn.fetchval(Q["journal_entry"], instance_id, run_no, op, key)
            if found is not None:
                return loads(found)  # type: ignore[no-any-return]
            await conn.execute(Q["insert_entry"], instance_id, run_no, op, key, dumps(entry))
        return entry

    async def drop_waits(self, instance_id: str, prefix: str | None) -> None:
        """Forget the event waits whose keys start with ``prefix`` (all with ``None``)."""
        async with self.pool.acquire() as conn:
            await conn.execute(Q["drop_waits_under"], instance_id, prefix)

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _dialect_of(content_type: str) -> str | None:
    """The ``dialect`` parameter a version was deployed with (``?dialect=``), if any."""
    for part in content_type.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip() == "dialect" and value.strip():
            return value.strip()
    return None


def _on_step(step: Step) -> None:
    runner = current_runner.get()
    if runner is not None:
        runner.on_step(step)


def _on_state(state: InstanceState) -> None:
    runner = current_runner.get()
    if runner is not None:
        runner.on_state(state)
