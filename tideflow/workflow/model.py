"""The immutable model of a Serverless Workflow 0.8 definition.

Every class is a frozen, slotted, keyword-only dataclass. Collections are
tuples, mappings are read-only (:class:`types.MappingProxyType`), and free-form
JSON values (function arguments, inject data, constants) are deep-frozen with
:func:`freeze`; call :func:`thaw` to get plain ``dict``/``list`` values back,
for instance before handing them to jq.

Shorthand forms of the spec are normalized when the model is built (a string
``functionRef`` becomes a :class:`FunctionRef`, ``end: true`` becomes
:class:`End`, ...) and the spec's defaults are applied, so readers of the model
never need to look at the raw document. Expression fields keep their raw text
(``"${ .a }"`` or bare jq); compile them with
``tideflow.workflow.expressions.compile_expression``, which caches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from tideflow.workflow._defs import (
    EMPTY,
    ActionMode,
    AuthDef,
    Correlation,
    Cron,
    DataInputSchema,
    ErrorDef,
    EventDef,
    EventKind,
    FunctionDef,
    FunctionType,
    Invoke,
    RetryDef,
    Schedule,
    Start,
)
from tideflow.workflow._parts import (
    NO_ACTION_DATA_FILTER,
    NO_EVENT_DATA_FILTER,
    NO_TIMEOUTS,
    Action,
    ActionDataFilter,
    ContinueAs,
    End,
    ErrorHandler,
    EventDataFilter,
    EventRef,
    FunctionRef,
    ProducedEvent,
    Sleep,
    StateDataFilter,
    StateExecTimeout,
    SubFlowRef,
    Timeouts,
    Transition,
    WorkflowExecTimeout,
    freeze,
    thaw,
)

StateType = Literal[
    "event", "operation", "switch", "sleep", "parallel", "inject", "foreach", "callback"
]

# --- states ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class State:
    """Fields common to every state type."""

    name: str
    """Unique state name."""
    type: StateType
    """The state type."""
    id: str | None = None
    """Optional unique id; transitions may use it instead of the name."""
    state_data_filter: StateDataFilter | None = None
    """Input and output filters."""
    transition: Transition | None = None
    """Where to go next (None when the state ends or is a switch)."""
    end: End | None = None
    """How the state ends (None when it transitions)."""
    on_errors: tuple[ErrorHandler, ...] = ()
    """Error handlers, in order."""
    compensated_by: str | None = None
    """Name of the state compensating this one."""
    used_for_compensation: bool = False
    """True for compensation states."""
    timeouts: Timeouts = NO_TIMEOUTS
    """State timeouts."""
    metadata: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    """Free-form metadata."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OnEvents:
    """Events an event state waits for and the actions they trigger."""

    event_refs: tuple[str, ...]
    """Names of consumed event definitions."""
    action_mode: ActionMode = "sequential"
    """How the actions run."""
    actions: tuple[Action, ...] = ()
    """Actions run when the events arrive."""
    event_data_filter: EventDataFilter = NO_EVENT_DATA_FILTER
    """How the event data is merged."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EventState(State):
    """Waits for events, then runs actions."""

    exclusive: bool = True
    """True: any one of the events triggers; false: all must arrive."""
    on_events: tuple[OnEvents, ...] = ()
    """Event groups and their actions."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OperationState(State):
    """Runs actions."""

    action_mode: ActionMode = "sequential"
    """How the actions run."""
    actions: tuple[Action, ...] = ()
    """The actions."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DataCondition:
    """A switch branch taken when its condition is true."""

    condition: str
    """Boolean expression."""
    name: str | None = None
    """Condition name."""
    transition: Transition | None = None
    """Where to go."""
    end: End | None = None
    """End instead of transitioning."""
    metadata: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    """Free-form metadata."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EventCondition:
    """A switch branch taken when its event arrives first."""

    event_ref: str
    """Name of the consumed event definition."""
    name: str | None = None
    """Condition name."""
    transition: Transition | None = None
    """Where to go."""
    end: End | None = None
    """End instead of transitioning."""
    event_data_filter: EventDataFilter = NO_EVENT_DATA_FILTER
    """How the event data is merged."""
    metadata: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    """Free-form metadata."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DefaultCondition:
    """The switch branch taken when no condition matches (or on event timeout)."""

    transition: Transition | None = None
    """Where to go."""
    end: End | None = None
    """End instead of transitioning."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SwitchState(State):
    """Chooses the next state by data conditions or by the first event to arrive."""

    data_conditions: tuple[DataCondition, ...] = ()
    """Data conditions, in order (data-based switch)."""
    event_conditions: tuple[EventCondition, ...] = ()
    """Event conditions (event-based switch)."""
    default_condition: DefaultCondition | None = DefaultCondition()
    """Taken when nothing matches; ``None`` only under SonataFlow's dialect (no
    ``defaultCondition``): a data switch then fails when nothing matches, an
    event switch waits without a timeout."""

    @property
    def is_event_based(self) -> bool:
        """True when the switch waits for events."""
        return bool(self.event_conditions)


