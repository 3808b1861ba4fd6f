"""Parts of the model used inside states: filters, actions, transitions, ends, timeouts.

Re-exported by :mod:`tideflow.workflow.model`; import them from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from tideflow.workflow._defs import EMPTY, Invoke


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


NO_EVENT_DATA_FILTER = EventDataFilter()
"""The default event data filter: use the whole data, merge at the root."""
NO_ACTION_DATA_FILTER = ActionDataFilter()
"""The default action data filter: use the whole result, merge at the root."""


# --- actions --------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionRef:
    """A call of a defined function."""

    ref_name: str
    """Name of the function definition."""
    arguments: Mapping[str, Any] | str = field(default_factory=lambda: EMPTY)
    """Arguments (deep-frozen); string values may be expressions. A string is one
    expression giving all of them (SonataFlow's dialect only)."""
    selection_set: str | None = None
    """GraphQL selection set."""
    invoke: Invoke = "sync"
    """``async`` means fire and forget."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRef:
    """An action that produces an event and (unless async) waits for a result event."""

    trigger_event_ref: str
    """Name of the produced event definition."""
    result_event_ref: str | None = None
    """Name of the consumed event definition carrying the result; ``None`` only under
    SonataFlow's dialect, whose ``eventRef`` actions publish and never wait."""
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
    action_data_filter: ActionDataFilter = NO_ACTION_DATA_FILTER
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
