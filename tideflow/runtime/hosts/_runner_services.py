"""What an instance runner of the durable host needs, as small role Protocols, and option types.

Each role is one seam of the host: :class:`Timing` (the clock),
:class:`RunJournal` (the journal writer and a replay's reads),
:class:`ContestedSteps` (journal writes that race events or a child),
:class:`DefinitionSource` (the registry, compiled), :class:`Invoker`
(functions), :class:`EventSink` (produced events), :class:`Subflows` and
:class:`Notices` (lifecycle hook, waiters of an end). A consumer depends only
on the roles it uses: an
:class:`~tideflow.runtime.hosts._instance_runner.InstanceRunner` on
:class:`RunnerServices`, its
:class:`~tideflow.runtime.hosts._journaled_effects.DurableEffects` on
:class:`EffectsServices` (``tests/unit/test_runner_roles.py`` checks both
against what the code calls). :class:`~tideflow.runtime.hosts.durable.DurableRuntime`
implements every role; nothing here imports the runtime, so runners and
effects depend on this module only (imports run one way: service -> runner
-> effects -> here).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tideflow import ids
from tideflow.clock import Clock
from tideflow.runtime.effects import SubflowCall, WorkflowInterpreter
from tideflow.runtime.functions import Invocation
from tideflow.runtime.functions.messaging import Brokers
from tideflow.runtime.functions.policy import PythonPolicy
from tideflow.runtime.functions.python import PythonFunction
from tideflow.runtime.gateway import InstanceRow
from tideflow.runtime.journal import JournalWriter
from tideflow.secrets import SecretAccess, SecretSource
from tideflow.settings import Settings
from tideflow.workflow.model import Workflow

__all__ = [
    "ContestedSteps",
    "DefinitionSource",
    "EffectsServices",
    "EmitSink",
    "EventSink",
    "InstanceRef",
    "Invoker",
    "LifecycleEvent",
    "LifecycleHook",
    "Notices",
    "RunJournal",
    "RunnerServices",
    "RuntimeOptions",
    "Subflows",
    "Timing",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeOptions:
    """How a :class:`DurableRuntime` runs instances."""

    owner: str = field(default_factory=ids.new_id)
    """Lease owner id of this process."""
    lease_seconds: float = field(default_factory=lambda: Settings.from_env().lease_seconds)
    """Lease length (see :mod:`tideflow.runtime.claimer`); ``TIDEFLOW_LEASE_SECONDS``."""
    quarantine_after: int = field(default_factory=lambda: Settings.from_env().quarantine_after)
    """An instance claimed this many times in a row after a runner that never released it
    at the same step (a crash) is failed with ``QUARANTINED`` instead of run again:
    whatever killed its runner is not tried once more (``TIDEFLOW_QUARANTINE_AFTER``)."""
    take_over: bool = False
    """At start, end the leases a previous life of ``owner`` left: a restart after a
    crash continues its instances at once. Only for an owner no other live process
    has (``tideflow serve``: its node id, held with :func:`tideflow.node.hold_node`)."""
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
    brokers: Brokers | None = None
    """Message brokers for AsyncAPI calls (the connectors; ``tideflow serve`` gives them)."""
    secrets: SecretAccess = field(default_factory=lambda: SecretAccess(SecretSource()))
    """``$SECRETS`` of each workflow: only the secrets granted to its id (by default none)."""


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


class InstanceRef(Protocol):
    """An instance a lifecycle notice is about (a stored row or a runner)."""

    @property
    def id(self) -> str:
        """The instance's id."""

    @property
    def workflow_id(self) -> str:
        """Its workflow."""

    @property
    def version(self) -> str:
        """The workflow version it runs."""


class Timing(Protocol):
    """Role: the clock runs read, and how long a sleep may stay in memory."""

    @property
    def clock(self) -> Clock:
        """Sleeps, due times, step durations."""

    @property
    def memory_sleep(self) -> float:
        """Longest sleep slept in memory (longer ones park)."""


class RunJournal(Protocol):
    """Role: the journal writer, and the journal reads a replay needs."""

    @property
    def writer(self) -> JournalWriter:
        """The group-committed journal writer (every write of a run goes through it)."""

    async def load_run(self, instance_id: str, run_no: int) -> tuple[list[dict[str, Any]], int]:
        """The run's journal and how many interpreter steps its timeline already has."""


class ContestedSteps(Protocol):
    """Role: journal writes that race another writer (events delivered, a child's answer),
    each in its own transaction under a lock, outside the group-committed writer."""

    async def time_out_wait(self, instance_id: str, run_no: int, wait_key: str) -> Any:
        """End an event wait whose timeout passed, unless events won the race."""

    async def settle(
        self, instance_id: str, run_no: int, op: str, key: str, entry: dict[str, Any]
    ) -> dict[str, Any]:
        """Journal ``entry`` for a step unless another answer got there first; return the winner."""

    async def drop_waits(self, instance_id: str, prefix: str | None) -> None:
        """Forget the event waits whose keys start with ``prefix`` (all with ``None``)."""


class DefinitionSource(Protocol):
    """Role: the registry, as compiled definitions."""

    async def interpreter(
        self, workflow_id: str, version: str
    ) -> tuple[Workflow, WorkflowInterpreter]:
        """The workflow model and its interpreter, compiled once per version."""

    async def resolve_version(self, workflow_id: str, version: str | None) -> str:
        """The stored version ``version`` names (the latest when ``None``)."""


class Invoker(Protocol):
    """Role: the function invoker (the ``python:`` policy applied)."""

    def invoke(self, invocation: Invocation) -> Awaitable[Any]:
        """Call a function (the ``python:`` policy applied)."""

    def base_dir_for(self, operation: str) -> Path:
        """The folder a function's relative references resolve in."""

    def background(self, awaitable: Awaitable[Any]) -> None:
        """Run a fire-and-forget call (``invoke: async``); its errors are logged only."""


class EventSink(Protocol):
    """Role: where produced CloudEvents go."""

    async def emit(self, event: dict[str, Any]) -> None:
        """Hand a produced CloudEvent to the sink."""


class Subflows(Protocol):
    """Role: sub-flow instances started and cancelled for a parent."""

    async def start_child(
        self, call: SubflowCall, child: str, parent_id: str, parent_key: str | None
    ) -> None:
        """Create and run a sub-flow instance (nothing when it exists already)."""

    async def cancel_child(self, instance_id: str) -> None:
        """Cancel a sub-flow whose parent ended (``onParentComplete: terminate``)."""


class Notices(Protocol):
    """Role: telling the world an instance changed (after the change is committed)."""

    def lifecycle(self, kind: str, instance: InstanceRef, **detail: Any) -> None:
        """Tell the lifecycle hook."""

    def finished(self, instance_id: str, row: InstanceRow | None = None) -> None:
        """Wake whoever waits for ``instance_id`` to end."""


class EffectsServices(Timing, Invoker, EventSink, Subflows, ContestedSteps, Protocol):
    """The roles a run's :class:`DurableEffects` depends on."""


class RunnerServices(Timing, RunJournal, DefinitionSource, Subflows, Notices, Protocol):
    """The roles an :class:`InstanceRunner` depends on (it hands its effects theirs)."""