@dataclass(frozen=True, slots=True, kw_only=True)
class SleepState(State):
    """Waits for a duration."""

    duration: str = ""
    """ISO 8601 duration."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Branch:
    """One branch of a parallel state."""

    name: str
    """Branch name."""
    actions: tuple[Action, ...] = ()
    """Actions of the branch."""
    timeouts: Timeouts = NO_TIMEOUTS
    """Branch timeouts (actionExecTimeout, branchExecTimeout)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ParallelState(State):
    """Runs branches concurrently."""

    branches: tuple[Branch, ...] = ()
    """The branches."""
    completion_type: Literal["allOf", "atLeast"] = "allOf"
    """Wait for all branches or for ``num_completed`` of them."""
    num_completed: int | str | None = None
    """Branches needed with ``atLeast`` (a number or an expression)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InjectState(State):
    """Merges fixed data into the state data."""

    data: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    """The data (deep-frozen)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ForEachState(State):
    """Runs actions for each element of a collection."""

    input_collection: str = ""
    """Expression selecting the array to iterate."""
    output_collection: str | None = None
    """Expression naming the array receiving each iteration's result."""
    iteration_param: str | None = None
    """Name bound to the current element."""
    batch_size: int | str | None = None
    """Maximum concurrent iterations (a number or an expression)."""
    actions: tuple[Action, ...] = ()
    """Actions run per iteration."""
    mode: ActionMode = "parallel"
    """Iterations run in parallel (default) or one after another."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackState(State):
    """Runs an action, then waits for a callback event."""

    action: Action = field(default_factory=Action)
    """The action triggering the external activity."""
    event_ref: str = ""
    """Name of the consumed callback event definition."""
    event_data_filter: EventDataFilter = NO_EVENT_DATA_FILTER
    """How the callback event's data is merged."""


