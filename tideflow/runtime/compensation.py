"""Compensation: undo completed states in reverse completion order.

Triggered only by ``transition.compensate`` or ``end.compensate``. Every
successfully completed state that has ``compensatedBy`` is remembered (a
stack, in completion order); compensating pops them newest first and runs
each one's compensation state -- and the compensation states it transitions
to -- sequentially. The current state data goes into the first compensation
state and each output feeds the next. A compensation state's ``end`` only ends
its chain. An unhandled error in a compensation state fails the instance
(compensation states may have ``onErrors``). A state compensated once is not
compensated again by a later trigger.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tideflow.runtime._context import Run
from tideflow.workflow.model import AnyState, End, Transition

StateStep = Callable[[AnyState, Any, str], Awaitable[tuple[Any, Transition | End | None]]]
"""``(state, data, key) -> (output, exit)``: runs one state with filters and onErrors."""

MAX_CHAIN = 10_000


async def compensate(run: Run, data: Any, run_state: StateStep) -> Any:
    """Run every pending compensation, newest first; return the resulting data."""
    workflow = run.workflow
    while run.compensable:
        name = run.compensable.pop()
        target: str | None = workflow.state(name).compensated_by
        run.step("compensation", f"compensate:{name}", name, by=target)
        hops = 0
        while target is not None and hops < MAX_CHAIN:
            state = workflow.state(target)
            key = run.enter(f"compensate:{state.name}")
            data, exit_ = await run_state(state, data, key)
            target = exit_.next_state if isinstance(exit_, Transition) else None
            hops += 1
    return data
