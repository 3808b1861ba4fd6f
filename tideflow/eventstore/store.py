"""The event store's interface and the values it hands out (pure: no I/O).

A *bus* is an append-only log of CloudEvents. Offsets are per bus, start at 1
and are gap-free in commit order: a reader that asks for "offset > N" never
skips an event that committed late. The log is cut into *segments* (ranges
of offsets); retention drops whole old segments.

Two implementations follow :class:`EventStore`:
:class:`tideflow.eventstore.gateway.PostgresEventStore` (the real one) and
:class:`tideflow.testing.InMemoryEventStore` (a fake for tests). The contract
suite in ``tests/contract/test_eventstore_contract.py`` runs against both.

Events cross this interface as CloudEvents in *structured JSON form*: a
mapping of attributes (``specversion``, ``id``, ``source``, ``type``, the
optional ones and any extensions) plus ``data`` (any JSON value) or
``data_base64`` (a string). The store keeps them exactly as received; it
checks only what it needs itself (``id`` and ``source`` for deduplication).
Full CloudEvents validation belongs to the caller (the HTTP API).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from tideflow.errors import EventRejected, InvalidArgument
from tideflow.isotime import format_timestamp, parse_duration

DEFAULT_BUS = "default"
MAX_OFFSET = 2**63 - 1
"""The largest offset a bus can hold (a PostgreSQL ``bigint``)."""
"""The bus that always exists; ``POST /events`` appends to it."""
INTERNAL_BUS_PREFIX = "tideflow."
"""Buses whose names start so are the server's own (``tideflow.lifecycle``): never deleted."""

_BUS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def check_bus_name(name: object) -> str:
    """Return ``name`` if it is a valid bus name.

    A bus name is 1 to 63 characters: letters, digits, ``.``, ``_`` and
    ``-``, starting with a letter or digit (it appears in URLs).

    Raises:
        InvalidArgument: The name is not valid.
    """
    if not isinstance(name, str) or not _BUS_NAME.fullmatch(name):
        raise InvalidArgument(
            f"invalid bus name {name!r}: use 1-63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            argument="name",
        )
    return name


def format_duration(value: timedelta) -> str:
    """Format a duration as ISO 8601 (``PT3600S``, ``P7D`` when whole days)."""
    total = value.total_seconds()
    if total > 0 and total % 86400 == 0:
        return f"P{int(total // 86400)}D"
    text = f"{total:.6f}".rstrip("0").rstrip(".")
    return f"PT{text}S"


@dataclass(frozen=True, slots=True, kw_only=True)
class Retention:
    """How long a bus keeps its events. Whole segments are dropped once entirely outside it.

    Attributes:
        max_age: Drop a segment once its newest event is older than this.
        max_events: Drop a segment once all its events are older than the
            newest ``max_events`` events.
    """

    max_age: timedelta | None = None
    max_events: int | None = None

    def __post_init__(self) -> None:
        if self.max_age is not None and self.max_age <= timedelta(0):
            raise InvalidArgument("retention.maxAge must be positive", argument="retention.maxAge")
        count: object = self.max_events
        if count is not None and (type(count) is not int or count < 1):
            raise InvalidArgument(
                "retention.maxEvents must be a positive integer", argument="retention.maxEvents"
            )

    @property
    def unlimited(self) -> bool:
        """True when neither limit is set."""
        return self.max_age is None and self.max_events is None

    def to_json(self) -> dict[str, Any]:
        """``{"maxAge": "P7D", "maxEvents": 1000}`` with only the limits that are set."""
        out: dict[str, Any] = {}
        if self.max_age is not None:
            out["maxAge"] = format_duration(self.max_age)
        if self.max_events is not None:
            out["maxEvents"] = self.max_events
        return out

    @classmethod
    def from_json(cls, value: object) -> Retention | None:
        """Parse ``{"maxAge": ISO 8601 duration, "maxEvents": int}``; ``None`` stays ``None``.

        Raises:
            InvalidArgument: Naming the offending field.
        """
        if value is None:
            return None
        fields = _object_of(value, "retention", ("maxAge", "maxEvents"))
        max_age = fields.get("maxAge")
        age = None if max_age is None else _duration(max_age, "retention.maxAge")
        return cls(max_age=age, max_events=fields.get("maxEvents"))


