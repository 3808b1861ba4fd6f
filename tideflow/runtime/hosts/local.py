"""The local host: run one instance in-process with real HTTP calls and real timers.

``tideflow run`` uses it. It implements :class:`~tideflow.runtime.effects.Effects`:

- function calls go to :class:`~tideflow.runtime.functions.FunctionInvoker`
  (``--functions`` callables replace functions of the same name);
- event waits are answered from a list of CloudEvents (``--events``), offered
  in order at the moment the instance waits; nothing else can deliver events,
  so a wait that no remaining event matches times out at once when it has a
  timeout and fails with :class:`~tideflow.errors.EventsExhausted` otherwise;
- sleeps and deadlines use asyncio timers;
- emitted events are collected in :attr:`LocalRun.emitted`;
- sub-workflows are found by ``id`` (and ``version``) among the definitions
  in the main workflow's folder and any extra folders.

Idempotency keys, step bounding, auth and secrets follow the rules every
host shares (:mod:`tideflow.runtime.hosts.plumbing`).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import tideflow.expression_budget  # noqa: F401  (installs the budgeted evaluator)
from tideflow import ids
from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.errors import (
    FunctionCallError,
    TideflowError,
    WorkflowLoadError,
    WorkflowValidationError,
)
from tideflow.references import load_any_definition
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
from tideflow.runtime.functions import FunctionInvoker, Invocation
from tideflow.runtime.functions.messaging import Brokers
from tideflow.runtime.functions.python import PythonFunction
from tideflow.runtime.functions.types import bundled_document
from tideflow.runtime.hosts._local_support import (
    EventFeed,
    SubflowIndex,
    TimelinePrinter,
    load_functions_file,
)
from tideflow.runtime.hosts.plumbing import (
    ClockPace,
    bounded,
    call_arguments,
    complete_event,
    idempotency_key,
    redact_result,
    redacted_steps,
    redactor_of,
    resolve_auth,
    workflow_secrets,
)
from tideflow.runtime.interpreter import Interpreter
from tideflow.runtime.result import ContinuedAs, Failed, RunResult, Step
from tideflow.secrets import Redactor, SecretSource
from tideflow.supervise import TaskSet
from tideflow.workflow.dsl1 import Workflow as Workflow1
from tideflow.workflow.model import Workflow

__all__ = [
    "EventFeed",
    "LocalEffects",
    "LocalHost",
    "LocalOptions",
    "LocalRun",
    "SubflowIndex",
    "TimelinePrinter",
    "load_functions_file",
]

T = TypeVar("T")

_SUFFIXES = (".yaml", ".yml", ".json")
_MAX_CONTINUATIONS = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalOptions:
    """How the local host runs instances."""

    functions: Mapping[str, PythonFunction] = field(default_factory=dict)
    """Callables replacing functions by name (``--functions``)."""
    events: Sequence[Mapping[str, Any]] = ()
    """CloudEvents offered in order (``--events``)."""
    workflow_dirs: Sequence[Path] = ()
    """Extra folders holding sub-workflows (``--workflows``)."""
    dialect: str | None = None
    """``"sonataflow"`` turns on SonataFlow's leniencies."""
    servers: Mapping[str, str] = field(default_factory=dict)
    """Server URLs for REST functions (see :class:`FunctionInvoker`)."""
    redirects: Mapping[str, str] = field(default_factory=dict)
    """URL prefixes rewritten before requests are sent (``--server FROM=TO``)."""
    brokers: Brokers | None = None
    """Message brokers for AsyncAPI calls (the connectors; ``tideflow run`` gives them)."""
    on_step: Callable[[Step], None] | None = None
    """Called with every timeline step (``--timeline``)."""
    log: Callable[[str], None] | None = None
    """Where ``sysout`` and host notes go (standard error by default)."""
    secrets: Mapping[str, Any] | None = None
    """``$SECRETS``; by default the declared ones ``secret_source`` holds."""
    secret_source: SecretSource | None = None
    """``TIDEFLOW_SECRET_*`` variables and the secrets file (``TIDEFLOW_SECRETS_FILE``);
    every secret is granted to every workflow here: the local user is the operator."""


@dataclass(slots=True)
class LocalRun:
    """What a local run produced."""

    result: RunResult
    """The outcome of the last run (after following ``continueAs``)."""
    emitted: list[dict[str, Any]] = field(default_factory=list)
    """Every CloudEvent the instance (and its sub-workflows) produced."""
    instance_id: str = ""
    """The instance's id."""


def _absolute(path: str | Path) -> Path:
    return Path(path).resolve()


