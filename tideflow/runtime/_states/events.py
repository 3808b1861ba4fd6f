"""States that wait for events: event, event-based switch, callback.

The host matches events (type, source, correlation) and buffers those that
arrive early; the interpreter only says what it waits for. An event state
that starts the workflow waits like any other: the host answers its first
wait with the event(s) that created the instance, and ``eventTimeout`` of an
exclusive start state is not passed on (the spec ignores it there).
"""

from __future__ import annotations

from typing import Any

from tideflow.errors import ExpressionError
from tideflow.runtime import timeouts
from tideflow.runtime._actions import Scope, invoke_action, merge_result, run_actions
from tideflow.runtime._context import Run
from tideflow.runtime.effects import EventSpec, EventWait
from tideflow.workflow.data_filters import merge_event_data
from tideflow.workflow.model import (
    CallbackState,
    End,
    EventDataFilter,
    EventState,
    State,
    SwitchState,
    Transition,
)


def _scope(run: Run, state: State) -> Scope:
    return Scope(state.name, timeouts.action_exec(state.timeouts, run.workflow.timeouts))


def _merge(run: Run, data: Any, spec: EventSpec, event: dict[str, Any], f: EventDataFilter) -> Any:
    return merge_event_data(
        data,
        event,
        f.data,
        f.to_state_data,
        f.use_data,
        spec.data_only,
        run.variables,
        run.compiled.lang,
    )


def _which(specs: tuple[EventSpec, ...], event: dict[str, Any]) -> int:
    """Index of the spec an event answers (by type, then source)."""
    candidates = [i for i, s in enumerate(specs) if s.type == event.get("type")]
    for i in candidates:
        if specs[i].source is None or specs[i].source == event.get("source"):
            return i
    return candidates[0] if candidates else 0


async def _wait(
    run: Run, state: State, specs: tuple[EventSpec, ...], key: str, all_: bool, limit: float | None
) -> list[dict[str, Any]] | None:
    run.step("event.waiting", key, state.name, events=[s.name for s in specs], all=all_)
    wait = EventWait(key=key, events=specs, all=all_, timeout_seconds=limit, state=state.name)
    events: list[dict[str, Any]] | None = await run.effects.wait_for_events(wait)
    if not events:
        run.step("event.timeout", key, state.name)
        return None
    names = [specs[_which(specs, e)].name for e in events]
    run.step("event.received", key, state.name, events=names)
    return events


async def event(
    run: Run, state: EventState, data: Any, key: str
) -> tuple[Any, Transition | End | None]:
    """Wait for one (exclusive) or all (non-exclusive) events, then run their actions."""
    try:
        groups = [
            (group, tuple(run.event_spec(name, data) for name in group.event_refs))
            for group in state.on_events
        ]
    except ExpressionError as exc:
        raise run.fault(exc, state.name) from None
    specs = tuple(s for _, group_specs in groups for s in group_specs)
    timeout = timeouts.event(state.timeouts, run.workflow.timeouts)
    # Only the first visit of the start state is the one an event started.
    is_start = key == state.name and run.workflow.start.state_name in (state.name, state.id)
    if is_start and state.exclusive:
        timeout = None
    events = await _wait(run, state, specs, f"{key}/events", not state.exclusive, timeout)
    if events is None:
        return data, None
    received = {specs[_which(specs, e)].name: e for e in events}
    for index, (group, group_specs) in enumerate(groups):
        hits = [(s, received[s.name]) for s in group_specs if s.name in received]
        if not hits:
            continue
        try:
            for spec, ev in hits:
                data = _merge(run, data, spec, ev, group.event_data_filter)
        except ExpressionError as exc:
            raise run.fault(exc, state.name) from None
        data = await run_actions(
            run, group.actions, group.action_mode, data, f"{key}/on:{index}", _scope(run, state)
        )
        if state.exclusive:
            break
    return data, None


async def event_switch(
    run: Run, state: SwitchState, data: Any, key: str
) -> tuple[Any, Transition | End | None]:
    """Take the condition of the first event to arrive, or the default on timeout."""
    try:
        specs = tuple(run.event_spec(c.event_ref, data) for c in state.event_conditions)
    except ExpressionError as exc:
        raise run.fault(exc, state.name) from None
    default = state.default_condition
    # SonataFlow: without defaultCondition no timer is set, the switch waits for an event
    timeout = None if default is None else timeouts.event(state.timeouts, run.workflow.timeouts)
    events = await _wait(run, state, specs, f"{key}/events", False, timeout)
    if events is None:
        if default is None:
            return data, End()  # a host ended the wait (its own deadline)
        return data, default.transition or default.end or End()
    index = _which(specs, events[0])
    cond = state.event_conditions[index]
    try:
        data = _merge(run, data, specs[index], events[0], cond.event_data_filter)
    except ExpressionError as exc:
        raise run.fault(exc, state.name) from None
    run.step("switch.matched", key, state.name, condition=cond.name or index)
    return data, cond.transition or cond.end or End()


async def callback(
    run: Run, state: CallbackState, data: Any, key: str
) -> tuple[Any, Transition | End | None]:
    """Run the action, then wait for the callback event and merge it."""
    scope = _scope(run, state)
    action_key = f"{key}/action:0"
    result = await invoke_action(run, state.action, data, action_key, scope)
    data = merge_result(run, state.action, data, result, scope)
    try:
        spec = run.event_spec(state.event_ref, data)
    except ExpressionError as exc:
        raise run.fault(exc, state.name) from None
    timeout = timeouts.event(state.timeouts, run.workflow.timeouts)
    events = await _wait(run, state, (spec,), f"{key}/events", False, timeout)
    if events is None:
        return data, None
    try:
        data = _merge(run, data, spec, events[0], state.event_data_filter)
    except ExpressionError as exc:
        raise run.fault(exc, state.name) from None
    return data, None
