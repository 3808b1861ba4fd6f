"""Connectors as data: what ``POST /connectors`` declares, validated (pure: no I/O).

A connector is ``{name, kind, type, bus, config, mapping?, subscription?}``:

- ``kind`` ``source``: records of an external system become CloudEvents appended to
  ``bus``; ``mapping`` (jq) shapes each event from the record.
- ``kind`` ``sink``: the events of ``bus`` reach an external system through a
  subscription (``subscription``: ``filters``, ``transform``, ``delivery``, ``from``,
  exactly as in ``POST /subscriptions`` without ``bus`` and ``sink``); ``mapping``
  (jq) shapes the row or message from the event.
- ``type`` names the external system (:data:`TYPES`); ``config`` is that type's
  settings (:data:`CONFIG_KEYS`). A config value ``{"secret": "NAME"}`` is a
  reference resolved when the connector runs: only the reference is stored.

:meth:`Connector.to_json` redacts what looks like a credential (a password in a URL,
keys such as ``password`` or ``token``) so the API never shows one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import PurePath
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from tideflow.errors import ExpressionError, InvalidArgument, InvalidFilter, format_path
from tideflow.eventstore.store import check_bus_name
from tideflow.isotime import format_timestamp
from tideflow.secrets.refs import is_secret_ref, ref_names
from tideflow.triggers.subscriptions import parse_spec

_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_FIELDS: Final = frozenset({"name", "kind", "type", "bus", "config", "mapping", "subscription"})
_SUBSCRIPTION_FIELDS: Final = frozenset({"filters", "transform", "delivery", "from"})
REDACTED: Final = "***"
_SECRET_KEYS: Final = re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key|credential)")


class ConnectorKind(StrEnum):
    """Which way events flow."""

    SOURCE = "source"
    """From the external system onto a bus."""
    SINK = "sink"
    """From a bus to the external system."""


class ConnectorState(StrEnum):
    """Whether it runs."""

    ACTIVE = "active"
    PAUSED = "paused"


TYPES: Final[Mapping[ConnectorKind, frozenset[str]]] = {
    ConnectorKind.SOURCE: frozenset(
        {"postgres", "redis", "nats", "amqp", "mqtt", "webhook", "directory"}
    ),
    ConnectorKind.SINK: frozenset({"postgres", "redis", "nats", "amqp", "mqtt", "smtp"}),
}
"""The connector types of each kind."""

_COMMON: Final = frozenset({"url"})
_SOURCE: Final = frozenset({"mode", "interval", "batch"})
CONFIG_KEYS: Final[Mapping[tuple[ConnectorKind, str], frozenset[str]]] = {
    (ConnectorKind.SOURCE, "postgres"): _COMMON | _SOURCE | {"table", "cursor", "columns"},
    (ConnectorKind.SINK, "postgres"): _COMMON | {"table", "upsert"},
    (ConnectorKind.SOURCE, "redis"): _COMMON | _SOURCE | {"stream", "group", "consumer"},
    (ConnectorKind.SINK, "redis"): _COMMON | {"stream", "maxlen"},
    (ConnectorKind.SOURCE, "nats"): _COMMON | _SOURCE | {"subject", "stream", "durable"},
    (ConnectorKind.SINK, "nats"): _COMMON | {"subject", "stream"},
    (ConnectorKind.SOURCE, "amqp"): _COMMON | _SOURCE | {"queue", "prefetch"},
    (ConnectorKind.SINK, "amqp"): _COMMON | {"queue", "exchange", "routingKey"},
    (ConnectorKind.SOURCE, "mqtt"): _COMMON | _SOURCE | {"topic", "qos", "clientId"},
    (ConnectorKind.SINK, "mqtt"): _COMMON | {"topic", "qos", "clientId"},
    (ConnectorKind.SINK, "smtp"): _COMMON | {"from", "to", "subject"},
    (ConnectorKind.SOURCE, "directory"): _SOURCE | {"path", "pattern", "settle", "maxBytes"},
    (ConnectorKind.SOURCE, "webhook"): frozenset(
        {"signature", "secret", "header", "idHeader", "tolerance"}
    ),
}
"""The ``config`` keys each type accepts (``idle``: seconds a sink keeps an unused
connection, every sink)."""

REQUIRED_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "postgres": ("url", "table"),
    "redis": ("url", "stream"),
    "nats": ("url", "subject"),
    "amqp": ("url",),
    "mqtt": ("url", "topic"),
    "webhook": (),
    "smtp": ("url", "from", "to"),
    "directory": ("path",),
}
"""The ``config`` keys each type needs, source or sink."""

OPERATOR_TYPES: Final = frozenset({"directory"})
"""Types only the operator declares (``serve --connectors``): they read the server's files,
which nothing that arrives over HTTP may name (``POST /connectors`` refuses them)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorSpec:
    """What was declared, validated (the body of ``POST /connectors``)."""

    name: str
    """Unique name: 1-63 lower-case letters, digits, ``_`` or ``-``."""
    kind: ConnectorKind
    """``source`` or ``sink``."""
    type: str
    """The external system (``postgres``, ``redis``, ``nats``, ``amqp``, ``mqtt``, ``webhook``)."""
    bus: str
    """The bus a source appends to, or a sink reads."""
    config: Mapping[str, Any] = field(default_factory=dict)
    """The type's settings; values may be ``{"secret": NAME}`` references."""
    mapping: str | None = None
    """jq: a source's record -> event attributes, a sink's event -> row or message."""
    subscription: Mapping[str, Any] = field(default_factory=dict)
    """A sink's subscription: ``filters``, ``transform``, ``delivery``, ``from``."""

    def subscription_body(self) -> dict[str, Any]:
        """The body of the sink's (internal) subscription."""
        return {"bus": self.bus, **self.subscription}

    def to_json(self) -> dict[str, Any]:
        """The stored form (secret references as written, never resolved values)."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind.value,
            "type": self.type,
            "bus": self.bus,
            "config": dict(self.config),
            "mapping": self.mapping,
        }
        if self.kind is ConnectorKind.SINK:
            out["subscription"] = dict(self.subscription)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Connector:
    """A connector as stored, with its progress."""

    spec: ConnectorSpec
    """What was declared."""
    state: ConnectorState = ConnectorState.ACTIVE
    """``active`` or ``paused``."""
    position: Mapping[str, Any] | None = None
    """A source's durable position where its system keeps none (a cursor value)."""
    events: int = 0
    """Events appended (source) or written out (sink), as last committed."""
    errors: int = 0
    """Failures (each retried), as last committed."""
    last_error: str | None = None
    """The latest failure's message."""
    last_error_at: datetime | None = None
    """When it happened."""
    created_at: datetime | None = None
    """When it was created."""
    version: int = 1
    """Bumped by pause and resume: the process running it restarts it."""

    @property
    def name(self) -> str:
        """The connector's name."""
        return self.spec.name

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Connector:
        """Build from a ``tideflow_connectors`` row (``spec`` and ``position`` decoded)."""
        return cls(
            spec=parse_connector(row["spec"]),
            state=ConnectorState(row["state"]),
            position=row["position"],
            events=row["events"],
            errors=row["errors"],
            last_error=row["last_error"],
            last_error_at=row["last_error_at"],
            created_at=row["created_at"],
            version=row["version"],
        )

    def to_json(self) -> dict[str, Any]:
        """The API form, credentials redacted (see :func:`redact_config`)."""
        out = self.spec.to_json()
        out["config"] = redact_config(self.spec.config)
        out.update(
            state=self.state.value,
            position=dict(self.position) if self.position is not None else None,
            events=self.events,
            errors=self.errors,
            lastError=self.last_error,
            lastErrorAt=format_timestamp(self.last_error_at) if self.last_error_at else None,
            createdAt=format_timestamp(self.created_at) if self.created_at else None,
        )
        return out


