"""What every host does the same way: idempotency keys, bounding, auth, secrets, produced events,
the pace of a run's turns.

The local host (:mod:`tideflow.runtime.hosts.local`) and the durable host
(:mod:`tideflow.runtime.hosts.durable`) -- and any later host -- use these,
so a workflow sees the same keys, timeouts, credentials and events whichever
host runs it.

Idempotency keys: a function call's key names the **logical call** -- the
same action of the same run of the same instance -- so every attempt and
every replay of it carries the same key (:func:`idempotency_key`). The rule
is documented once, in ``docs/runtime.md`` ("Idempotency keys and
at-least-once calls").
"""

from __future__ import annotations

import asyncio
import math
import re
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

from tideflow.errors import FunctionCallError, StepTimeout
from tideflow.isotime import format_timestamp
from tideflow.runtime.effects import FunctionCall, WorkflowInterpreter
from tideflow.runtime.functions import AuthDefinition
from tideflow.runtime.result import ContinuedAs, Failed, RunResult, Step
from tideflow.secrets import NO_REDACTION, Redactor, SecretSource
from tideflow.workflow.expressions import evaluate_value
from tideflow.workflow.model import Workflow, thaw

__all__ = [
    "TURN_SECONDS",
    "ClockPace",
    "DeclaresSecrets",
    "bounded",
    "call_arguments",
    "complete_event",
    "idempotency_key",
    "redact_result",
    "redacted_steps",
    "redactor_of",
    "resolve_auth",
    "workflow_secrets",
]

T = TypeVar("T")
_ATTEMPT = re.compile(r"/attempt:\d+$")

TURN_SECONDS = 0.002
"""How long a run's work that awaits no effect holds the event loop before it passes a turn
(issue 11: ``/healthz`` and every other instance wait at most about this long per busy run)."""


class ClockPace:
    """A run's :class:`~tideflow.runtime.effects.Pace` by elapsed time on the host's clock.

    A turn is due once ``seconds`` have passed since the run last had the
    event loop back from one -- or after ``checks`` checks, so that a clock
    that does not move (a test's manual clock) still lets others run. It
    stays due until the run has the loop back from that turn, so every
    parallel iteration that asks within the same pass of the loop waits for
    the next one (a group of iterations cannot spend the slice once each; one
    coming back from an earlier turn does not end a turn begun since). An
    effect the run awaits gives the loop its turn too: the durable host calls
    :meth:`rested` after each journal commit, so a slice starts again at the next check
    (a host that does not -- the local one -- may pass the loop once more at the
    first check after an effect).

    Args:
        monotonic: The host clock's :meth:`~tideflow.clock.Clock.monotonic`.
        seconds: The slice.
        checks: The most checks between two turns.
    """

    __slots__ = (
        "_checks", "_due", "_left", "_monotonic", "_rested", "_seconds", "_since", "_turn",
    )  # fmt: skip

    def __init__(
        self, monotonic: Callable[[], float], seconds: float = TURN_SECONDS, checks: int = 256
    ) -> None:
        self._monotonic = monotonic
        self._seconds = seconds
        self._checks = self._left = checks
        self._since: float | None = monotonic()
        self._due = False
        self._turn = 0
        self._rested = False

    def due(self) -> int:
        if self._rested:  # the first check since the run rested: not due, and its slice
            self._rested = False  # is timed from the next one (a run that checks once
            self._since = None  # between effects never reads the clock)
            return 0
        if not self._due:
            self._left -= 1
            if self._since is None:
                self._since = self._monotonic()
            elif self._left <= 0 or self._monotonic() - self._since >= self._seconds:
                self._due = True
                self._turn += 1
        return self._turn if self._due else 0

    def resumed(self, turn: int) -> None:
        if self._due and turn == self._turn:  # the first back from this turn: a new slice
            self._due = False
            self._left = self._checks
            self._since = self._monotonic()

    def rested(self) -> None:
        """The run has the loop back from an effect it awaited (a journal commit): a new
        slice, whatever turn was due, timed from the run's second check from now (not
        from here: a garbage collection or the process being preempted in between is not
        the run's work; and a run that checks once between two effects, as a sequence of
        operation states does, never reads the clock, whose thread CPU time is a system
        call). Without it the first check after each commit (which takes longer than a
        slice) found a turn due, and the extra pass of the loop made the run's next write
        miss the group commit the other instances' writes were in: a third more commits in
        ``seq3`` (``bench/RESULTS.md``, issue 10); a collection of the oldest generation
        (tens of ms) at that point kept an instance a commit behind for good."""
        self._due = False
        self._left = self._checks
        self._rested = True


def idempotency_key(instance_id: str, step_key: str, run_no: int = 1) -> str:
    """The key of a function call: the same for every attempt and replay (see the module docs).

    Args:
        instance_id: The instance.
        step_key: The call's step key (``.../action:<i>/attempt:<n>``).
        run_no: The run (``continueAs`` starts run 2, 3, ... of the same instance).
    """
    call = _ATTEMPT.sub("", step_key)
    return f"{instance_id}/{call}" if run_no == 1 else f"{instance_id}/run:{run_no}/{call}"


