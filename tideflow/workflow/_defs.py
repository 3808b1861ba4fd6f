"""Top-level definitions of a workflow: functions, events, retries, errors, auth, start.

Part of the model (see :mod:`tideflow.workflow.model`, which re-exports them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

EMPTY: Mapping[str, Any] = MappingProxyType({})
"""An empty read-only mapping, the default of every mapping field."""

FunctionType = Literal["rest", "asyncapi", "rpc", "graphql", "odata", "expression", "custom"]
EventKind = Literal["consumed", "produced"]
Invoke = Literal["sync", "async"]
ActionMode = Literal["sequential", "parallel"]

_DAYS_AFTER_T = re.compile(r"^P(T)(\d+(?:[.,]\d+)?)D(.*)$")


def normalize_duration(text: str) -> str:
    """Repair the common slip ``PT30D`` (days after ``T``) into ``P30D``; else return ``text``.

    The spec's own ``order`` example writes ``PT30D``; strict ISO 8601 puts
    days before the ``T``. Weeks after ``T`` (``PT2W``) are not repaired.
    """
    match = _DAYS_AFTER_T.match(text.strip())
    if match is None:
        return text
    rest = match.group(3)
    return f"P{match.group(2)}D" + (f"T{rest}" if rest else "")


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionDef:
    """A function the workflow may call."""

    name: str
    """Unique function name."""
    operation: str
    """What to call; its format depends on ``type``."""
    type: FunctionType = "rest"
    """The kind of function."""
    auth_ref: str | None = None
    """Name of the auth definition used to fetch the operation's resource."""
    metadata: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    """Free-form metadata."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Correlation:
    """A correlation rule of an event definition."""

    context_attribute_name: str
    """Name of the CloudEvent extension attribute."""
    context_attribute_value: str | None = None
    """Required value; when absent, correlated events must share the first event's value."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EventDef:
    """A CloudEvent the workflow consumes or produces."""

    name: str
    """Unique event name."""
    type: str
    """CloudEvent ``type``."""
    source: str | None = None
    """CloudEvent ``source`` (required for consumed events)."""
    kind: EventKind = "consumed"
    """Consumed or produced."""
    correlation: tuple[Correlation, ...] = ()
    """Correlation rules."""
    data_only: bool = True
    """When true, filters see only the payload; otherwise the whole event."""
    metadata: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    """Free-form metadata."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryDef:
    """A retry strategy."""

    name: str
    """Unique retry name."""
    max_attempts: int | str
    """Maximum attempts (a number or a numeric string)."""
    delay: str | None = None
    """ISO 8601 duration between attempts."""
    max_delay: str | None = None
    """ISO 8601 cap on the delay."""
    increment: str | None = None
    """ISO 8601 duration added to the delay after each attempt."""
    multiplier: float | str | None = None
    """Factor applied to the delay after each attempt."""
    jitter: float | str | None = None
    """A fraction 0..1 of the delay, or an ISO 8601 duration."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorDef:
    """A domain error the workflow handles."""

    name: str
    """Unique error name."""
    code: str | None = None
    """Error code a technical failure is matched against (e.g. an HTTP status)."""
    description: str | None = None
    """Human description."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthDef:
    """Authentication information used to fetch function resources."""

    name: str
    """Unique auth name."""
    scheme: Literal["basic", "bearer", "oauth2"] = "basic"
    """The auth scheme."""
    properties: str | Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    """Scheme properties, or an expression naming a secret that holds them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Cron:
    """A cron schedule."""

    expression: str
    """Cron expression (5-field Unix or 6-field Quartz)."""
    valid_until: str | None = None
    """RFC 3339 time after which the schedule stops."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """When scheduled instances start."""

    interval: str | None = None
    """ISO 8601 repeating interval, e.g. ``R/PT2H``."""
    cron: Cron | None = None
    """Cron schedule."""
    timezone: str | None = None
    """IANA time zone; UTC when absent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Start:
    """Where the workflow starts."""

    state_name: str
    """Name of the start state."""
    schedule: Schedule | None = None
    """Schedule of automatic starts."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DataInputSchema:
    """JSON schema of the workflow input."""

    schema: str | Mapping[str, Any]
    """A URI of the schema, or the schema itself (deep-frozen)."""
    fail_on_validation_errors: bool = True
    """Reject invalid input (true) or only report it."""
