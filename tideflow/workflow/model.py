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

StateType = Literal[
    "event", "operation", "switch", "sleep", "parallel", "inject", "foreach", "callback"
]


def freeze(value: Any) -> Any:
    """Return a deep, read-only copy of a JSON value (dicts -> mappings, lists -> tuples)."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Return a plain, mutable JSON copy of a value made by :func:`freeze`."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


# --- filters --------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StateDataFilter:
    """Filters applied to a state's input and output."""

    input: str | None = None
    """Expression applied to the state's input; its result is the state data."""
    output: str | None = None
    """Expression applied to the state data before transition; its result is the output."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionDataFilter:
    """Filters applied around one action."""

    from_state_data: str | None = None
    """Expression selecting the state data the action's arguments see."""
    use_results: bool = True
    """When false the action's results are discarded."""
    results: str | None = None
    """Expression applied to the action's result."""
    to_state_data: str | None = None
    """Expression naming where in the state data the results are merged."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EventDataFilter:
    """Filters applied to a consumed event."""

    use_data: bool = True
    """When false the event's data is not merged into the state data."""
    data: str | None = None
    """Expression applied to the event payload (or whole event when not dataOnly)."""
    to_state_data: str | None = None
    """Expression naming where in the state data the event data is merged."""


# --- actions --------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionRef:
    """A call of a defined function."""

    ref_name: str
    """Name of the function definition."""
    arguments: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    """Arguments (deep-frozen); string values may be expressions."""
    selection_set: str | None = None
    """GraphQL selection set."""
    invoke: Invoke = "sync"
    """``async`` means fire and forget."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRef:
    """An action that produces an event and (unless async) waits for a result event."""

    trigger_event_ref: str
    """Name of the produced event definition."""
    result_event_ref: str
    """Name of the consumed event definition carrying the result."""
    result_event_timeout: str | None = None
    """ISO 8601 duration to wait for the result event."""
    data: str | Mapping[str, Any] | None = None
    """Payload of the trigger event: an expression or a (frozen) object."""
    context_attributes: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    """Extra CloudEvent context attributes of the trigger event."""
    invoke: Invoke = "sync"
    """``async`` means produce the event and do not wait."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubFlowRef:
    """A call of another workflow."""

    workflow_id: str
    """Id of the workflow to run."""
    version: str | None = None
    """Version of the workflow; any when absent."""
    invoke: Invoke = "sync"
    """``async`` means do not wait for the sub-flow."""
    on_parent_complete: Literal["terminate", "continue"] = "terminate"
    """What happens to an async sub-flow when the parent completes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Sleep:
    """Pauses around an action invocation."""

    before: str | None = None
    """ISO 8601 duration to sleep before the invocation."""
    after: str | None = None
    """ISO 8601 duration to sleep after the invocation."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """One action: exactly one of ``function_ref``, ``event_ref``, ``sub_flow_ref`` is set."""

    id: str | None = None
    """Unique action id."""
    name: str | None = None
    """Action name."""
    function_ref: FunctionRef | None = None
    """The function to call."""
    event_ref: EventRef | None = None
    """The event to produce and the result event to wait for."""
    sub_flow_ref: SubFlowRef | None = None
    """The sub-flow to run."""
    sleep: Sleep | None = None
    """Pauses before and after the invocation."""
    retry_ref: str | None = None
    """Name of the retry definition to use."""
    non_retryable_errors: tuple[str, ...] = ()
    """Error names never retried (with ``autoRetries``)."""
    retryable_errors: tuple[str, ...] = ()
    """Error names retried (without ``autoRetries``)."""
    action_data_filter: ActionDataFilter = ActionDataFilter()
    """Filters around the action."""
    condition: str | None = None
    """Expression; when false the action is skipped."""


# --- transitions and ends -------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ProducedEvent:
    """An event produced on a transition or at the end."""

    event_ref: str
    """Name of the produced event definition."""
    data: str | Mapping[str, Any] | None = None
    """Payload: an expression or a (frozen) object."""
    context_attributes: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    """Extra CloudEvent context attributes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """A move to another state."""

    next_state: str
    """Name (or id) of the next state."""
    produce_events: tuple[ProducedEvent, ...] = ()
    """Events produced before moving."""
    compensate: bool = False
    """Run compensation before moving."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ContinueAs:
    """Start a new execution when this one ends."""

    workflow_id: str
    """Id of the workflow to continue as."""
    version: str | None = None
    """Its version."""
    data: str | Mapping[str, Any] | None = None
    """Input of the new execution: an expression or a (frozen) object."""
    workflow_exec_timeout: WorkflowExecTimeout | None = None
    """Overrides the target's workflow execution timeout."""


@dataclass(frozen=True, slots=True, kw_only=True)
class End:
    """The end of a path of execution."""

    terminate: bool = False
    """Stop every active path of the instance."""
    produce_events: tuple[ProducedEvent, ...] = ()
    """Events produced at the end."""
    compensate: bool = False
    """Run compensation before ending."""
    continue_as: ContinueAs | None = None
    """Continue as a new execution (implies terminate)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorHandler:
    """One ``onErrors`` entry of a state."""

    error_ref: str | None = None
    """Name of the handled error."""
    error_refs: tuple[str, ...] = ()
    """Names of the handled errors (alternative to ``error_ref``)."""
    transition: Transition | None = None
    """Where to go when handled."""
    end: End | None = None
    """End instead of transitioning."""

    @property
    def errors(self) -> tuple[str, ...]:
        """Every error name this handler catches."""
        return (self.error_ref,) if self.error_ref is not None else self.error_refs


# --- timeouts -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecTimeout:
    """The workflow execution timeout."""

    duration: str
    """ISO 8601 duration."""
    interrupt: bool = True
    """Interrupt the running state (the schema's default; the prose says false)."""
    run_before: str | None = None
    """Name of a state run before the instance is terminated."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StateExecTimeout:
    """The state execution timeout."""

    total: str
    """ISO 8601 duration of the state including retries."""
    single: str | None = None
    """ISO 8601 duration of a single attempt."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Timeouts of the workflow, a state or a branch; absent means unlimited/inherited."""

    workflow_exec_timeout: WorkflowExecTimeout | None = None
    """Only at the workflow level."""
    state_exec_timeout: StateExecTimeout | None = None
    """Per state."""
    action_exec_timeout: str | None = None
    """ISO 8601 duration per action."""
    branch_exec_timeout: str | None = None
    """ISO 8601 duration per parallel branch."""
    event_timeout: str | None = None
    """ISO 8601 duration to wait for events."""


NO_TIMEOUTS = Timeouts()


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
    event_data_filter: EventDataFilter = EventDataFilter()
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
    event_data_filter: EventDataFilter = EventDataFilter()
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
    default_condition: DefaultCondition = DefaultCondition()
    """Taken when nothing matches."""

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
    event_data_filter: EventDataFilter = EventDataFilter()
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
