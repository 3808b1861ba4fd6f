"""Subscriptions: what a subscriber asked for, validated (pure: no I/O).

A subscription reads one bus from its committed offset, keeps the events its
``filters`` match (ANDed, see :mod:`tideflow.triggers.filters`), applies an
optional jq ``transform`` and delivers the result to its ``sink`` (an HTTP
URL) in CloudEvents binary mode, with the retries, back-off and dead-letter
bus of its ``delivery`` policy.

The transform sees the whole event in structured JSON form (attributes and
``data``) as ``.``; its first output becomes the delivered event's **data**
(the attributes stay; ``datacontenttype`` becomes ``application/json``). A
transform with no output drops the event (it counts as filtered out); one
that fails dead-letters the event.

``headers`` are sent with every delivery. A credential among them (a header
whose name says so: ``authorization``, ``cookie``, anything with ``auth``,
``token``, ``key``, ``secret`` or ``password``) must be a secret reference,
``{"secret": NAME}`` (:mod:`tideflow.secrets.refs`), and a sink URL may not
carry a user or password: the database and the API then hold only names. A
reference is resolved when the subscription starts delivering, and only if
the secret is granted to ``sink:<the sink's host>`` (:mod:`tideflow.secrets.grants`).

``from`` says where a new subscription starts: ``latest`` (default: only
events appended after its creation), ``earliest`` (everything the bus still
keeps) or an offset ``n`` (delivery starts at offset ``n``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from tideflow.errors import ExpressionError, InvalidArgument
from tideflow.eventstore.store import check_bus_name, format_duration
from tideflow.isotime import format_timestamp, parse_duration
from tideflow.secrets import is_secret_ref, ref_names
from tideflow.triggers.filters import CompiledFilters, compile_filters

DEAD_LETTER_SUFFIX: Final = ".deadletter"
"""The default dead-letter bus of a subscription of bus ``b`` is ``b.deadletter``."""

_FIELDS: Final = frozenset(
    {"bus", "filters", "sink", "headers", "transform", "delivery", "from", "id"}
)
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
_CREDENTIAL_HEADER: Final = re.compile(r"authorization|cookie|auth|token|key|secret|passw", re.I)
_NOT_SENDABLE: Final = frozenset(
    {"content-type", "content-length", "host", "transfer-encoding", "connection"}
)
_DELIVERY_FIELDS: Final = frozenset(
    {
        "retry",
        "backoffPolicy",
        "backoffDelay",
        "maxDelay",
        "deadLetterBus",
        "ordered",
        "maxInFlight",
        "timeout",
    }
)
MAX_IN_FLIGHT_LIMIT: Final = 1000
MAX_RETRY: Final = 100


class BackoffPolicy(StrEnum):
    """How the delay between attempts grows."""

    LINEAR = "linear"
    EXPONENTIAL = "exponential"


class SubscriptionState(StrEnum):
    """Whether the dispatcher delivers to it."""

    ACTIVE = "active"
    PAUSED = "paused"


class SubscriptionKind(StrEnum):
    """Who consumes the events."""

    HTTP = "http"
    """Delivered to an HTTP sink."""
    INTERNAL = "internal"
    """Handed to an in-process consumer registered by code."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryPolicy:
    """How events are delivered to the sink."""

    retry: int = 3
    """Retries after the first attempt (429, 5xx, timeouts, connection errors)."""
    backoff_policy: BackoffPolicy = BackoffPolicy.EXPONENTIAL
    """``linear``: ``delay * n``; ``exponential``: ``delay * 2**(n-1)`` before retry ``n``."""
    backoff_delay: timedelta = timedelta(seconds=1)
    """The base delay."""
    max_delay: timedelta = timedelta(minutes=1)
    """No retry waits longer than this."""
    dead_letter_bus: str | None = None
    """Where undeliverable events go; ``None`` means ``<bus>.deadletter``."""
    ordered: bool = False
    """Deliver one event at a time in offset order (a retry holds the ones behind it)."""
    max_in_flight: int = 64
    """Most deliveries in progress at once when not ordered."""
    timeout: timedelta = timedelta(seconds=10)
    """Time allowed for one HTTP attempt."""

    def backoff(self, failures: int) -> timedelta:
        """The wait before the next attempt after ``failures`` failed ones (1 or more)."""
        n = max(1, failures)
        base = self.backoff_delay.total_seconds()
        if self.backoff_policy is BackoffPolicy.LINEAR:
            seconds = base * n
        else:
            seconds = base * 2.0 ** min(n - 1, 60)
        return timedelta(seconds=min(seconds, self.max_delay.total_seconds()))

    @property
    def window(self) -> int:
        """Most events of the subscription pending at once (delivering or awaiting a retry)."""
        return 1 if self.ordered else self.max_in_flight

    def to_json(self) -> dict[str, Any]:
        """The API form."""
        return {
            "retry": self.retry,
            "backoffPolicy": self.backoff_policy.value,
            "backoffDelay": format_duration(self.backoff_delay),
            "maxDelay": format_duration(self.max_delay),
            "deadLetterBus": self.dead_letter_bus,
            "ordered": self.ordered,
            "maxInFlight": self.max_in_flight,
            "timeout": format_duration(self.timeout),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionSpec:
    """What a subscriber asked for, validated (the body of ``POST /subscriptions``)."""

    bus: str
    """The bus it reads."""
    filters: tuple[Mapping[str, Any], ...] = ()
    """Filter objects in the Subscriptions API form, ANDed."""
    sink: str | None = None
    """The HTTP(S) URL events are POSTed to (``None`` for internal consumers)."""
    headers: Mapping[str, Any] = field(default_factory=dict)
    """Headers sent with every delivery: text, or ``{"secret": NAME}`` (always for credentials)."""
    transform: str | None = None
    """A jq expression whose first output becomes the delivered data."""
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    """Retries, back-off, dead letter, ordering, concurrency, timeout."""
    start: str | int = "latest"
    """``latest``, ``earliest`` or the first offset to deliver."""

    @property
    def dead_letter_bus(self) -> str:
        """The dead-letter bus, default ``<bus>.deadletter``."""
        return self.delivery.dead_letter_bus or f"{self.bus}{DEAD_LETTER_SUFFIX}"

    def compiled_filters(self) -> CompiledFilters:
        """The filters compiled into one predicate (do it once per subscription)."""
        return compile_filters(list(self.filters))

    @property
    def secret_subject(self) -> str:
        """Who receives the secrets of ``headers``: ``sink:<host>``, as grants name it."""
        return f"sink:{urlsplit(self.sink or '').hostname or ''}"

    def to_json(self) -> dict[str, Any]:
        """The API form (stored as the subscription's ``spec``)."""
        delivery = self.delivery.to_json()
        delivery["deadLetterBus"] = self.dead_letter_bus
        return {
            "bus": self.bus,
            "filters": [dict(f) for f in self.filters],
            "sink": self.sink,
            **({"headers": dict(self.headers)} if self.headers else {}),
            "transform": self.transform,
            "delivery": delivery,
            "from": self.start,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscription:
    """A subscription as stored, with its progress."""

    id: str
    """Unique id."""
    kind: SubscriptionKind
    """``http`` or ``internal``."""
    spec: SubscriptionSpec
    """What it asked for."""
    state: SubscriptionState
    """``active`` or ``paused``."""
    committed_offset: int
    """Every event up to this offset is delivered, dead-lettered or filtered out."""
    delivered: int = 0
    """Events delivered (2xx, or handed to the internal consumer)."""
    failed: int = 0
    """Failed attempts (each retried or dead-lettered)."""
    dead_lettered: int = 0
    """Events sent to the dead-letter bus."""
    created_at: datetime | None = None
    """When it was created."""
    version: int = 1
    """Bumped by pause, resume and reset: the dispatcher running it restarts it."""

    @property
    def bus(self) -> str:
        """The bus it reads."""
        return self.spec.bus

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Subscription:
        """Build from a ``tideflow_subscriptions`` row (``spec`` already decoded)."""
        return cls(
            id=row["id"],
            kind=SubscriptionKind(row["kind"]),
            spec=parse_spec(row["spec"], internal=row["kind"] == SubscriptionKind.INTERNAL),
            state=SubscriptionState(row["state"]),
            committed_offset=row["committed_offset"],
            delivered=row["delivered"],
            failed=row["failed"],
            dead_lettered=row["dead_lettered"],
            created_at=row["created_at"],
            version=row["version"],
        )

    def to_json(self, head: int | None = None) -> dict[str, Any]:
        """The API form; with the bus's ``head`` offset, also the ``lag`` behind it.

        Credentials in the sink URL (``https://user:secret@host``, only in subscriptions
        stored before they were refused) are shown as ``***``; headers hold secret
        references, shown as they are (names, not values).
        """
        out: dict[str, Any] = {"id": self.id, "kind": self.kind.value, **self.spec.to_json()}
        if self.spec.sink is not None:
            out["sink"] = redact_url(self.spec.sink)
        out.update(
            state=self.state.value,
            committedOffset=self.committed_offset,
            headOffset=head,
            lag=None if head is None else max(0, head - self.committed_offset),
            delivered=self.delivered,
            failed=self.failed,
            deadLettered=self.dead_lettered,
            createdAt=format_timestamp(self.created_at) if self.created_at else None,
        )
        return out


# --- validation ----------------------------------------------------------------


def parse_spec(
    body: Any, *, internal: bool = False, max_timeout: timedelta | None = None
) -> SubscriptionSpec:
    """Validate the body of ``POST /subscriptions``.

    Args:
        body: Parsed JSON.
        internal: True for in-process consumers, which have no sink.
        max_timeout: The longest ``delivery.timeout`` accepted (``None``: any;
            stored subscriptions are read back without a limit).

    Raises:
        InvalidArgument: Naming the field (``argument``), e.g. ``delivery.backoffDelay``.
        InvalidFilter: Naming the path of the bad filter, e.g. ``filters[1].sql``.
    """
    if not isinstance(body, Mapping):
        raise InvalidArgument("a subscription must be a JSON object", argument="(body)")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise InvalidArgument(
            f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(_FIELDS - {'id'}))})",
            argument=unknown[0],
        )
    bus = body.get("bus")
    if bus is None:
        raise InvalidArgument("bus is required", argument="bus")
    try:
        check_bus_name(bus)
    except InvalidArgument as exc:
        raise InvalidArgument(f"bus: {exc.message}", argument="bus") from None
    compile_filters(body.get("filters"))  # raises InvalidFilter with the path
    sink = body.get("sink")
    if not internal or sink is not None:
        sink = check_sink(sink)
    spec = SubscriptionSpec(
        bus=bus,
        filters=tuple(body.get("filters") or ()),
        sink=sink,
        headers=check_headers(body.get("headers")),
        transform=check_transform(body.get("transform")),
        delivery=parse_delivery(body.get("delivery"), bus, max_timeout),
        start=parse_start(body.get("from", "latest")),
    )
    return spec


