"""What a run of the interpreter returns: an outcome value, never an exception.

* :class:`Completed` -- the instance ended normally with an output.
* :class:`Failed` -- an error nobody handled; carries a :class:`WorkflowError`.
* :class:`Terminated` -- ``end.terminate`` or an expired ``workflowExecTimeout``.
* :class:`ContinuedAs` -- ``end.continueAs``: the host starts a new run.

Every outcome carries the run's timeline: :class:`Step` values in the order the
interpreter took them. Steps have no timestamps (the interpreter reads no
clock); a host that wants times stamps them in the ``on_step`` callback.
Every outcome's ``status`` is the :class:`InstanceStatus` it leaves the
instance in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tideflow import limits
from tideflow.errors import (
    FunctionCallError,
    LimitExceeded,
    StepTimeout,
    TideflowError,
    ValueLimitExceeded,
)
from tideflow.runtime.status import InstanceStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowError:
    """A workflow-level error, as ``onErrors`` matches it and a failed run reports it.

    Attributes:
        name: Error name: the matching workflow error definition's name, or a
            built-in name (``timeout``, ``expression``, ``validation``, ``error``).
        code: Error code (HTTP status for HTTP functions, ``TIMEOUT``, ...).
        message: What happened.
        state: Name of the state where it happened (for 1.0: the task's JSON Pointer).
        details: DSL 1.0 only: the error as Problem Details (``type``,
            ``status``, ``title``, ``detail``, ``instance``).
    """

    name: str
    code: str | None = None
    message: str = ""
    state: str | None = None
    details: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The error as a JSON object (``details`` only when there are some)."""
        out: dict[str, Any] = {
            "name": self.name,
            "code": self.code,
            "message": self.message,
            "state": self.state,
        }
        if self.details is not None:
            out["details"] = self.details
        return out


@dataclass(frozen=True, slots=True)
class Step:
    """One entry of the timeline (positional: built on the hot path).

    Attributes:
        kind: ``state.entered``, ``state.left``, ``action.started``,
            ``action.completed``, ``action.failed``, ``action.skipped``,
            ``retry``, ``event.produced``, ``event.waiting``,
            ``event.received``, ``event.timeout``, ``error``,
            ``error.handled``, ``compensation``, ``switch.matched``,
            ``switch.default``, ``branch.started``, ``branch.completed``,
            ``input.invalid``, ``output.invalid``, ``keep_active``, ``workflow.timeout``,
            ``workflow.failed``.
        key: The step key.
        state: The state's name.
        detail: Small JSON-able extra facts (action name, attempt, delay, error).
    """

    kind: str
    key: str
    state: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The step as a JSON object."""
        return {"kind": self.kind, "key": self.key, "state": self.state, **self.detail}


@dataclass(frozen=True, slots=True, kw_only=True)
class Completed:
    """The instance completed."""

    output: Any
    timeline: tuple[Step, ...] = ()

    @property
    def status(self) -> InstanceStatus:
        """``completed``."""
        return InstanceStatus.COMPLETED


@dataclass(frozen=True, slots=True, kw_only=True)
class Failed:
    """The instance failed with an unhandled error."""

    error: WorkflowError
    data: Any = None
    timeline: tuple[Step, ...] = ()

    @property
    def status(self) -> InstanceStatus:
        """``failed``."""
        return InstanceStatus.FAILED


@dataclass(frozen=True, slots=True, kw_only=True)
class Terminated:
    """The instance was terminated (``end.terminate`` or workflow timeout)."""

    output: Any
    reason: str = "terminate"
    timeline: tuple[Step, ...] = ()

    @property
    def status(self) -> InstanceStatus:
        """``completed``, or ``failed`` when the workflow timed out."""
        return InstanceStatus.FAILED if self.reason == "timeout" else InstanceStatus.COMPLETED


@dataclass(frozen=True, slots=True, kw_only=True)
class ContinuedAs:
    """The instance ended with ``continueAs``: the host starts a new run.

    Attributes:
        workflow_id: Workflow of the new run.
        version: Its version, ``None`` for the latest.
        input: Input of the new run.
        workflow_exec_timeout: ISO duration overriding the target's, or ``None``.
        output: Output of this run (its last state's output).
    """

    workflow_id: str
    version: str | None
    input: Any
    workflow_exec_timeout: Any = None
    output: Any = None
    timeline: tuple[Step, ...] = ()

    @property
    def status(self) -> InstanceStatus:
        """``running``: the instance goes on with its next run."""
        return InstanceStatus.RUNNING


RunResult = Completed | Failed | Terminated | ContinuedAs


class Fault(Exception):
    """Internal: a workflow error travelling up to the state's ``onErrors``."""

    def __init__(self, error: WorkflowError, *, retryable: bool = True) -> None:
        self.error = error
        self.retryable = retryable
        super().__init__(error.message)


def within_limits(result: RunResult) -> RunResult:
    """``result``, or a :class:`Failed` one when its output is beyond the value limits
    (no writer must meet it; the failure carries the limit's code)."""
    if isinstance(result, Completed | Terminated | ContinuedAs):
        output = result.input if isinstance(result, ContinuedAs) else result.output
        try:
            limits.check_value(output, "the workflow's output")
        except ValueLimitExceeded as exc:
            error = WorkflowError(name="limit", code=exc.code, message=exc.message)
            return Failed(error=error, timeline=result.timeline)
    return result


def fault_from_exception(exc: BaseException, state: str | None) -> Fault:
    """Turn a host or expression exception into a :class:`Fault`."""
    if isinstance(exc, Fault):
        return exc
    if isinstance(exc, StepTimeout):
        err = WorkflowError(name="timeout", code="TIMEOUT", message=str(exc), state=state)
        return Fault(err)
    if isinstance(exc, LimitExceeded):  # named by its code: EXPRESSION_TIME_LIMIT, ...
        err = WorkflowError(name="limit", code=exc.code, message=str(exc), state=state)
        return Fault(err, retryable=False)
    if isinstance(exc, FunctionCallError):
        code = None if exc.code is None else str(exc.code)
        err = WorkflowError(name=code or "error", code=code, message=str(exc), state=state)
        return Fault(err, retryable=exc.retryable)
    name = "expression" if type(exc).__name__ == "ExpressionError" else "error"
    code = "EXPRESSION" if name == "expression" else error_code(exc)
    message = str(exc) if isinstance(exc, TideflowError) else f"{type(exc).__name__}: {exc}"
    return Fault(WorkflowError(name=name, code=code, message=message, state=state), retryable=False)


INTERNAL_ERROR = "InternalError"
"""The code of a failure no rule of Tideflow's foresaw (a bug): never a Python class name."""


def error_code(exc: BaseException) -> str:
    """A failure's code: a Tideflow error's own (``NondeterminismError``, a limit's code),
    :data:`INTERNAL_ERROR` for any other exception."""
    if isinstance(exc, LimitExceeded):
        return exc.code
    return type(exc).__name__ if isinstance(exc, TideflowError) else INTERNAL_ERROR
