"""Fakes shipped with the package, for tests of Tideflow and of users' code."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tideflow import tracing
from tideflow.auth.tokens import TokenRecord, issue
from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.errors import (
    AlreadyExists,
    BusNotFound,
    ConflictError,
    EventNotFound,
    EventRejected,
    TokenNotFound,
)
from tideflow.eventstore.segments import SegmentState
from tideflow.eventstore.store import (
    DEFAULT_BUS,
    Appended,
    ArchivePolicy,
    Bus,
    BusInfo,
    Retention,
    StoredEvent,
    check_bus_name,
    event_key,
)
from tideflow.supervise import first_done


class ManualClock:
    """A clock that moves only when told to.

    ``sleep`` waits until :meth:`advance` moves the clock past the wake-up
    time, so tests never really sleep.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._now.timestamp()

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._mono + seconds, future))
        await future

    def advance(self, seconds: float) -> None:
        """Move the clock forward and wake every sleeper now due."""
        self._mono += seconds
        self._now += timedelta(seconds=seconds)
        due = [(t, f) for t, f in self._sleepers if t <= self._mono]
        self._sleepers = [(t, f) for t, f in self._sleepers if t > self._mono]
        for _, future in sorted(due, key=lambda item: item[0]):
            if not future.done():
                future.set_result(None)


class InMemoryEventStore:
    """An :class:`~tideflow.eventstore.store.EventStore` in memory, for tests.

    It keeps the contract of ``PostgresEventStore`` (gap-free offsets from 1,
    dedup on ``source`` + ``id`` among retained events, whole-segment retention,
    all-or-nothing appends) without a database. Events are copied through JSON,
    so what is read back is what Postgres would give. Time comes from ``clock``:
    with a :class:`ManualClock`, ``wait_for`` times out only when the clock is advanced.
    """

    def __init__(self, *, segment_size: int = 1_000_000, clock: Clock | None = None) -> None:
        self._segment_size = segment_size
        self._clock: Clock = clock or SYSTEM_CLOCK
        self._buses: dict[str, _MemoryBus] = {}
        self._changed = asyncio.Condition()

    async def start(self) -> None:
        """Create the ``default`` bus if it does not exist."""
        if DEFAULT_BUS not in self._buses:
            await self.create_bus(DEFAULT_BUS)

    async def stop(self) -> None:
        """Nothing to stop."""

    async def create_bus(
        self,
        name: str,
        retention: Retention | None = None,
        *,
        segment_events: int | None = None,
        archive: ArchivePolicy | None = None,
    ) -> Bus:
        """See :meth:`EventStore.create_bus` (``archive`` is kept but never acted on)."""
        check_bus_name(name)
        if name in self._buses:
            raise AlreadyExists(f"bus {name!r} already exists")
        size = segment_events or self._segment_size
        bus = Bus(
            name=name,
            retention=retention,
            created_at=self._clock.now(),
            segment_events=size,
            archive=archive,
        )
        self._buses[name] = _MemoryBus(bus=bus, segment_size=size)
        return bus

    def _bus(self, name: str) -> _MemoryBus:
        try:
            return self._buses[name]
        except KeyError:
            raise BusNotFound(f"no bus named {name!r}") from None

    async def get_bus(self, name: str) -> BusInfo:
        """See :meth:`EventStore.get_bus`."""
        state = self._bus(name)
        since = self._clock.now() - timedelta(minutes=1)
        recent = sum(1 for e in state.events.values() if e.stored_at > since)
        size = sum(len(json.dumps(e.event)) for e in state.events.values())
        first_segment = (state.first_offset - 1) // state.segment_size
        last_segment = (state.next_offset - 1) // state.segment_size + 1
        return BusInfo(
            name=name,
            retention=state.bus.retention,
            created_at=state.bus.created_at,
            first_offset=state.first_offset,
            last_offset=state.next_offset - 1,
            segment_count=last_segment - first_segment + 1,
            size_bytes=size,
            events_per_second=recent / 60.0,
            segment_events=state.segment_size,
            archive=state.bus.archive,
        )

    async def list_buses(self) -> list[Bus]:
        """See :meth:`EventStore.list_buses`."""
        return [self._buses[name].bus for name in sorted(self._buses)]

    async def delete_bus(self, name: str) -> None:
        """See :meth:`EventStore.delete_bus`."""
        self._bus(name)
        if name == DEFAULT_BUS:
            raise ConflictError("the default bus cannot be deleted")
        del self._buses[name]

    async def append(self, bus: str, events: Sequence[Mapping[str, Any]]) -> list[Appended]:
        """See :meth:`EventStore.append`."""
        state = self._bus(bus)
        copies = []
        for index, event in enumerate(events):
            key = event_key(event, index)
            try:
                copies.append((key, json.loads(json.dumps(event))))
            except (TypeError, ValueError) as exc:
                raise EventRejected(f"event [{index}] is not JSON: {exc}", index=index) from None
        now = self._clock.now()
        trace = tracing.traceparent()
        acks = []
        for key, copy in copies:
            if key in state.keys:
                acks.append(Appended(bus=bus, offset=state.keys[key], duplicate=True))
                continue
            offset = state.next_offset
            state.next_offset += 1
            state.keys[key] = offset
            state.events[offset] = StoredEvent(
                bus=bus, offset=offset, event=copy, stored_at=now, trace=trace
            )
            acks.append(Appended(bus=bus, offset=offset, duplicate=False))
        async with self._changed:
            self._changed.notify_all()
        return acks

    async def read(self, bus: str, after: int = 0, limit: int = 100) -> list[StoredEvent]:
        """See :meth:`EventStore.read`."""
        state = self._bus(bus)
        start = max(after + 1, state.first_offset)
        stop = min(start + max(limit, 0), state.next_offset)
        return [state.events[offset] for offset in range(start, stop)]

    async def get(self, bus: str, offset: int) -> StoredEvent:
        """See :meth:`EventStore.get`."""
        state = self._bus(bus)
        try:
            return state.events[offset]
        except KeyError:
            raise EventNotFound(f"bus {bus!r} has no event at offset {offset}") from None

    async def wait_for(self, bus: str, after: int, timeout: float) -> bool:  # noqa: ASYNC109
        """See :meth:`EventStore.wait_for`. The timeout runs on the store's clock."""

        def arrived() -> bool:
            return self._bus(bus).next_offset - 1 > after

        if arrived():
            return True
        await first_done(self._clock.sleep(timeout), self._wait(arrived))
        return arrived()

    async def _wait(self, arrived: Callable[[], bool]) -> None:
        async with self._changed:
            await self._changed.wait_for(arrived)

    async def apply_retention(self) -> int:
        """See :meth:`EventStore.apply_retention`."""
        now = self._clock.now()
        dropped = 0
        for state in self._buses.values():
            retention = state.bus.retention
            if retention is None or retention.unlimited:
                continue
            while _segment_expired(state, retention, now):
                end = state.first_offset + state.segment_size
                for offset in range(state.first_offset, end):
                    event = state.events.pop(offset)
                    state.keys.pop((event.source, event.id), None)
                state.first_offset = end
                dropped += 1
        return dropped