def redact_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with credentials shown as ``***``: a URL's password, and the value of a
    key that names a credential (``password``, ``token``, ...) unless it is a reference."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if is_secret_reference(value):
            out[key] = dict(value)
        elif _SECRET_KEYS.search(key):
            out[key] = REDACTED
        elif isinstance(value, str) and "://" in value:
            out[key] = redact_url_password(value)
        else:
            out[key] = value
    return out


def redact_url_password(url: str) -> str:
    """``url`` with the password of its user information replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    user, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in user:
        return url
    name = user.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{name}:{REDACTED}@{host}"))


def is_secret_reference(value: Any) -> bool:
    """True for ``{"secret": "NAME"}``."""
    return is_secret_ref(value)


# --- validation ----------------------------------------------------------------------


def parse_connector(body: Any) -> ConnectorSpec:
    """Validate the body of ``POST /connectors`` (or an entry of a ``--connectors`` file).

    Raises:
        InvalidArgument: Naming the field, e.g. ``config.table`` or ``subscription.filters[0]``.
    """
    if not isinstance(body, Mapping):
        raise InvalidArgument("a connector must be a JSON object", argument="(body)")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise InvalidArgument(
            f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(_FIELDS))})",
            argument=unknown[0],
        )
    name = check_connector_name(body.get("name"))
    kind = _kind(body.get("kind"))
    kind_type = _type(kind, body.get("type"))
    try:
        bus = check_bus_name(body.get("bus"))
    except InvalidArgument as exc:
        raise InvalidArgument(f"bus: {exc.message}", argument="bus") from None
    config = _config(kind, kind_type, body.get("config"))
    mapping = _mapping(body.get("mapping"))
    subscription = _subscription(kind, bus, body.get("subscription"))
    return ConnectorSpec(
        name=name,
        kind=kind,
        type=kind_type,
        bus=bus,
        config=config,
        mapping=mapping,
        subscription=subscription,
    )


def check_connector_name(name: Any) -> str:
    """``name`` if it is a valid connector name.

    Raises:
        InvalidArgument: It is not.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidArgument(
            f"name must be 1-63 lower-case letters, digits, '_' or '-', starting with a letter "
            f"or digit, got {str(name)[:70]!r}",
            argument="name",
        )
    return name


