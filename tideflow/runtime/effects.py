"""The interface between the pure interpreter and the host that runs it.

The interpreter (:mod:`tideflow.runtime.interpreter`) never does I/O, never
reads the clock and never makes random values. Everything with an effect goes
through one object the host supplies, an :class:`Effects`. Hosts: the local
host (in-process, real HTTP and timers), the durable host (journal in
Postgres, replay), later Temporal.

Every request value carries a deterministic **step key** (for example
``"Greet/action:0/attempt:1"``), unique within one run of one instance. The
same definition, input and effect results give the same keys in the same
order, so a durable host uses the key as its journal key and as the
idempotency key of the side effect, and matches results by key, never by
arrival order (parallel branches await effects concurrently).

Key grammar (informative; hosts must treat keys as opaque strings)::

    <state>[#<visit>]                 a state; ``#2``, ``#3`` for revisits
    .../action:<i>/attempt:<n>        function call, n starts at 1
    .../action:<i>/sleep:before|after action sleeps
    .../action:<i>/attempt:<n>/backoff  retry delay before attempt n+1
    .../branch:<name>  .../iter:<i>   parallel branch, foreach iteration
    .../event:<i>  .../events         produced event, event wait
    .../subflow  .../sleep  .../timeout:<kind>

Contract of each method:

``call_function(call)``
    Invoke the function; return its JSON-like result. On failure raise
    :class:`tideflow.errors.FunctionCallError` (``code`` = HTTP status for
    HTTP-based functions, the exception's ``code`` attribute or class name for
    Python functions; ``retryable``). When ``call.timeout_seconds`` is set
    the host bounds the call and raises :class:`tideflow.errors.StepTimeout`
    when it runs out. With ``call.invoke == "async"`` the host starts the call
    and returns ``None`` at once; its errors are never reported.
``wait_for_events(wait)``
    Wait until the listed events arrived (any one when ``wait.all`` is false,
    all of them when true) and return them as CloudEvents in structured JSON
    form, in ``wait.events`` order for ``all``. Return ``None`` when
    ``wait.timeout_seconds`` ran out first. Matching on type, source and
    correlation, and buffering events that arrive before the wait, are the
    host's job.
``sleep(request)``
    Wait ``request.seconds`` (may be ``math.inf``: wait until interrupted by
    a :meth:`within` deadline, used for ``keepActive``).
``emit(request)``
    Produce ``request.event`` (structured JSON CloudEvent). The interpreter
    sets ``specversion``, ``id`` (deterministic), ``type``, ``data`` and
    context attributes; the host adds ``source`` when missing and ``time``.
``run_subflow(call)``
    Run workflow ``call.workflow_id`` (``version`` or latest) with
    ``call.input`` and return its output (following ``continueAs`` runs).
    Raise :class:`tideflow.errors.FunctionCallError` when it fails. With
    ``invoke == "async"`` start it and return ``None``.
``within(deadline, body)``
    Await ``body()``; if ``deadline.seconds`` elapse first, cancel it and
    raise :class:`tideflow.errors.StepTimeout`. Used for workflow, state and
    branch execution timeouts so the interpreter never races timers itself.
    A durable host journals the expiry under ``deadline.key``.
Host problems (a journal that does not match, storage down) are raised as
:class:`tideflow.errors.HostError` or :class:`tideflow.errors.StoreError`:
the interpreter lets them propagate instead of failing the instance. Any
other exception from ``call_function`` is treated as a function failure.

``now()`` / ``new_id()``
    Called only on the instance's sequential path (once at the start of a
    run, and ``now()`` before each transition when a non-interrupting
    ``workflowExecTimeout`` is set), so a journal may replay them in order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    from tideflow.runtime.result import RunResult, Step
    from tideflow.runtime.state import InstanceState

T = TypeVar("T")

Invoke = Literal["sync", "async"]


class FunctionTarget(Protocol):
    """The function a call names, as hosts see it (a 0.8 ``FunctionDef``, a 1.0 call target)."""

    @property
    def name(self) -> str:
        """The function's name."""

    @property
    def operation(self) -> str:
        """What to call: ``doc#operationId``, ``rest:...``, ``python:...``..."""

    @property
    def type(self) -> str:
        """``rest``, ``graphql``, ``odata``, ``custom``, ``http``, ..."""

    @property
    def auth_ref(self) -> str | None:
        """The workflow auth definition the call uses, if any."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionCall:
    """One invocation of a workflow function.

    Attributes:
        key: Deterministic step key (journal and idempotency key).
        function: The model's function definition (``tideflow.workflow.model``).
        name: The function's name (``function.name``), for hosts and logs.
        arguments: Evaluated arguments (every ``${ }`` already resolved).
        selection_set: GraphQL selection set, evaluated, or ``None``.
        invoke: ``"sync"`` or ``"async"`` (fire and forget).
        timeout_seconds: actionExecTimeout (or state ``single``), ``None`` = unlimited.
        attempt: 1 for the first try, 2 for the first retry, ...
        state: Name of the state that runs the action.
        action: The action's name (or ``None``).
        data: State data the action sees (after ``fromStateData``), for
            hosts that pass the whole data when no arguments are given.
    """

    key: str
    function: FunctionTarget
    name: str
    arguments: Mapping[str, Any]
    selection_set: str | None = None
    invoke: Invoke = "sync"
    timeout_seconds: float | None = None
    attempt: int = 1
    state: str = ""
    action: str | None = None
    data: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventSpec:
    """One event to wait for.

    Attributes:
        name: The event definition's name.
        type: CloudEvent ``type`` to match.
        source: CloudEvent ``source`` to match, or ``None`` for any.
        correlation: ``(contextAttributeName, value)`` pairs; ``value`` is
            ``None`` when the definition gives none (the host binds it to the
            value of the instance's first correlated event).
        data_only: The definition's ``dataOnly``.
        definition: The model's event definition.
    """

    name: str
    type: str
    source: str | None = None
    correlation: tuple[tuple[str, str | None], ...] = ()
    data_only: bool = True
    definition: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventWait:
    """A wait for one (``all=False``) or every (``all=True``) listed event.

    Attributes:
        key: Deterministic step key.
        events: The events to wait for.
        all: Wait for every event rather than the first one.
        timeout_seconds: eventTimeout / resultEventTimeout; ``None`` = unlimited.
        state: The waiting state's name.
    """

    key: str
    events: tuple[EventSpec, ...]
    all: bool = False
    timeout_seconds: float | None = None
    state: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SleepRequest:
    """A pause of ``seconds`` (sleep state, action sleeps, retry back-off).

    Attributes:
        key: Deterministic step key.
        seconds: How long; ``math.inf`` waits until an enclosing deadline.
        reason: ``"state"``, ``"before"``, ``"after"``, ``"retry"`` or ``"keepActive"``.
    """

    key: str
    seconds: float
    reason: str = "state"


@dataclass(frozen=True, slots=True, kw_only=True)
class EventEmit:
    """A CloudEvent to produce.

    Attributes:
        key: Deterministic step key.
        event: The CloudEvent in structured JSON form.
    """

    key: str
    event: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class SubflowCall:
    """A sub-workflow invocation.

    Attributes:
        key: Deterministic step key.
        workflow_id: The sub-workflow's id.
        version: Its version, or ``None`` for the latest.
        input: The sub-workflow's input (action data).
        invoke: ``"sync"`` or ``"async"``.
        on_parent_complete: ``"terminate"`` or ``"continue"`` (async only).
        timeout_seconds: actionExecTimeout, ``None`` = unlimited.
    """

    key: str
    workflow_id: str
    version: str | None = None
    input: Any = field(default_factory=dict)
    invoke: Invoke = "sync"
    on_parent_complete: str = "terminate"
    timeout_seconds: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Deadline:
    """A time limit the host enforces around a piece of the run.

    Attributes:
        key: Deterministic step key.
        seconds: The limit.
        kind: ``"workflow"``, ``"state"``, ``"branch"`` or ``"action"``.
    """

    key: str
    seconds: float
    kind: str


class Effects(Protocol):
    """What a host supplies to the interpreter (see the module docstring)."""

    async def call_function(self, call: FunctionCall) -> Any:
        """Invoke a function; raise ``FunctionCallError`` on failure."""
        ...

    async def wait_for_events(self, wait: EventWait) -> list[dict[str, Any]] | None:
        """Wait for events; ``None`` when the wait timed out."""
        ...

    async def sleep(self, request: SleepRequest) -> None:
        """Wait ``request.seconds``."""
        ...

    async def emit(self, request: EventEmit) -> None:
        """Produce a CloudEvent."""
        ...

    async def run_subflow(self, call: SubflowCall) -> Any:
        """Run a sub-workflow and return its output."""
        ...

    async def within(self, deadline: Deadline, body: Callable[[], Awaitable[T]]) -> T:
        """Await ``body()``; raise ``StepTimeout`` when the deadline passes first."""
        ...

    def now(self) -> datetime:
        """The current time (aware, UTC)."""
        ...

    def new_id(self) -> str:
        """A new unique id."""
        ...


class Pace(Protocol):
    """When a run's work that awaits no effect passes the event loop a turn.

    The interpreters ask after each iteration of a loop (``foreach``, 1.0
    ``for``, a loop of states or tasks) and before each parallel iteration
    begins; while a turn is due they ``await asyncio.sleep(0)`` and call
    :meth:`resumed` with the turn they took. Nothing is journaled, so the
    answer may depend on anything (the host's clock): a replay takes the same
    steps either way. A host that gives none gets a count (every 16 checks).
    """

    def due(self) -> int:
        """0 when no turn is due; else the number of the turn to take (parallel
        iterations asking in the same pass of the loop are given the same one)."""
        ...

    def resumed(self, turn: int) -> None:
        """The run has the event loop again after turn ``turn``."""
        ...


class WorkflowInterpreter(Protocol):
    """What hosts run: the 0.8 or the 1.0 interpreter of one compiled definition.

    One interpreter runs any number of instances; what belongs to one run --
    its effects and its callbacks -- goes to :meth:`run`.
    """

    @property
    def workflow(self) -> object:
        """The model it was compiled from."""

    @property
    def secrets(self) -> Mapping[str, Any]:
        """``$SECRETS``."""

    @property
    def constants(self) -> Mapping[str, Any]:
        """``$CONST`` (empty for 1.0)."""

    @property
    def sonataflow(self) -> bool:
        """SonataFlow's leniencies are on (never for 1.0)."""

    async def run(
        self,
        input: Any,
        effects: Effects,
        *,
        instance_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        on_step: Callable[[Step], None] | None = None,
        on_state: Callable[[InstanceState], None] | None = None,
        pace: Pace | None = None,
    ) -> RunResult:
        """Run one instance to its end (never raises for workflow faults); ``headers``:
        the filtered headers of the HTTP request that started it (0.8's
        ``$WORKFLOW.headers``)."""