AnyState = (
    EventState
    | OperationState
    | SwitchState
    | SleepState
    | ParallelState
    | InjectState
    | ForEachState
    | CallbackState
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Workflow:
    """A whole workflow definition, with name lookups built once."""

    id: str | None = None
    """Workflow id (``id`` or ``key`` is set)."""
    key: str | None = None
    """Domain-specific workflow key."""
    name: str | None = None
    """Workflow name."""
    description: str | None = None
    """Description."""
    version: str | None = None
    """Version."""
    annotations: tuple[str, ...] = ()
    """Informational annotations."""
    data_input_schema: DataInputSchema | None = None
    """Schema of the workflow input."""
    data_output_schema: DataInputSchema | None = None
    """Schema of the workflow output: SonataFlow's ``workflow-output-schema`` extension."""
    secrets: tuple[str, ...] = ()
    """Names of the secrets the workflow uses."""
    constants: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    """Constants (deep-frozen), ``$CONST`` in expressions."""
    start: Start
    """The start state (the first state when the document has no ``start``)."""
    spec_version: str = "0.8"
    """Serverless Workflow spec version."""
    expression_lang: str = "jq"
    """``jq`` or ``jsonpath``."""
    timeouts: Timeouts = NO_TIMEOUTS
    """Workflow-level timeouts and defaults."""
    errors: tuple[ErrorDef, ...] = ()
    """Error definitions."""
    keep_active: bool = False
    """Keep the instance alive when no path is active."""
    metadata: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    """Free-form metadata."""
    auth: tuple[AuthDef, ...] = ()
    """Auth definitions."""
    events: tuple[EventDef, ...] = ()
    """Event definitions."""
    functions: tuple[FunctionDef, ...] = ()
    """Function definitions."""
    auto_retries: bool = False
    """Retry every error except ``nonRetryableErrors``."""
    retries: tuple[RetryDef, ...] = ()
    """Retry definitions."""
    files: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    """Function documents (OpenAPI, AsyncAPI) deployed with the definition in a bundle,
    by reference as written in ``operation`` (the stored version's ``$tideflowFiles``)."""
    states: tuple[AnyState, ...]
    """The states, in document order."""
    _states: Mapping[str, AnyState] = field(init=False, repr=False, compare=False)
    _functions: Mapping[str, FunctionDef] = field(init=False, repr=False, compare=False)
    _events: Mapping[str, EventDef] = field(init=False, repr=False, compare=False)
    _retries: Mapping[str, RetryDef] = field(init=False, repr=False, compare=False)
    _errors: Mapping[str, ErrorDef] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, AnyState] = {s.id: s for s in self.states if s.id is not None}
        by_name.update((s.name, s) for s in self.states)
        setter = object.__setattr__
        setter(self, "_states", MappingProxyType(by_name))
        setter(self, "_functions", MappingProxyType({f.name: f for f in self.functions}))
        setter(self, "_events", MappingProxyType({e.name: e for e in self.events}))
        setter(self, "_retries", MappingProxyType({r.name: r for r in self.retries}))
        setter(self, "_errors", MappingProxyType({e.name: e for e in self.errors}))

    @property
    def identifier(self) -> str:
        """The workflow's ``id``, or its ``key`` when it has no id."""
        return self.id if self.id is not None else (self.key or "")

    @property
    def start_state(self) -> AnyState:
        """The state the workflow starts in."""
        return self._states[self.start.state_name]

    def state(self, name: str) -> AnyState:
        """The state with this name (or id).

        Raises:
            KeyError: No such state.
        """
        return self._states[name]

    def has_state(self, name: str) -> bool:
        """Whether a state has this name (or id)."""
        return name in self._states

    def function(self, name: str) -> FunctionDef:
        """The function definition with this name.

        Raises:
            KeyError: No such function.
        """
        return self._functions[name]

    def event(self, name: str) -> EventDef:
        """The event definition with this name.

        Raises:
            KeyError: No such event.
        """
        return self._events[name]

    def retry(self, name: str) -> RetryDef:
        """The retry definition with this name.

        Raises:
            KeyError: No such retry.
        """
        return self._retries[name]

    def error(self, name: str) -> ErrorDef:
        """The error definition with this name.

        Raises:
            KeyError: No such error.
        """
        return self._errors[name]


__all__ = [
    "EMPTY",
    "NO_ACTION_DATA_FILTER",
    "NO_EVENT_DATA_FILTER",
    "NO_TIMEOUTS",
    "Action",
    "ActionDataFilter",
    "ActionMode",
    "AnyState",
    "AuthDef",
    "Branch",
    "CallbackState",
    "ContinueAs",
    "Correlation",
    "Cron",
    "DataCondition",
    "DataInputSchema",
    "DefaultCondition",
    "End",
    "ErrorDef",
    "ErrorHandler",
    "EventCondition",
    "EventDataFilter",
    "EventDef",
    "EventKind",
    "EventRef",
    "EventState",
    "ForEachState",
    "FunctionDef",
    "FunctionRef",
    "FunctionType",
    "InjectState",
    "Invoke",
    "OnEvents",
    "OperationState",
    "ParallelState",
    "ProducedEvent",
    "RetryDef",
    "Schedule",
    "Sleep",
    "SleepState",
    "Start",
    "State",
    "StateDataFilter",
    "StateExecTimeout",
    "StateType",
    "SubFlowRef",
    "SwitchState",
    "Timeouts",
    "Transition",
    "Workflow",
    "WorkflowExecTimeout",
    "freeze",
    "thaw",
]
