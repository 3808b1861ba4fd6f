"""Parallel state: branches run concurrently, each on the same state input.

Joining (unspecified in 0.8, Tideflow's rule): the outputs of the completed
branches are merged into the state input with the data merge rules, in branch
definition order -- never in completion order. With ``completionType:
atLeast`` the state continues once ``numCompleted`` branches completed and
cancels the others. The first unhandled branch error cancels the other
branches and goes to the state's ``onErrors``; later branch errors are
ignored.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tideflow.errors import ExpressionError, HostError, StoreError
from tideflow.runtime import timeouts
from tideflow.runtime._actions import Scope, run_actions
from tideflow.runtime._context import Run
from tideflow.runtime.effects import Deadline
from tideflow.supervise import scoped
from tideflow.workflow.data_filters import merge
from tideflow.workflow.model import Branch, End, ParallelState, Transition


def _needed(run: Run, state: ParallelState, data: Any) -> int:
    total = len(state.branches)
    if state.completion_type != "atLeast":
        return total
    value = state.num_completed
    try:
        if isinstance(value, str):
            value = run.evaluate(value, data) if not value.strip().isdigit() else int(value)
        number = int(value) if value is not None else total
    except (ExpressionError, TypeError, ValueError) as exc:
        raise run.expression_fault(f"numCompleted {value!r}: {exc}", state.name) from None
    return max(0, min(number, total))


async def _branch(run: Run, state: ParallelState, branch: Branch, data: Any, key: str) -> Any:
    top = run.workflow.timeouts
    scope = Scope(state.name, timeouts.action_exec(state.timeouts, top, branch.timeouts))
    run.step("branch.started", key, state.name, branch=branch.name)

    async def body() -> Any:
        return await run_actions(run, branch.actions, "sequential", data, key, scope)

    limit = timeouts.branch_exec(branch.timeouts, state.timeouts, top)
    if limit is None:
        out = await body()
    else:
        deadline = Deadline(key=f"{key}/timeout:branch", seconds=limit, kind="branch")
        out = await run.effects.within(deadline, body)
    run.step("branch.completed", key, state.name, branch=branch.name)
    return out


async def parallel(
    run: Run, state: ParallelState, data: Any, key: str
) -> tuple[Any, Transition | End | None]:
    """Run the branches and join their outputs."""
    needed = _needed(run, state, data)
    branches = (_branch(run, state, b, data, f"{key}/branch:{b.name}") for b in state.branches)
    done_count = 0
    async with scoped(branches) as tasks:  # branches not needed are cancelled on the way out
        pending = set(tasks)
        while pending and done_count < needed:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                failure = task.exception() if task in done else None
                if isinstance(failure, HostError | StoreError):
                    raise failure  # the host's problem, not the workflow's
                if failure is not None:
                    raise run.fault(failure, state.name)
            done_count += len(done)
    out = data
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is None:
            out = merge(out, task.result())
    return out, None
