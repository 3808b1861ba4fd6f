"""Operation, inject, sleep and switch states."""

from __future__ import annotations

from typing import Any

from tideflow.errors import ExpressionError
from tideflow.isotime import duration_seconds
from tideflow.runtime import timeouts
from tideflow.runtime._actions import Scope, run_actions
from tideflow.runtime._context import Run, fast_thaw
from tideflow.runtime._states.events import event_switch
from tideflow.runtime.effects import SleepRequest
from tideflow.runtime.result import Fault, WorkflowError
from tideflow.workflow.data_filters import merge
from tideflow.workflow.model import (
    End,
    InjectState,
    OperationState,
    SleepState,
    State,
    SwitchState,
    Transition,
)


def scope(run: Run, state: State) -> Scope:
    """The action scope of a state (its actionExecTimeout)."""
    top = run.workflow.timeouts
    own = state.timeouts
    if own is top and top.action_exec_timeout is None and top.state_exec_timeout is None:
        return Scope(state.name)
    return Scope(state.name, timeouts.action_exec(own, top))


async def operation(
    run: Run, state: OperationState, data: Any, key: str
) -> tuple[Any, Transition | End | None]:
    """Run the actions, sequentially or in parallel."""
    out = await run_actions(run, state.actions, state.action_mode, data, key, scope(run, state))
    return out, None


async def inject(
    run: Run, state: InjectState, data: Any, key: str
) -> tuple[Any, Transition | End | None]:
    """Merge the state's fixed data into its input."""
    return merge(data, fast_thaw(state.data)), None


async def sleep(
    run: Run, state: SleepState, data: Any, key: str
) -> tuple[Any, Transition | End | None]:
    """Wait for the duration."""
    seconds = duration_seconds(state.duration)
    await run.effects.sleep(SleepRequest(key=f"{key}/sleep", seconds=seconds, reason="state"))
    return data, None


async def switch(
    run: Run, state: SwitchState, data: Any, key: str
) -> tuple[Any, Transition | End | None]:
    """Take the first true data condition (or the first event), else the default."""
    if state.is_event_based:
        return await event_switch(run, state, data, key)
    for index, cond in enumerate(state.data_conditions):
        try:
            hit = run.condition(cond.condition, data)
        except ExpressionError as exc:
            raise run.fault(exc, state.name) from None
        if hit:
            run.step("switch.matched", key, state.name, condition=cond.name or index)
            return data, cond.transition or cond.end or End()
    default = state.default_condition
    if default is None:  # SonataFlow: an exclusive split with no way out fails the instance
        raise Fault(
            WorkflowError(
                name="NoMatchingCondition",
                code="NoMatchingCondition",
                message="no dataCondition matched and the switch has no defaultCondition",
                state=state.name,
            ),
            retryable=False,
        )
    run.step("switch.default", key, state.name)
    return data, default.transition or default.end or End()