@dataclass(slots=True, kw_only=True)
class _MemoryBus:
    bus: Bus
    segment_size: int
    next_offset: int = 1
    first_offset: int = 1
    events: dict[int, StoredEvent] = field(default_factory=dict)
    keys: dict[tuple[str, str], int] = field(default_factory=dict)


def _segment_expired(state: _MemoryBus, retention: Retention, now: datetime) -> bool:
    """Whether the oldest segment is full and entirely outside ``retention`` (the store's rule)."""
    end = state.first_offset + state.segment_size
    newest = state.events.get(end - 1)
    return SegmentState(
        bus_id=0,
        bus=state.bus.name,
        segment_no=(state.first_offset - 1) // state.segment_size,
        end_offset=end,
        next_offset=state.next_offset,
        newest_at=newest.stored_at if newest is not None else None,
        max_age=retention.max_age,
        max_events=retention.max_events,
    ).expired(now)


class InMemoryTokens:
    """API tokens in memory: a :class:`~tideflow.auth.verifier.TokenStore` for tests."""

    def __init__(self) -> None:
        self.records: dict[str, TokenRecord] = {}

    def add(self, name: str = "test", scopes: Sequence[str] = ("admin",)) -> str:
        """Make and store a token at once; return its text."""
        issued = issue(name, scopes, SYSTEM_CLOCK.now())
        self.records[issued.record.id] = issued.record
        return issued.text

    async def find(self, token_id: str) -> TokenRecord | None:
        return self.records.get(token_id)

    async def create(self, record: TokenRecord) -> None:
        if record.id in self.records:
            raise AlreadyExists(f"a token with id {record.id!r} exists")
        self.records[record.id] = record

    async def create_first(self, record: TokenRecord) -> bool:
        if self.records:
            return False
        self.records[record.id] = record
        return True

    async def list(self) -> list[TokenRecord]:
        return sorted(self.records.values(), key=lambda r: (r.created_at, r.id))

    async def revoke(self, token_id: str, at: datetime) -> TokenRecord:
        record = self.records.get(token_id)
        if record is None:
            raise TokenNotFound(f"no token with id {token_id!r}")
        if record.revoked_at is None:
            record = self.records[token_id] = replace(record, revoked_at=at)
        return record


def __getattr__(name: str) -> Any:
    # The interpreter's scripted Effects, imported on first use (it pulls in jq).
    if name == "ScriptedEffects":
        from tideflow.runtime.fake import ScriptedEffects

        return ScriptedEffects
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