def _object_of(value: object, name: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    """``value`` if it is an object of only the ``allowed`` fields.

    Raises:
        InvalidArgument: Naming ``name`` or its unknown field.
    """
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{name} must be an object", argument=name)
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise InvalidArgument(
            f"{name} has unknown field {unknown[0]!r} (allowed: {', '.join(allowed)})",
            argument=f"{name}.{unknown[0]}",
        )
    return value


def _duration(value: str, path: str) -> timedelta:
    """An ISO 8601 duration.

    Raises:
        InvalidArgument: Naming ``path``.
    """
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise InvalidArgument(f"{path}: {exc}", argument=path) from None


SEGMENT_EVENTS_MIN = 10
SEGMENT_EVENTS_MAX = 100_000_000
"""Bounds of a bus's ``segmentEvents`` (events per segment)."""


def check_segment_events(value: object) -> int:
    """``value`` if it is a valid ``segmentEvents`` (an integer within the bounds).

    Raises:
        InvalidArgument: Naming ``segmentEvents``.
    """
    if type(value) is not int or not SEGMENT_EVENTS_MIN <= value <= SEGMENT_EVENTS_MAX:
        raise InvalidArgument(
            f"segmentEvents must be an integer from {SEGMENT_EVENTS_MIN} to "
            f"{SEGMENT_EVENTS_MAX:_}".replace("_", ","),
            argument="segmentEvents",
        )
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchivePolicy:
    """When a bus's old segments move to the archive tier, and where.

    Attributes:
        after: A closed segment is archived once its newest event is older than this.
        to: Where its files go: a local folder (a path or ``file://`` URL, under the
            server's archive root) or an fsspec URL (``s3://bucket/prefix``).
    """

    after: timedelta
    to: str

    def __post_init__(self) -> None:
        if self.after <= timedelta(0):
            raise InvalidArgument("archive.after must be positive", argument="archive.after")
        if not self.to.strip():
            raise InvalidArgument("archive.to must be a non-empty URL", argument="archive.to")
        if len(self.to) > 1024 or any(ord(c) < 32 for c in self.to):
            raise InvalidArgument(
                "archive.to must be at most 1024 characters, without control characters",
                argument="archive.to",
            )

    def to_json(self) -> dict[str, Any]:
        """``{"after": "P7D", "to": URL}``."""
        return {"after": format_duration(self.after), "to": self.to}

    @classmethod
    def from_json(cls, value: object) -> ArchivePolicy | None:
        """Parse ``{"after": ISO 8601 duration, "to": URL}``; ``None`` stays ``None``.

        Raises:
            InvalidArgument: Naming the offending field.
        """
        if value is None:
            return None
        fields = _object_of(value, "archive", ("after", "to"))
        for name in ("after", "to"):
            if not isinstance(fields.get(name), str):
                raise InvalidArgument(
                    f"archive.{name} is required (a string)", argument=f"archive.{name}"
                )
        return cls(after=_duration(fields["after"], "archive.after"), to=fields["to"])


@dataclass(frozen=True, slots=True, kw_only=True)
class Bus:
    """A bus as created.

    Attributes:
        name: The bus name (unique).
        retention: Its retention policy; ``None`` keeps everything.
        created_at: When it was created.
        segment_events: Events per segment (``None``: not known to this store).
        archive: Its archive tier; ``None`` keeps every segment in the database.
    """

    name: str
    retention: Retention | None
    created_at: datetime
    segment_events: int | None = None
    archive: ArchivePolicy | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "name": self.name,
            "retention": self.retention.to_json() if self.retention else None,
            "createdAt": format_timestamp(self.created_at),
            "segmentEvents": self.segment_events,
            "archive": self.archive.to_json() if self.archive else None,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class TierFigures:
    """The events and bytes one storage tier of a bus holds.

    Attributes:
        events: Events in the tier.
        size_bytes: Bytes: partitions with their indexes (live), files (archive).
        segments: Segments in the tier.
    """

    events: int
    size_bytes: int
    segments: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"events": self.events, "sizeBytes": self.size_bytes, "segments": self.segments}