async def bounded(
    awaitable: Awaitable[T], seconds: float | None, key: str, kind: str = "action"
) -> T:
    """Await ``awaitable``; raise :class:`StepTimeout` when ``seconds`` pass first.

    ``None`` and ``math.inf`` mean no bound. A :class:`TimeoutError` raised
    by ``awaitable`` itself (not by this bound) propagates unchanged.
    """
    if seconds is None or math.isinf(seconds):
        return await awaitable
    limit = asyncio.timeout(max(0.0, seconds))
    try:
        async with limit:
            return await awaitable
    except TimeoutError:
        if limit.expired():
            raise StepTimeout(key=key, kind=kind) from None
        raise


def resolve_auth(
    workflow: Workflow, name: str | None, variables: Mapping[str, Any]
) -> AuthDefinition | None:
    """The workflow's auth definition ``name``, its properties evaluated.

    Args:
        workflow: The definition whose ``auth`` list is searched.
        name: The function's ``authRef`` (``None``: no auth).
        variables: ``$CONST`` and ``$SECRETS`` for the property expressions.

    Raises:
        FunctionCallError: No auth definition has that name (``InvalidAuth``).
    """
    if name is None:
        return None
    found = next((a for a in workflow.auth if a.name == name), None)
    if found is None:
        raise FunctionCallError(
            f"authRef {name!r} names no auth definition", code="InvalidAuth", retryable=False
        )
    if "SECRETS" in variables:  # SonataFlow's name for them too
        variables = {**variables, "SECRET": variables["SECRETS"]}
    props = evaluate_value(thaw(found.properties), {}, variables, workflow.expression_lang)
    return AuthDefinition(name=found.name, scheme=found.scheme, properties=props)


class DeclaresSecrets(Protocol):
    """A workflow model of any DSL version: it names the secrets it uses."""

    @property
    def secrets(self) -> tuple[str, ...]:
        """The names of the secrets the workflow uses."""


def workflow_secrets(
    workflow: DeclaresSecrets,
    given: Mapping[str, Any] | None = None,
    source: SecretSource | None = None,
) -> Mapping[str, Any]:
    """``$SECRETS`` of a workflow run by its operator (``tideflow run``): ``given``,
    else the values of the secrets it declares that ``source`` holds (every secret is
    granted there; a server gives only granted ones, :mod:`tideflow.secrets.access`)."""
    if given is not None:
        return given
    return (source or SecretSource()).values(workflow.secrets)


_REDACTORS: weakref.WeakKeyDictionary[WorkflowInterpreter, Redactor] = weakref.WeakKeyDictionary()


def redactor_of(interpreter: WorkflowInterpreter) -> Redactor:
    """What hides the interpreter's secrets in everything its runs let out.

    Every host passes outputs, errors, state data, timeline details, produced
    events and lifecycle details through it (the rule: ``docs/security.md``,
    "Secrets"). Built once per interpreter, i.e. once per workflow version.
    """
    if not interpreter.secrets:
        return NO_REDACTION
    found = _REDACTORS.get(interpreter)
    if found is None:
        found = _REDACTORS[interpreter] = Redactor(interpreter.secrets)
    return found


def redact_result(result: RunResult, redactor: Redactor) -> RunResult:
    """``result`` with the secrets hidden in its output, error, data, input and timeline."""
    if not redactor:
        return result
    timeline = tuple(replace(s, detail=redactor.value(s.detail)) for s in result.timeline)
    if isinstance(result, Failed):
        error = replace(
            result.error,
            message=redactor.text(result.error.message),
            details=redactor.value(result.error.details),
        )
        return replace(result, error=error, data=redactor.value(result.data), timeline=timeline)
    if isinstance(result, ContinuedAs):
        return replace(result, input=redactor.value(result.input), timeline=timeline)
    return replace(result, output=redactor.value(result.output), timeline=timeline)


def redacted_steps(
    on_step: Callable[[Step], None] | None, redactor: Redactor
) -> Callable[[Step], None] | None:
    """``on_step`` given each step with the secrets hidden in its detail."""
    if on_step is None or not redactor:
        return on_step
    tell = on_step

    def redacted(step: Step) -> None:
        tell(replace(step, detail=redactor.value(step.detail)))

    return redacted


def call_arguments(call: FunctionCall, *, sonataflow: bool) -> Mapping[str, Any]:
    """A call's arguments; SonataFlow's dialect passes the state data when there are none."""
    if sonataflow and not call.arguments:
        return call.data if isinstance(call.data, Mapping) else {}
    return call.arguments


def complete_event(event: Mapping[str, Any], workflow: Workflow, now: datetime) -> dict[str, Any]:
    """A produced event with ``source`` (``/tideflow/<workflow id>``) and ``time`` when missing."""
    out = dict(event)
    out.setdefault("source", f"/tideflow/{workflow.identifier}")
    out.setdefault("time", format_timestamp(now))
    return out
