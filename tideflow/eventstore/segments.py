"""Segment arithmetic and the retention rule (pure: no I/O).

A bus's log is cut into segments of ``segment_size`` offsets: segment ``n``
holds offsets ``n * size + 1`` to ``(n + 1) * size``. In PostgreSQL each is a
partition ``tideflow_events_<bus id>_<n>`` of the bus's table
``tideflow_events_<bus id>``; the store keeps one segment ready beyond the one
being filled, so appends seldom wait for DDL.

Retention drops whole segments, oldest first, and only *full* ones (the
segment being filled keeps taking appends): a segment goes once every event in
it is older than the newest ``max_events`` events, or once its newest event is
older than ``max_age``.

The archive tier (:mod:`tideflow.eventstore.archive`) moves a bus's oldest
full segments to files once their newest event is older than the bus's
``archive.after`` (:func:`segments_to_archive`); retention then applies to the
archived segments first (they are the oldest), dropping their files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar


def segment_of(offset: int, size: int) -> int:
    """The number of the segment holding ``offset`` (offsets start at 1)."""
    return (offset - 1) // size


def segment_start(segment_no: int, size: int) -> int:
    """The first offset of a segment."""
    return segment_no * size + 1


def segment_table(bus_id: int, segment_no: int) -> str:
    """The partition's table name (as SQL ``tideflow_segment_table`` spells it)."""
    return f"tideflow_events_{bus_id}_{segment_no}"


def wants_segment_ahead(next_offset: int, ready_until: int, size: int) -> bool:
    """Whether to create the next segment now.

    Args:
        next_offset: The offset the next event will get.
        ready_until: One past the last offset that has a segment.
        size: Events per segment.

    Returns:
        True when the segment being filled is the last one that exists.
    """
    return ready_until - next_offset <= size


def upto_for_ahead(next_offset: int, size: int) -> int:
    """The offset whose segment must exist to keep one segment ahead of ``next_offset``."""
    return next_offset + size


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentState:
    """What retention needs to know about one full segment.

    Attributes:
        bus_id: The bus's id.
        bus: The bus's name.
        segment_no: The segment's number.
        end_offset: One past its last offset.
        next_offset: The offset the bus's next event will get.
        newest_at: When its newest event was stored (``None`` if unknown).
        max_age: The bus's ``retention.maxAge``.
        max_events: The bus's ``retention.maxEvents``.
        location: Its file, when the segment is archived (``None``: a live partition).
    """

    bus_id: int
    bus: str
    segment_no: int
    end_offset: int
    next_offset: int
    newest_at: datetime | None
    max_age: timedelta | None
    max_events: int | None
    location: str | None = None

    def expired(self, now: datetime) -> bool:
        """Whether the segment is full and entirely outside its bus's retention."""
        if self.end_offset > self.next_offset:
            return False  # still being filled
        last_offset = self.next_offset - 1
        if self.max_events is not None and self.end_offset - 1 <= last_offset - self.max_events:
            return True
        return (
            self.max_age is not None
            and self.newest_at is not None
            and self.newest_at < now - self.max_age
        )


def segments_to_drop(candidates: Iterable[SegmentState], now: datetime) -> list[SegmentState]:
    """The segments retention drops: per bus, the oldest-first run of expired ones.

    Args:
        candidates: Segments, grouped by bus and oldest first within a bus.
        now: The current time.
    """
    return _oldest_runs(candidates, lambda segment: segment.expired(now))


class _Segment(Protocol):
    @property
    def bus_id(self) -> int: ...


S = TypeVar("S", bound=_Segment)


def _oldest_runs(candidates: Iterable[S], chosen: Callable[[S], bool]) -> list[S]:
    """Per bus, the oldest-first run of ``chosen`` segments: the first one not chosen stops its
    bus (never leave a hole: everything after it stays)."""
    run: list[S] = []
    stopped: set[int] = set()
    for segment in candidates:
        if segment.bus_id in stopped:
            continue
        if chosen(segment):
            run.append(segment)
        else:
            stopped.add(segment.bus_id)
    return run


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveCandidate:
    """A full live segment of a bus that has an archive tier.

    Attributes:
        bus_id: The bus's id.
        bus: The bus's name.
        segment_no: The segment's number.
        start_offset: Its first offset.
        end_offset: One past its last offset.
        next_offset: The offset the bus's next event will get.
        newest_at: When its newest event was stored (``None``: not known).
        after: The bus's ``archive.after``.
        to: The bus's ``archive.to``.
    """

    bus_id: int
    bus: str
    segment_no: int
    start_offset: int
    end_offset: int
    next_offset: int
    newest_at: datetime | None
    after: timedelta
    to: str

    def due(self, now: datetime) -> bool:
        """Whether the segment is full and its newest event older than ``after``."""
        return (
            self.end_offset <= self.next_offset
            and self.newest_at is not None
            and self.newest_at < now - self.after
        )


def segments_to_archive(
    candidates: Iterable[ArchiveCandidate], now: datetime
) -> list[ArchiveCandidate]:
    """The segments to archive: per bus, the oldest-first run of due ones.

    The archive holds a bus's oldest segments and the database the rest, so a
    segment is archived only after every older one.

    Args:
        candidates: Live segments, grouped by bus and oldest first within a bus.
        now: The current time.
    """
    return _oldest_runs(candidates, lambda segment: segment.due(now))