@dataclass(frozen=True, slots=True, kw_only=True)
class BusInfo:
    """A bus with its current figures.

    Attributes:
        name: The bus name.
        retention: Its retention policy; ``None`` keeps everything.
        created_at: When it was created.
        first_offset: The oldest offset still kept (``last_offset + 1`` when empty).
        last_offset: The newest offset (0 before the first event).
        segment_count: Segments (partitions) that exist, including those created ahead of need.
        size_bytes: Size on disk of its segments, indexes included.
        events_per_second: Events appended per second over the last minute.
        segment_events: Events per segment (``None``: not known to this store).
        archive: Its archive tier, if any.
        live: The database tier (``None``: not known to this store).
        archived: The archive tier (``None``: not known to this store).
    """

    name: str
    retention: Retention | None
    created_at: datetime
    first_offset: int
    last_offset: int
    segment_count: int
    size_bytes: int
    events_per_second: float
    segment_events: int | None = None
    archive: ArchivePolicy | None = None
    live: TierFigures | None = None
    archived: TierFigures | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        tiers = None
        if self.live is not None and self.archived is not None:
            tiers = {"live": self.live.to_json(), "archive": self.archived.to_json()}
        return {
            "name": self.name,
            "retention": self.retention.to_json() if self.retention else None,
            "createdAt": format_timestamp(self.created_at),
            "firstOffset": self.first_offset,
            "lastOffset": self.last_offset,
            "segmentCount": self.segment_count,
            "sizeBytes": self.size_bytes,
            "eventsPerSecond": self.events_per_second,
            "segmentEvents": self.segment_events,
            "archive": self.archive.to_json() if self.archive else None,
            "tiers": tiers,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Appended:
    """The acknowledgement of one appended event (returned only after commit).

    Attributes:
        bus: The bus it went to.
        offset: Its offset; for a duplicate, the offset of the event stored first.
        duplicate: True when an event with the same ``source`` and ``id`` was already in the bus.
    """

    bus: str
    offset: int
    duplicate: bool

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"bus": self.bus, "offset": self.offset, "duplicate": self.duplicate}


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredEvent:
    """An event read back from a bus.

    Attributes:
        bus: The bus it is in.
        offset: Its offset in the bus.
        event: The CloudEvent in structured JSON form, exactly as appended.
        stored_at: When the store accepted it.
        trace: The W3C ``traceparent`` of the span that appended it, when tracing was
            on (:mod:`tideflow.tracing`); not part of the event.
    """

    bus: str
    offset: int
    event: Mapping[str, Any]
    stored_at: datetime
    trace: str | None = None

    @property
    def id(self) -> str:
        """The CloudEvent ``id``."""
        return str(self.event["id"])

    @property
    def source(self) -> str:
        """The CloudEvent ``source``."""
        return str(self.event["source"])

    @property
    def type(self) -> str | None:
        """The CloudEvent ``type``."""
        value = self.event.get("type")
        return None if value is None else str(value)


def event_key(event: object, index: int = 0) -> tuple[str, str]:
    """The ``(source, id)`` deduplication key of a structured CloudEvent.

    Args:
        event: The event.
        index: Its position in the batch, for the error message.

    Raises:
        EventRejected: It is not a mapping, or ``source``/``id`` is missing or not a
            non-empty string.
    """
    if type(event) is not dict and not isinstance(event, Mapping):
        raise EventRejected(f"event [{index}] is not a JSON object", index=index)
    for attribute in ("source", "id"):
        value = event.get(attribute)
        if type(value) is not str or not value:
            raise EventRejected(
                f"event [{index}]: required attribute {attribute!r} is missing or empty",
                attribute,
                index=index,
            )
        if "\x00" in value:
            raise EventRejected(
                f"event [{index}]: attribute {attribute!r} contains a NUL character",
                attribute,
                index=index,
            )
    return event["source"], event["id"]


