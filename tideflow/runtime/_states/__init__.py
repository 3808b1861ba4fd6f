"""State bodies, one module per family; :func:`run_body` runs the body of any state.

Internal. A runner takes the run, the state, its data (after the input
filter) and its step key, and returns ``(data, exit)``: the state data before
the output filter and the :class:`~tideflow.workflow.model.Transition` or
:class:`~tideflow.workflow.model.End` to take, or ``None`` for the state's own.
"""

from __future__ import annotations

from typing import Any, assert_never

from tideflow.runtime._context import Run
from tideflow.runtime._states import basic, events, foreach, parallel
from tideflow.workflow.model import (
    AnyState,
    CallbackState,
    End,
    EventState,
    ForEachState,
    InjectState,
    OperationState,
    ParallelState,
    SleepState,
    SwitchState,
    Transition,
)

Exit = Transition | End | None


async def run_body(run: Run, state: AnyState, data: Any, key: str) -> tuple[Any, Exit]:
    """Run the body of ``state`` with its family's runner."""
    match state:
        case OperationState():
            return await basic.operation(run, state, data, key)
        case InjectState():
            return await basic.inject(run, state, data, key)
        case SwitchState():
            return await basic.switch(run, state, data, key)
        case SleepState():
            return await basic.sleep(run, state, data, key)
        case EventState():
            return await events.event(run, state, data, key)
        case CallbackState():
            return await events.callback(run, state, data, key)
        case ParallelState():
            return await parallel.parallel(run, state, data, key)
        case ForEachState():
            return await foreach.foreach(run, state, data, key)
        case _:
            assert_never(state)