class LocalEffects:
    """The :class:`~tideflow.runtime.effects.Effects` of one run on the local host."""

    def __init__(
        self, host: LocalHost, workflow: Workflow, base_dir: Path, instance_id: str
    ) -> None:
        """Args:
        host: The host (invoker, event feed, sub-workflows, emitted events).
        workflow: The definition being run.
        base_dir: Its folder (relative OpenAPI documents and Python modules).
        instance_id: The instance's id (prefix of idempotency keys).
        """
        self._host = host
        self.workflow = workflow
        self.base_dir = base_dir
        self.instance_id = instance_id
        self.variables: Mapping[str, Any] = {}

    async def call_function(self, call: FunctionCall) -> Any:
        """Invoke through the host's :class:`FunctionInvoker`."""
        definition = call.function
        invocation = Invocation(
            name=call.name,
            operation=definition.operation,
            type=definition.type,
            arguments=call_arguments(call, sonataflow=self._host.options.dialect == "sonataflow"),
            selection_set=call.selection_set,
            auth=resolve_auth(self.workflow, definition.auth_ref, self.variables),
            idempotency_key=idempotency_key(self.instance_id, call.key),
            base_dir=self.base_dir,
            timeout=None,  # the host bounds the whole call (code TIMEOUT), see below
            document=bundled_document(getattr(self.workflow, "files", None), definition.operation),
        )
        invoked = self._host.invoker.invoke(invocation)
        if call.invoke == "async":
            self._host.start_background(invoked, keep=True)
            return None
        return await bounded(invoked, call.timeout_seconds, call.key)

    async def wait_for_events(self, wait: EventWait) -> list[dict[str, Any]] | None:
        """Take matching events from the ``--events`` feed."""
        await asyncio.sleep(0)  # let parallel branches reach their own waits in turn
        return self._host.feed.take(wait)

    async def sleep(self, request: SleepRequest) -> None:
        """Sleep for real; ``math.inf`` waits until a deadline cancels it."""
        if math.isinf(request.seconds):
            await asyncio.Event().wait()
        await self._host.clock.sleep(request.seconds)

    async def emit(self, request: EventEmit) -> None:
        """Collect the event, adding ``source`` and ``time`` when missing."""
        event = complete_event(request.event, self.workflow, self.now())
        self._host.emitted.append(self._host.redactor(self.workflow).value(event))

    async def run_subflow(self, call: SubflowCall) -> Any:
        """Run a sub-workflow found by id (and version) on this host."""
        path = self._host.subflows.find(call.workflow_id, call.version)
        try:
            workflow = await self._host.load(path)
        except (WorkflowLoadError, WorkflowValidationError) as exc:
            raise FunctionCallError(
                f"sub-workflow {call.workflow_id!r} cannot be loaded: {exc}",
                code="InvalidSubflow",
                retryable=False,
            ) from exc
        run = self._host.run_chain(workflow, call.input, path.parent, parent=self.instance_id)
        if call.invoke == "async":
            self._host.start_background(run, keep=call.on_parent_complete == "continue")
            return None
        result = await bounded(run, call.timeout_seconds, call.key)
        if isinstance(result, Failed):
            error = result.error
            raise FunctionCallError(
                f"sub-workflow {call.workflow_id!r} failed: {error.message}",
                code=error.code or error.name,
                retryable=False,
            )
        return result.output

    async def within(self, deadline: Deadline, body: Callable[[], Awaitable[T]]) -> T:
        """Await ``body()`` under a real timer."""
        return await bounded(body(), deadline.seconds, deadline.key, deadline.kind)

    def now(self) -> datetime:
        """The real time."""
        return self._host.clock.now()

    def new_id(self) -> str:
        """A random UUID."""
        return ids.new_id()