def _kind(value: Any) -> ConnectorKind:
    if value not in ("source", "sink"):
        raise InvalidArgument(
            f"kind must be 'source' or 'sink', got {str(value)[:40]!r}", argument="kind"
        )
    return ConnectorKind(value)


def _type(kind: ConnectorKind, value: Any) -> str:
    known = TYPES[kind]
    if not isinstance(value, str) or value not in known:  # a list or object is unhashable
        raise InvalidArgument(
            f"type of a {kind.value} must be one of {', '.join(sorted(known))}, "
            f"got {str(value)[:40]!r}",
            argument="type",
        )
    return str(value)


def _absolute_path(value: Any) -> None:
    if not isinstance(value, str) or not PurePath(value).is_absolute():
        raise InvalidArgument(
            f"config.path must be an absolute directory path, got {str(value)[:80]!r}",
            argument="config.path",
        )


def _config(kind: ConnectorKind, kind_type: str, value: Any) -> dict[str, Any]:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise InvalidArgument("config must be an object", argument="config")
    allowed = CONFIG_KEYS[(kind, kind_type)] | ({"idle"} if kind is ConnectorKind.SINK else set())
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise InvalidArgument(
            f"config of a {kind_type} {kind.value} has unknown key {unknown[0]!r} "
            f"(allowed: {', '.join(sorted(allowed))})",
            argument=f"config.{unknown[0]}",
        )
    if kind_type == "webhook" and "signature" in value and "secret" not in value:
        raise InvalidArgument(
            "config.secret (the HMAC key) is required with config.signature",
            argument="config.secret",
        )
    for key in REQUIRED_KEYS[kind_type]:
        if key not in value:
            raise InvalidArgument(
                f"config.{key} is required for a {kind_type} {kind.value}",
                argument=f"config.{key}",
            )
    if kind_type == "directory":
        _absolute_path(value["path"])
    ref_names(dict(value), "config")  # every reference names a valid secret
    for key, item in value.items():
        _check_value(key, item)
        if isinstance(item, Mapping) and not is_secret_reference(item):
            raise InvalidArgument(
                f'config.{key}: an object value must be a secret reference {{"secret": "NAME"}}',
                argument=f"config.{key}",
            )
    return dict(value)


