"""Every error Tideflow raises on purpose.

One base class, :class:`TideflowError`, whose docstring is the default message.
Errors carry structured attributes (a path, an attribute name, a code) so that
callers -- the CLI, the HTTP API -- can say what was wrong and where without
parsing text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class TideflowError(Exception):
    """Tideflow failed."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (type(self).__doc__ or "").strip() or type(self).__name__
        super().__init__(self.message)


PathPart = str | int


def format_path(path: Sequence[PathPart]) -> str:
    """Render ``("states", 2, "transition")`` as ``states[2].transition``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a workflow definition.

    Attributes:
        path: Where in the document, as keys and list indexes.
        message: A sentence that says what is wrong.
        severity: ``"error"`` makes the definition invalid; ``"warning"`` does not.
    """

    path: tuple[PathPart, ...]
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{format_path(self.path)}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"path": format_path(self.path), "message": self.message, "severity": self.severity}


class WorkflowValidationError(TideflowError):
    """The workflow definition is invalid."""

    def __init__(self, problems: Sequence[Problem], source: str | None = None) -> None:
        self.problems = tuple(problems)
        self.source = source
        errors = [p for p in self.problems if p.severity == "error"]
        head = f"{source}: " if source else ""
        if len(errors) == 1:
            text = f"{head}{errors[0]}"
        else:
            text = f"{head}{len(errors)} problems, first: {errors[0] if errors else '-'}"
        super().__init__(text)


class WorkflowLoadError(TideflowError):
    """The workflow document could not be read or parsed."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None) -> None:
        self.source = source
        self.line = line
        super().__init__(message)


class ExpressionError(TideflowError):
    """An expression failed to compile or to evaluate."""

    def __init__(
        self,
        message: str,
        *,
        expression: str | None = None,
        path: Sequence[PathPart] = (),
        state: str | None = None,
    ) -> None:
        self.expression = expression
        self.path = tuple(path)
        self.state = state
        super().__init__(message)


class LimitExceeded(TideflowError):
    """A configured limit was exceeded.

    Attributes:
        limit: Which limit: the setting's name without its unit, e.g.
            ``"expression_time"`` or ``"value_depth"``.
        code: The error code a failed instance, a dead letter or a refused
            request carries: the limit's name upper case plus ``_LIMIT``, e.g.
            ``"EXPRESSION_TIME_LIMIT"``.
        path: Where the offending value is, where known.
    """

    def __init__(self, message: str, *, limit: str, path: Sequence[PathPart] = ()) -> None:
        super().__init__(message)
        self.limit = limit
        self.code = f"{limit.upper()}_LIMIT"
        self.path = tuple(path)


class ExpressionLimitExceeded(LimitExceeded, ExpressionError):
    """An expression ran out of its time or memory budget.

    Also an :class:`ExpressionError`, so everything that handles a failed
    expression (an instance's fault, a transform's failure) handles it.

    Attributes:
        limit: ``"expression_time"`` or ``"expression_memory"``.
        expression: The expression's text.
    """

    def __init__(
        self,
        message: str,
        *,
        limit: str,
        expression: str | None = None,
        path: Sequence[PathPart] = (),
    ) -> None:
        super().__init__(message, limit=limit, path=path)
        self.expression = expression
        self.state: str | None = None


class ValueLimitExceeded(LimitExceeded):
    """A value (an input, workflow data, an event, a definition) is too deep or too large."""


class UnstorableValue(ValueLimitExceeded):
    """A value that cannot be stored as JSON in PostgreSQL: a string with a NUL character
    (``\\u0000``, code ``VALUE_NUL_CHARACTER``), or in a definition a YAML value JSON
    has no form for (``!!binary``, ``!!set``: code ``VALUE_NOT_JSON``).

    Refused where values are checked against the limits, so that no writer
    meets it; not configurable.
    """

    def __init__(
        self, message: str, *, code: str = "VALUE_NUL_CHARACTER", path: Sequence[PathPart] = ()
    ) -> None:
        super().__init__(message, limit="value_characters", path=path)
        self.code = code


class CesqlParseError(ExpressionError):
    """The CloudEvents SQL expression could not be parsed.

    Attributes:
        reason: What is wrong, without the position.
        column: 1-based column in the expression where the problem was found.
    """

    def __init__(self, reason: str, *, expression: str, column: int) -> None:
        self.reason = reason
        self.column = column
        super().__init__(f"parse error at column {column}: {reason}", expression=expression)


class InvalidFilter(TideflowError):
    """The subscription filter is invalid.

    Attributes:
        path: Where in the subscription, e.g. ``("filters", 1, "sql")``.
        reason: What is wrong, without the path.
    """

    def __init__(self, reason: str, *, path: Sequence[PathPart]) -> None:
        self.path = tuple(path)
        self.reason = reason
        super().__init__(f"{format_path(self.path)}: {reason}")


class EventRejected(TideflowError):
    """The CloudEvent was rejected."""

    def __init__(
        self,
        reason: str,
        attribute: str | None = None,
        status: int = 400,
        *,
        index: int | None = None,
    ) -> None:
        self.reason = reason
        self.attribute = attribute
        self.status = status
        self.index = index
        """Position of the rejected event in a batch, if it came in one."""
        super().__init__(reason)


class NotFoundError(TideflowError):
    """Not found."""


class WorkflowNotFound(NotFoundError):
    """No such workflow."""


class InstanceNotFound(NotFoundError):
    """No such workflow instance."""


class BusNotFound(NotFoundError):
    """No such event bus."""


class SubscriptionNotFound(NotFoundError):
    """No such subscription."""


class TimerNotFound(NotFoundError):
    """No such timer."""


class ConnectorNotFound(NotFoundError):
    """No such connector."""


class ConflictError(TideflowError):
    """The request conflicts with the current state."""


class DuplicateEvent(ConflictError):
    """An event with this source and id is already in the bus."""


class AlreadyExists(ConflictError):
    """It already exists."""


class StoreError(TideflowError):
    """The database failed; the original error is in ``__cause__``."""


class EngineUnavailable(StoreError):
    """The workflow engine (a Temporal cluster) did not take a request -- nothing was
    changed; the original error is in ``__cause__``."""


class FunctionCallError(TideflowError):
    """A workflow function call failed.

    Attributes:
        code: The error code a workflow's error definitions match against
            (an HTTP status for REST functions, the exception's ``code`` or
            class name for Python functions).
        retryable: Whether trying again may succeed.
    """

    def __init__(self, message: str, *, code: str | None = None, retryable: bool = True) -> None:
        self.code = code
        self.retryable = retryable
        super().__init__(message)


class SinkRejected(TideflowError):
    """A connector's sink refused an event for good (bad data, a constraint): trying
    again cannot help, so it is dead-lettered at once."""


class MissingExtra(TideflowError):
    """A connector's client library is not installed.

    Attributes:
        extra: The ``pip install tideflow[EXTRA]`` that brings it.
    """

    def __init__(self, message: str, *, extra: str) -> None:
        self.extra = extra
        super().__init__(message)


class EgressDenied(FunctionCallError):
    """The egress policy refused an outbound connection or a local document.

    Its ``code`` is ``EGRESS_DENIED``; retrying cannot help (see :mod:`tideflow.egress`).
    """

    CODE = "EGRESS_DENIED"

    def __init__(self, message: str) -> None:
        super().__init__(message, code=self.CODE, retryable=False)


class StepTimeout(TideflowError):
    """A time limit ran out.

    Raised by hosts (``Effects.within``, a bounded function call); the
    interpreter turns it into the workflow error ``name="timeout"``,
    ``code="TIMEOUT"``, which ``onErrors`` can handle.

    Attributes:
        key: The step key of the deadline or call that ran out.
        kind: ``"workflow"``, ``"state"``, ``"branch"``, ``"action"`` or ``"event"``.
    """

    def __init__(self, message: str = "", *, key: str = "", kind: str = "action") -> None:
        self.key = key
        self.kind = kind
        super().__init__(message or f"{kind} timeout at {key}")


class HostError(TideflowError):
    """The host cannot go on with this run.

    Raised through ``Effects`` when the problem is the host's, not the
    workflow's (a replayed run diverged from its journal, storage failed): the
    interpreter lets it propagate instead of failing the instance.
    """


class NondeterminismError(HostError):
    """A replayed run asked for an effect its journal does not hold."""


class ConfigurationError(TideflowError):
    """The configuration is invalid."""


class InvalidArgument(TideflowError):
    """An argument is invalid.

    Attributes:
        argument: Which argument or field, e.g. ``name`` or ``retention.maxAge``.
    """

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        self.argument = argument
        super().__init__(message)


class InvalidParameter(InvalidArgument):
    """A query parameter's value is out of its range (422 naming the parameter)."""