class LocalHost:
    """Runs workflow instances in this process (see the module docs)."""

    def __init__(
        self,
        options: LocalOptions | None = None,
        *,
        invoker: FunctionInvoker | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """Args:
        options: Functions, events, folders, dialect, timeline.
        invoker: The function invoker (one is made from ``options`` by default).
        clock: The clock for sleeps and ``now()``.
        """
        self.options = options or LocalOptions()
        self.clock = clock
        log = self.options.log or TimelinePrinter().line
        self.invoker = invoker or FunctionInvoker(
            overrides=self.options.functions,
            servers=self.options.servers,
            redirects=self.options.redirects,
            log=log,
            brokers=self.options.brokers,
        )
        self.feed = EventFeed(self.options.events)
        self.emitted: list[dict[str, Any]] = []
        self.subflows = SubflowIndex([])
        self._loaded: dict[Path, Workflow] = {}
        self._interpreters: dict[int, WorkflowInterpreter] = {}
        self._keep = TaskSet("background call", logging.getLogger("tideflow.runtime"))
        """Async calls and ``continue`` sub-flows: awaited before a run returns."""
        self._drop = TaskSet("background sub-flow", logging.getLogger("tideflow.runtime"))
        """The other sub-flows: cancelled when the run returns."""

    async def run_file(self, path: str | Path, input: Any = None) -> LocalRun:
        """Load the workflow at ``path`` and run one instance with ``input``.

        Raises:
            WorkflowLoadError: The file cannot be read or parsed.
            WorkflowValidationError: The definition is invalid.
        """
        file = _absolute(path)
        workflow = await self.load(file)
        try:
            return await self.run(workflow, input, file.parent)
        finally:
            await self.aclose()

    async def run(self, workflow: Workflow, input: Any, base_dir: Path) -> LocalRun:
        """Run one instance of ``workflow``, following ``continueAs``, until it ends.

        Async calls and ``continue`` sub-flows it started are awaited before
        this returns; the rest are cancelled. The host can run more instances
        afterwards; close it with :meth:`aclose` (or ``async with``).
        """
        self.subflows = SubflowIndex([base_dir, *self.options.workflow_dirs])
        self.emitted = []
        instance_id = ids.new_id()
        try:
            result = await self.run_chain(workflow, input, base_dir, instance_id=instance_id)
            await self._keep.wait()
        finally:
            await self._drop.cancel()
            await self._keep.cancel()
        return LocalRun(result=result, emitted=self.emitted, instance_id=instance_id)

    async def aclose(self) -> None:
        """Close the function invoker's HTTP client."""
        await self.invoker.aclose()

    async def __aenter__(self) -> LocalHost:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def load(self, path: Path) -> Workflow:
        """Load (once) the definition at ``path`` (0.8 or 1.0, by ``document.dsl``)."""
        if path not in self._loaded:
            model, _ = await load_any_definition(path, dialect=self.options.dialect)
            self._loaded[path] = model
        return self._loaded[path]

    def _interpreter(self, workflow: Workflow) -> WorkflowInterpreter:
        """The interpreter of ``workflow``'s DSL (0.8 or 1.0), compiled once per definition."""
        found = self._interpreters.get(id(workflow))
        if found is None or found.workflow is not workflow:
            found = _compile(workflow, self.options)
            self._interpreters[id(workflow)] = found
        return found

    def redactor(self, workflow: Workflow) -> Redactor:
        """What hides ``workflow``'s secrets in its outputs, errors, events and timeline."""
        return redactor_of(self._interpreter(workflow))

    def _on_step(self, workflow: Workflow, *, nested: bool) -> Callable[[Step], None] | None:
        """The timeline callback of a run: steps of nested runs (sub-flows,
        ``continueAs``) get keys prefixed by their workflow id, e.g. ``child:Work``."""
        on_step = self.options.on_step
        if on_step is not None and nested:
            return _prefixed(on_step, workflow.identifier)
        return on_step

    def start_background(self, awaitable: Awaitable[Any], *, keep: bool) -> None:
        """Run ``awaitable`` on its own; ``keep`` ones are awaited before the run ends."""
        (self._keep if keep else self._drop).spawn(awaitable)

    async def run_chain(
        self,
        workflow: Workflow,
        input: Any,
        base_dir: Path,
        *,
        parent: str | None = None,
        instance_id: str | None = None,
    ) -> RunResult:
        """Run ``workflow`` and every ``continueAs`` successor; return the last outcome."""
        for count in range(_MAX_CONTINUATIONS):
            first = count == 0
            effects = LocalEffects(self, workflow, base_dir, instance_id or ids.new_id())
            interpreter = self._interpreter(workflow)
            effects.variables = {
                "CONST": interpreter.constants,
                "SECRETS": interpreter.secrets,
            }
            redactor = redactor_of(interpreter)
            on_step = self._on_step(workflow, nested=parent is not None or not first)
            result: RunResult = await interpreter.run(
                input,
                effects,
                instance_id=effects.instance_id,
                on_step=redacted_steps(on_step, redactor),
                pace=ClockPace(self.clock.monotonic),
            )
            result = redact_result(result, redactor)
            if not isinstance(result, ContinuedAs):
                return result
            path = self.subflows.find(result.workflow_id, result.version)
            workflow, base_dir, input = await self.load(path), path.parent, result.input
            instance_id = None
        raise TideflowError(f"more than {_MAX_CONTINUATIONS} continueAs runs in a row")


def _compile(workflow: Workflow | Workflow1, options: LocalOptions) -> WorkflowInterpreter:
    """The interpreter of a workflow's DSL: 1.0 or 0.8 (``loader.load_any`` gives either)."""
    secrets = workflow_secrets(workflow, options.secrets, options.secret_source)
    if isinstance(workflow, Workflow1):
        return Interpreter1(workflow, secrets=secrets)
    return Interpreter(workflow, secrets=secrets, dialect=options.dialect)


def _prefixed(on_step: Callable[[Step], None], prefix: str) -> Callable[[Step], None]:
    def tell(step: Step) -> None:
        on_step(replace(step, key=f"{prefix}:{step.key}"))

    return tell