_NUMBERS: Final[Mapping[str, tuple[float, float]]] = {
    "interval": (0.01, 86_400.0),
    "idle": (0.0, 86_400.0),
    "batch": (1, 10_000),
    "qos": (0, 2),
    "prefetch": (1, 10_000),
    "maxlen": (1, 2**62),
    "tolerance": (1, 86_400),
}
"""Numeric config keys and their bounds."""
_CHOICES: Final[Mapping[str, tuple[str, ...]]] = {
    "mode": ("continuous", "scheduled"),
    "signature": ("github", "stripe", "hmac-sha256"),
}


def _check_value(key: str, value: Any) -> None:
    if key in _NUMBERS:
        low, high = _NUMBERS[key]
        integral = key not in ("interval", "idle", "tolerance")
        kind_ok = type(value) is int or (not integral and type(value) is float)
        if not kind_ok or not low <= value <= high:
            what = "an integer" if integral else "a number of seconds"
            raise InvalidArgument(
                f"config.{key} must be {what} from {low:g} to {high:g}, got {str(value)[:40]!r}",
                argument=f"config.{key}",
            )
    elif key in _CHOICES and value not in _CHOICES[key]:
        raise InvalidArgument(
            f"config.{key} must be one of {', '.join(_CHOICES[key])}, got {str(value)[:40]!r}",
            argument=f"config.{key}",
        )


def _mapping(value: Any) -> str | None:
    if value is None:
        return None
    from tideflow.workflow.expressions import compile_expression

    if not isinstance(value, str):
        raise InvalidArgument("mapping must be a jq expression string", argument="mapping")
    try:
        compile_expression(value)
    except ExpressionError as exc:
        raise InvalidArgument(f"mapping: {exc.message}", argument="mapping") from None
    return value


def _subscription(kind: ConnectorKind, bus: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if kind is ConnectorKind.SOURCE:
        raise InvalidArgument(
            "subscription is for sinks only (a source appends to its bus)",
            argument="subscription",
        )
    if not isinstance(value, Mapping):
        raise InvalidArgument("subscription must be an object", argument="subscription")
    unknown = sorted(set(value) - _SUBSCRIPTION_FIELDS)
    if unknown:
        raise InvalidArgument(
            f"subscription has unknown field {unknown[0]!r} "
            f"(allowed: {', '.join(sorted(_SUBSCRIPTION_FIELDS))})",
            argument=f"subscription.{unknown[0]}",
        )
    try:
        parse_spec({"bus": bus, **value}, internal=True)
    except InvalidFilter as exc:
        raise InvalidArgument(
            f"subscription: {exc.message}", argument=f"subscription.{format_path(exc.path)}"
        ) from None
    except InvalidArgument as exc:
        raise InvalidArgument(
            f"subscription: {exc.message}", argument=f"subscription.{exc.argument}"
        ) from None
    return dict(value)


def parse_connectors_file(document: Any, source: str) -> list[ConnectorSpec]:
    """The connectors of a ``serve --connectors`` file: ``{connectors: [...]}`` or a list.

    Raises:
        InvalidArgument: Naming the file, the entry and the field
            (``connectors.yaml: connectors[1].config.table``).
    """
    entries = document.get("connectors") if isinstance(document, Mapping) else document
    if not isinstance(entries, list):
        raise InvalidArgument(
            f"{source}: expected a list of connectors (or an object with 'connectors')",
            argument="connectors",
        )
    specs: list[ConnectorSpec] = []
    for index, entry in enumerate(entries):
        try:
            specs.append(parse_connector(entry))
        except InvalidArgument as exc:
            where = f"connectors[{index}].{exc.argument}"
            raise InvalidArgument(f"{source}: {where}: {exc.message}", argument=where) from None
    names = [s.name for s in specs]
    for name in names:
        if names.count(name) > 1:
            raise InvalidArgument(
                f"{source}: connector {name!r} is declared twice", argument="name"
            )
    return specs
