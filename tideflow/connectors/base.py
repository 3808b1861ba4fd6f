"""The connector interface: what a source and a sink implement, and how a type is found.

A **source** reads records from its system and hands them to ``emit``, which
returns only after their events are committed to the bus (and the position, if the
source passed one, is stored); only then does the source acknowledge the records to
its system. A crash before the acknowledgement redelivers them: with the record's
own id as the event id they dedup to the same events (at-least-once, no duplicate
on the bus).

A **sink** writes one message at a time, concurrently up to its subscription's
``maxInFlight``; it raises :class:`~tideflow.errors.SinkRejected` for a message its
system refuses for good (dead-lettered at once) and anything else for a failure
worth retrying. It opens its connection in :meth:`Sink.open` and is closed after an
idle period, so a sink with nothing to do holds no connection.

Each type lives in its own module, imported only when a connector of that type
runs; a missing client library is a :class:`~tideflow.errors.MissingExtra` naming
the ``pip install tideflow[...]`` extra.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from tideflow.clock import Clock
from tideflow.connectors.mapping import Record
from tideflow.connectors.spec import ConnectorKind
from tideflow.errors import InvalidArgument, MissingExtra

Emit = Callable[[Sequence[Record], "Mapping[str, Any] | None"], Awaitable[None]]
"""``emit(records, position)``: append the records' events, then store ``position``
(if given); returns after both are committed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceContext:
    """What a source is given."""

    name: str
    """The connector's name."""
    config: Mapping[str, Any]
    """Its config, secret references resolved."""
    position: Mapping[str, Any] | None
    """The position stored by its last ``emit`` (sources whose system keeps none)."""
    clock: Clock
    """For poll intervals."""
    scheduled: bool
    """``mode: scheduled``: read what is there, then return (the runner calls again
    after ``interval``, holding no connection in between)."""
    on_connection: Callable[[bool], None]
    """Report that the connection opened (True) or closed (False)."""


class Source(Protocol):
    """Records of an external system -> ``emit``."""

    async def run(self, emit: Emit) -> None:
        """Read and emit until cancelled (continuous) or drained (scheduled)."""
        ...


class Sink(Protocol):
    """Messages -> an external system."""

    async def open(self) -> None:
        """Connect."""
        ...

    async def write(self, message: Any, event: Mapping[str, Any]) -> None:
        """Write one message (``event`` is what it was mapped from).

        Raises:
            SinkRejected: Refused for good.
        """
        ...

    async def close(self) -> None:
        """Disconnect."""
        ...


SourceFactory = Callable[[SourceContext], Source]
SinkFactory = Callable[[str, Mapping[str, Any]], Sink]
"""``make_sink(connector name, resolved config)``."""


@dataclass(frozen=True, slots=True)
class _Type:
    module: str
    extra: str | None


_TYPES: Final[Mapping[str, _Type]] = {
    "postgres": _Type("tideflow.connectors.postgres", None),
    "redis": _Type("tideflow.connectors.redis_streams", "redis"),
    "nats": _Type("tideflow.connectors.nats_jetstream", "nats"),
    "amqp": _Type("tideflow.connectors.amqp", "amqp"),
    "mqtt": _Type("tideflow.connectors.mqtt", "mqtt"),
    "smtp": _Type("tideflow.connectors.smtp", "smtp"),
    "directory": _Type("tideflow.connectors.directory", None),
}
PASSIVE_TYPES: Final = frozenset({"webhook"})
"""Sources that run no task: their records arrive by HTTP (``POST /hooks/{name}``)."""


def _module(connector_type: str) -> Any:
    found = _TYPES.get(connector_type)
    if found is None:
        raise InvalidArgument(f"unknown connector type {connector_type!r}", argument="type")
    try:
        return importlib.import_module(found.module)
    except ModuleNotFoundError as exc:
        if found.extra is None or not exc.name or exc.name.startswith("tideflow"):
            raise
        raise MissingExtra(
            f"the {connector_type} connector needs the client library {exc.name!r}: "
            f"pip install 'tideflow[{found.extra}]'",
            extra=found.extra,
        ) from None


def source_factory(connector_type: str) -> SourceFactory:
    """The source class of a type (importing its module and client library now).

    Raises:
        MissingExtra: Its client library is not installed.
    """
    factory: SourceFactory = _module(connector_type).make_source
    return factory


def sink_factory(connector_type: str) -> SinkFactory:
    """The sink class of a type (importing its module and client library now).

    Raises:
        MissingExtra: Its client library is not installed.
    """
    factory: SinkFactory = _module(connector_type).make_sink
    return factory


def check_available(kind: ConnectorKind, connector_type: str) -> None:
    """Raise :class:`MissingExtra` now if a connector of this type could not run."""
    if connector_type in PASSIVE_TYPES:
        return
    if kind is ConnectorKind.SOURCE:
        source_factory(connector_type)
    else:
        sink_factory(connector_type)


def config_text(config: Mapping[str, Any], key: str, default: str | None = None) -> str:
    """``config[key]`` as a non-empty string (``default`` when absent).

    Raises:
        InvalidArgument: Missing without a default, or not a non-empty string.
    """
    value = config.get(key, default)
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"config.{key} must be a non-empty string", argument=f"config.{key}")
    return value


def config_number(config: Mapping[str, Any], key: str, default: float, low: float) -> float:
    """``config[key]`` as a number at least ``low`` (``default`` when absent).

    Raises:
        InvalidArgument: Not a number, or below ``low``.
    """
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
        raise InvalidArgument(
            f"config.{key} must be a number >= {low:g}, got {str(value)[:40]!r}",
            argument=f"config.{key}",
        )
    return float(value)
