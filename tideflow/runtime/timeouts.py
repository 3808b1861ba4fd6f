"""Which timeout applies where, in seconds (pure).

Inheritance (Serverless Workflow 0.8, §Workflow Timeouts): a branch's value
wins over its state's, a state's over the workflow's top-level ``timeouts``;
absent everywhere means unlimited (``None``).

How each timeout is enforced without the interpreter racing timers:

* ``workflowExecTimeout`` with ``interrupt: true`` (the schema's default,
  which Tideflow follows) -- the whole run is awaited inside
  ``Effects.within(Deadline(kind="workflow"))``; with ``interrupt: false``
  the interpreter compares ``Effects.now()`` with the deadline before each
  transition, so the running state always finishes.
* ``stateExecTimeout.total`` (or the string form) -- the state's body runs
  inside ``Effects.within(Deadline(kind="state"))``.
* ``stateExecTimeout.single`` -- bounds each single action attempt of the
  state (together with ``actionExecTimeout``: the smaller one wins), so a
  retried action gets ``single`` per try and ``total`` overall.
* ``branchExecTimeout`` -- each parallel branch runs inside
  ``Effects.within(Deadline(kind="branch"))``.
* ``actionExecTimeout`` -- passed to the host as ``timeout_seconds`` of the
  function or sub-flow call; also the default ``resultEventTimeout``.
* ``eventTimeout`` -- ``timeout_seconds`` of the state's ``EventWait``.

When a limit runs out the host raises :class:`tideflow.errors.StepTimeout`;
the interpreter turns it into the error ``name="timeout"``, ``code="TIMEOUT"``
which ``onErrors`` may handle (a workflow error definition with code
``TIMEOUT`` matches it). Event waits that time out are not errors: the event
state and the callback state move on without the event, the event-based
switch takes ``defaultCondition``; only ``resultEventTimeout`` of an
``eventRef`` action is an error (``timeout``).
"""

from __future__ import annotations

from tideflow.isotime import duration_seconds
from tideflow.workflow.model import Timeouts


def seconds(text: str | None) -> float | None:
    """An ISO 8601 duration in seconds, ``None`` for none."""
    return None if text is None else duration_seconds(text)


def _pick(*values: str | None) -> float | None:
    for value in values:
        if value is not None:
            return duration_seconds(value)
    return None


def state_total(state: Timeouts, top: Timeouts) -> float | None:
    """stateExecTimeout (total) of a state."""
    found = state.state_exec_timeout or top.state_exec_timeout
    return None if found is None else duration_seconds(found.total)


def state_single(state: Timeouts, top: Timeouts) -> float | None:
    """stateExecTimeout.single of a state."""
    found = state.state_exec_timeout or top.state_exec_timeout
    return None if found is None or found.single is None else duration_seconds(found.single)


def action_exec(state: Timeouts, top: Timeouts, branch: Timeouts | None = None) -> float | None:
    """actionExecTimeout for an action of this branch/state, bounded by ``single``."""
    own = _pick(
        branch.action_exec_timeout if branch is not None else None,
        state.action_exec_timeout,
        top.action_exec_timeout,
    )
    single = state_single(state, top)
    if own is None:
        return single
    return own if single is None else min(own, single)


def branch_exec(branch: Timeouts, state: Timeouts, top: Timeouts) -> float | None:
    """branchExecTimeout of a parallel branch."""
    return _pick(branch.branch_exec_timeout, state.branch_exec_timeout, top.branch_exec_timeout)


def event(state: Timeouts, top: Timeouts) -> float | None:
    """eventTimeout of an event state, event-based switch or callback state."""
    return _pick(state.event_timeout, top.event_timeout)