class Appender(Protocol):
    """The part of the event store ingestion needs (the store, or a wrapper around it)."""

    async def append(self, bus: str, events: Sequence[dict[str, Any]]) -> Sequence[Appended]:
        """Append all or nothing; return after commit."""
        ...

    async def get_bus(self, name: str) -> object:
        """Raise ``BusNotFound`` unless the bus exists."""
        ...


class EventStore(Protocol):
    """Buses of CloudEvents with gap-free offsets.

    Implementations: ``PostgresEventStore`` and ``tideflow.testing.InMemoryEventStore``.
    Call :meth:`start` before use and :meth:`stop` at the end.
    """

    async def start(self) -> None:
        """Start background work (group commit, notifications); make sure ``default`` exists."""
        ...

    async def stop(self) -> None:
        """Finish pending appends and stop background work."""
        ...

    async def create_bus(
        self,
        name: str,
        retention: Retention | None = None,
        *,
        segment_events: int | None = None,
        archive: ArchivePolicy | None = None,
    ) -> Bus:
        """Create a bus and its first segments.

        ``segment_events`` overrides the store's segment size for this bus;
        ``archive`` moves its old segments to files (the caller has checked its
        location against the server's archive root and egress policy).

        Raises:
            InvalidArgument: The name is invalid.
            AlreadyExists: A bus with this name exists.
        """
        ...

    async def get_bus(self, name: str) -> BusInfo:
        """A bus with its current figures.

        Raises:
            BusNotFound: No such bus.
        """
        ...

    async def list_buses(self) -> list[Bus]:
        """Every bus, by name."""
        ...

    async def delete_bus(self, name: str) -> None:
        """Delete a bus and all its events.

        Raises:
            BusNotFound: No such bus.
            ConflictError: ``name`` is the ``default`` bus, which always exists.
        """
        ...

    async def append(self, bus: str, events: Sequence[Mapping[str, Any]]) -> list[Appended]:
        """Append events, all or nothing; return only after they are committed.

        Concurrent calls share one transaction (group commit). An event whose
        ``source`` and ``id`` are already in the bus (or earlier in the same
        call) is not stored again: it is acknowledged with the first one's offset
        and ``duplicate=True``. Dedup covers the events retention has kept: once
        a segment is dropped, its events' keys are accepted again.

        Returns:
            One :class:`Appended` per event, in order.

        Raises:
            BusNotFound: No such bus.
            EventRejected: An event lacks ``id`` or ``source`` or cannot be stored as JSON.
            StoreError: The database failed; nothing from this call was stored.
        """
        ...

    async def read(self, bus: str, after: int = 0, limit: int = 100) -> list[StoredEvent]:
        """Up to ``limit`` committed events with offset greater than ``after``, in offset order.

        Events dropped by retention are skipped: the first offset returned may be
        larger than ``after + 1``. Archived events are read from their files, in
        the same order, and the read continues into the live segments.

        Raises:
            BusNotFound: No such bus.
        """
        ...

    async def get(self, bus: str, offset: int) -> StoredEvent:
        """The event at ``offset``.

        Raises:
            BusNotFound: No such bus.
            EventNotFound: No event at that offset (never written or dropped by retention).
        """
        ...

    async def wait_for(self, bus: str, after: int, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait until the bus has an event with offset greater than ``after``.

        Returns:
            True if there is one (possibly at once), False when ``timeout`` seconds passed.

        Raises:
            BusNotFound: No such bus.
        """
        ...

    async def apply_retention(self) -> int:
        """Drop every whole segment that falls outside its bus's retention.

        Returns:
            The number of segments dropped.
        """
        ...
