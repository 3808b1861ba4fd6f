"""One invocation of an action: a function, an event round trip, or a sub-flow.

Internal. Expression functions (``type: expression``) are evaluated here,
without an effect: they are pure. Everything else goes through ``Effects``.
Async invocations (``invoke: async``) never report errors and have no result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tideflow.errors import (
    ExpressionError,
    FunctionCallError,
    HostError,
    StepTimeout,
    StoreError,
)
from tideflow.isotime import duration_seconds
from tideflow.runtime.effects import EventEmit, EventWait, FunctionCall, SubflowCall
from tideflow.workflow.model import Action, EventRef, FunctionRef, SubFlowRef

if TYPE_CHECKING:
    from tideflow.runtime._actions import Scope
    from tideflow.runtime._context import Run


async def invoke(run: Run, action: Action, data: Any, key: str, scope: Scope, attempt: int) -> Any:
    """Invoke the action once and return its raw result."""
    if action.function_ref is not None:
        return await _function(run, action.function_ref, data, key, scope, attempt, action)
    if action.event_ref is not None:
        return await _event(run, action.event_ref, data, key, scope)
    if action.sub_flow_ref is not None:
        return await _subflow(run, action.sub_flow_ref, data, key, scope)
    raise ExpressionError("action has no functionRef, eventRef or subFlowRef")


async def _function(
    run: Run, ref: FunctionRef, data: Any, key: str, scope: Scope, attempt: int, action: Action
) -> Any:
    try:
        definition = run.workflow.function(ref.ref_name)
    except KeyError:
        raise ExpressionError(f"functionRef {ref.ref_name!r} names no function") from None
    if definition.type == "expression":
        return _expression_function(run, definition.operation, ref, data)
    if ref.arguments:
        arguments = run.arguments(ref.arguments, data)
    elif run.compiled.sonataflow and isinstance(data, dict):
        arguments = data  # SonataFlow: no arguments means the whole state data
    else:
        arguments = {}
    selection = ref.selection_set
    if selection is not None and "${" in selection:
        selection = run.value(selection, data)
    call = FunctionCall(
        key=key,
        function=definition,
        name=definition.name,
        arguments=arguments,
        selection_set=selection,
        invoke=ref.invoke,
        timeout_seconds=scope.action_timeout,
        attempt=attempt,
        state=scope.state,
        action=action.name,
        data=data,
    )
    if ref.invoke == "async":
        await _fire_and_forget(run.effects.call_function(call))
        return None
    try:
        return await run.effects.call_function(call)
    except (FunctionCallError, StepTimeout, HostError, StoreError):
        raise
    except Exception as exc:  # a host that let a raw exception through
        code = getattr(exc, "code", None) or type(exc).__name__
        raise FunctionCallError(str(exc), code=str(code)) from exc


def _expression_function(run: Run, operation: str, ref: FunctionRef, data: Any) -> Any:
    # An expression function sees the state data (after fromStateData); when
    # the call passes arguments they are merged over it as extra fields.
    # SonataFlow evaluates the operation against the state data and never reads
    # the arguments (ExpressionTypeHandler), and so does its dialect.
    scope = data
    if ref.arguments and not run.compiled.sonataflow:
        arguments = run.arguments(ref.arguments, data)  # with the dialect's leniency
        scope = {**data, **arguments} if isinstance(data, dict) else arguments
    return run.evaluate(operation, scope)


async def _fire_and_forget(awaitable: Any) -> None:
    try:
        await awaitable
    except (HostError, StoreError):
        raise
    except Exception:  # async invocations never fail the workflow
        return


async def _event(run: Run, ref: EventRef, data: Any, key: str, scope: Scope) -> Any:
    payload = run.payload(ref.data, data) if ref.data is not None else data
    attrs = {k: run.payload(v, data) for k, v in ref.context_attributes.items()}
    emit_key = f"{key}/trigger"
    event = run.cloud_event(ref.trigger_event_ref, payload, attrs, emit_key)
    await run.effects.emit(EventEmit(key=emit_key, event=event))
    run.step("event.produced", emit_key, scope.state, event=ref.trigger_event_ref)
    if ref.invoke == "async" or ref.result_event_ref is None:  # None: SonataFlow's publish-only
        return None
    spec = run.event_spec(ref.result_event_ref, data)
    timeout = (
        duration_seconds(ref.result_event_timeout)
        if ref.result_event_timeout is not None
        else scope.action_timeout
    )
    wait_key = f"{key}/result"
    run.step("event.waiting", wait_key, scope.state, events=[spec.name])
    wait = EventWait(key=wait_key, events=(spec,), timeout_seconds=timeout, state=scope.state)
    events = await run.effects.wait_for_events(wait)
    if not events:
        run.step("event.timeout", wait_key, scope.state)
        raise StepTimeout(f"no {spec.name!r} event within resultEventTimeout", key=wait_key)
    run.step("event.received", wait_key, scope.state, event=spec.name)
    return run.event_payload(spec, events[0])


async def _subflow(run: Run, ref: SubFlowRef, data: Any, key: str, scope: Scope) -> Any:
    call = SubflowCall(
        key=f"{key}/subflow",
        workflow_id=ref.workflow_id,
        version=ref.version,
        input=data,
        invoke=ref.invoke,
        on_parent_complete=ref.on_parent_complete,
        timeout_seconds=scope.action_timeout,
    )
    if ref.invoke == "async":
        await _fire_and_forget(run.effects.run_subflow(call))
        return None
    return await run.effects.run_subflow(call)