def redact_url(url: str) -> str:
    """``url`` with its user information (name and password) replaced by ``***``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def check_headers(headers: Any) -> dict[str, Any]:
    """Headers for deliveries: names and values (text or secret references) checked.

    Raises:
        InvalidArgument: Not an object, a bad name, a header Tideflow sets itself,
            or a value that is neither text nor ``{"secret": NAME}``.
    """
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise InvalidArgument("headers must be an object of name: value", argument="headers")
    out: dict[str, Any] = {}
    for name, value in headers.items():
        where = f"headers.{name}"
        if not isinstance(name, str) or _HEADER_NAME.fullmatch(name) is None:
            raise InvalidArgument(f"{where}: not a valid header name", argument=where)
        if name.lower() in _NOT_SENDABLE or name.lower().startswith("ce-"):
            raise InvalidArgument(f"{where}: Tideflow sets this header itself", argument=where)
        if is_secret_ref(value):
            ref_names(value, where)  # raises for a malformed name
        elif not isinstance(value, str) or "\n" in value or "\r" in value:
            raise InvalidArgument(
                f'{where}: a header value is text or {{"secret": NAME}}', argument=where
            )
        out[name] = value
    return out


def check_credentials(spec: SubscriptionSpec) -> None:
    """A new subscription keeps no credential in clear: none in the sink URL, and every
    credential header a secret reference.

    Raises:
        InvalidArgument: Naming the field and the way to pass the credential instead.
    """
    if spec.sink is not None and "@" in urlsplit(spec.sink).netloc:
        raise InvalidArgument(
            "sink: a user or password in the URL would be stored in clear; send it in a "
            'header that names a secret instead, e.g. "headers": {"authorization": '
            '{"secret": "HOOK_AUTH"}} (see docs/security.md, Secrets)',
            argument="sink",
        )
    for name, value in spec.headers.items():
        if _CREDENTIAL_HEADER.search(name) and not is_secret_ref(value):
            raise InvalidArgument(
                f"headers.{name}: a credential is stored as a secret reference, "
                '{"secret": NAME}, never as text (see docs/security.md, Secrets)',
                argument=f"headers.{name}",
            )


def check_sink(sink: Any) -> str:
    """The sink URL, if it is an absolute ``http``/``https`` URL.

    Raises:
        InvalidArgument: It is not.
    """
    if not isinstance(sink, str) or not sink:
        raise InvalidArgument("sink is required: the URL events are POSTed to", argument="sink")
    parts = urlsplit(sink)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(
            f"sink must be an absolute http or https URL, got {sink!r}", argument="sink"
        )
    return sink


def check_transform(transform: Any) -> str | None:
    """The transform if it compiles as jq (``None`` stays ``None``).

    Raises:
        InvalidArgument: It is not a string or does not compile.
    """
    if transform is None:
        return None
    from tideflow.workflow.expressions import compile_expression

    if not isinstance(transform, str):
        raise InvalidArgument("transform must be a jq expression string", argument="transform")
    try:
        compile_expression(transform)
    except ExpressionError as exc:
        raise InvalidArgument(f"transform: {exc.message}", argument="transform") from None
    return transform


def parse_start(value: Any) -> str | int:
    """``latest``, ``earliest`` or a non-negative offset.

    Raises:
        InvalidArgument: Anything else.
    """
    if value in ("latest", "earliest"):
        return str(value)
    if type(value) is int and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise InvalidArgument(
        f"from must be 'latest', 'earliest' or an offset (integer >= 0), got {value!r}",
        argument="from",
    )


def _duration(value: Any, name: str, default: timedelta) -> timedelta:
    if value is None:
        return default
    try:
        parsed = parse_duration(value)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument(
            f"delivery.{name}: {exc} (an ISO 8601 duration such as PT1S)",
            argument=f"delivery.{name}",
        ) from None
    if parsed < timedelta(0) or (name == "timeout" and parsed <= timedelta(0)):
        raise InvalidArgument(
            f"delivery.{name} must be positive, got {value!r}", argument=f"delivery.{name}"
        )
    return parsed


def _integer(value: Any, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if type(value) is not int or not low <= value <= high:
        raise InvalidArgument(
            f"delivery.{name} must be an integer from {low} to {high}, got {value!r}",
            argument=f"delivery.{name}",
        )
    return value


def _dead_letter_bus(dead_letter: Any, bus: str) -> str | None:
    if dead_letter is None and len(bus) + len(DEAD_LETTER_SUFFIX) > 63:
        raise InvalidArgument(
            f"bus {bus!r} is too long for the default dead-letter bus: set delivery.deadLetterBus",
            argument="delivery.deadLetterBus",
        )
    if dead_letter is not None:
        try:
            check_bus_name(dead_letter)
        except InvalidArgument as exc:
            raise InvalidArgument(
                f"delivery.deadLetterBus: {exc.message}", argument="delivery.deadLetterBus"
            ) from None
        if dead_letter == bus:
            raise InvalidArgument(
                "delivery.deadLetterBus must differ from the bus read (events would loop)",
                argument="delivery.deadLetterBus",
            )
    return dead_letter  # type: ignore[no-any-return]


def parse_delivery(value: Any, bus: str, max_timeout: timedelta | None = None) -> DeliveryPolicy:
    """Validate ``delivery`` (absent: the defaults; ``timeout`` at most ``max_timeout``).

    Raises:
        InvalidArgument: Naming the field, e.g. ``delivery.retry``.
    """
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise InvalidArgument("delivery must be an object", argument="delivery")
    unknown = sorted(set(value) - _DELIVERY_FIELDS)
    if unknown:
        raise InvalidArgument(
            f"delivery has unknown field {unknown[0]!r} "
            f"(allowed: {', '.join(sorted(_DELIVERY_FIELDS))})",
            argument=f"delivery.{unknown[0]}",
        )
    policy = value.get("backoffPolicy", "exponential")
    if policy not in ("linear", "exponential"):
        raise InvalidArgument(
            f"delivery.backoffPolicy must be 'linear' or 'exponential', got {policy!r}",
            argument="delivery.backoffPolicy",
        )
    ordered = value.get("ordered", False)
    if not isinstance(ordered, bool):
        raise InvalidArgument("delivery.ordered must be true or false", argument="delivery.ordered")
    dead_letter = _dead_letter_bus(value.get("deadLetterBus"), bus)
    defaults = DeliveryPolicy()
    return DeliveryPolicy(
        retry=_integer(value.get("retry"), "retry", defaults.retry, 0, MAX_RETRY),
        backoff_policy=BackoffPolicy(policy),
        backoff_delay=_duration(value.get("backoffDelay"), "backoffDelay", defaults.backoff_delay),
        max_delay=_duration(value.get("maxDelay"), "maxDelay", defaults.max_delay),
        dead_letter_bus=dead_letter,
        ordered=ordered,
        max_in_flight=_integer(
            value.get("maxInFlight"), "maxInFlight", defaults.max_in_flight, 1, MAX_IN_FLIGHT_LIMIT
        ),
        timeout=_timeout(value.get("timeout"), defaults.timeout, max_timeout),
    )


def _timeout(value: Any, default: timedelta, limit: timedelta | None) -> timedelta:
    timeout = _duration(value, "timeout", default)
    if limit is not None and timeout > limit:
        raise InvalidArgument(
            f"delivery.timeout must be at most {limit.total_seconds():g} seconds "
            f"(TIDEFLOW_SINK_TIMEOUT_LIMIT), got {str(value)[:40]!r}",
            argument="delivery.timeout",
        )
    return timeout