class UnknownParameter(InvalidParameter):
    """A request names a query parameter its route does not take (422 naming it)."""


class InvalidSchedule(InvalidArgument):
    """The schedule (cron expression or ISO 8601 repeating interval) is invalid."""


class EventNotFound(NotFoundError):
    """No event at that offset."""


class EventsExhausted(TideflowError):
    """An instance waits for an event that no source can deliver any more.

    The local host (``tideflow run --events``) raises it when a wait without
    a timeout matches none of the events left in the file.
    """


class AuthenticationRequired(TideflowError):
    """A valid API token is required: send it as ``Authorization: Bearer <token>``."""


class PermissionDenied(TideflowError):
    """The request is not allowed.

    Attributes:
        scope: The scope the request needs, when a token lacks it.
    """

    def __init__(self, message: str | None = None, *, scope: str | None = None) -> None:
        self.scope = scope
        super().__init__(message)


class MisdirectedRequest(TideflowError):
    """The request's ``Host`` is not a name this server answers to."""


class UnsupportedMediaType(TideflowError):
    """The request body's content type is missing or not accepted here."""


class RateLimited(TideflowError):
    """Too many requests from this token: wait before the next.

    Attributes:
        retry_after: Seconds until a request would be allowed.
    """

    def __init__(self, message: str | None = None, *, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class IdentityProviderUnavailable(TideflowError):
    """The OIDC issuer's keys cannot be fetched, so a JWT cannot be checked now."""


class TokenNotFound(NotFoundError):
    """No such API token."""


class ProtectedResource(ConflictError):
    """The server itself uses it, so it cannot be deleted."""


class SecretUnavailable(TideflowError):
    """A secret is not available: not set, or not granted where it is used.

    Attributes:
        name: The secret's name (never its value).
    """

    def __init__(self, message: str, *, name: str) -> None:
        self.name = name
        super().__init__(message)


class SecretGrantNotFound(NotFoundError):
    """No secret grant has that pattern."""
