"""Delayed CloudEvents: held by the timer service, appended to their bus when due.

An event posted with the extension attribute ``deliverytime`` (an RFC 3339
timestamp) or ``delay`` (an ISO 8601 duration, counted from its arrival) is
not appended at once: it becomes a timer of kind :data:`DELAYED_EVENT_KIND`
whose payload is the bus and the event exactly as received (so every
attribute, the two above included, is preserved). When the timer fires the
event is appended to its bus. The append happens outside the timer's
transaction, so a crash in between fires it again -- harmless, because the
event store drops an event whose ``source`` and ``id`` it already holds.

A delivery time not in the future means "now": the event is appended at once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.errors import BusNotFound, EventRejected
from tideflow.eventstore.store import Appended, EventStore
from tideflow.isotime import format_timestamp, parse_duration, parse_timestamp
from tideflow.timer.records import TimerRecord, TimerState
from tideflow.timer.service import TimerHandler, TimerService

log = logging.getLogger("tideflow.timer")

DELAYED_EVENT_KIND = "tideflow.delayed_event"
"""Kind of the timers that hold delayed events."""


MAX_EVENT_DELAY = timedelta(days=365)
"""How far ahead an event may ask to be delivered unless configured otherwise."""


def delivery_time(
    event: Mapping[str, Any], now: datetime, horizon: timedelta = MAX_EVENT_DELAY
) -> datetime | None:
    """When ``event`` asks to be delivered, or ``None`` for "now".

    Args:
        event: The CloudEvent as received.
        now: The arrival time.
        horizon: The furthest ahead an event may ask for.

    Raises:
        EventRejected: An attribute is not a string, malformed, out of range,
            a negative delay, beyond ``horizon``; or both are present.
    """
    when, delay = event.get("deliverytime"), event.get("delay")
    if when is not None and delay is not None:
        raise EventRejected("an event may carry deliverytime or delay, not both", "delay")
    if when is not None:
        due, attribute = _deliverytime(when), "deliverytime"
    elif delay is not None:
        due, attribute = now + _delay(delay, horizon), "delay"
    else:
        return None
    if due - now > horizon:
        raise EventRejected(
            f"{attribute} is more than {horizon.total_seconds():g} seconds ahead, the maximum",
            attribute,
        )
    return due if due > now else None


def _short(value: object) -> str:
    """``repr(value)``, cut so that a huge attribute is not echoed back whole."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _deliverytime(when: object) -> datetime:
    """``deliverytime`` as an aware UTC datetime (raises ``EventRejected``)."""
    if isinstance(when, str):
        try:
            return parse_timestamp(when).astimezone(UTC)
        except (ValueError, OverflowError):
            pass
    raise EventRejected(
        f"deliverytime must be an RFC 3339 timestamp, got {_short(when)}", "deliverytime"
    )


def _delay(delay: object, horizon: timedelta) -> timedelta:
    """``delay`` as a duration, not negative, within ``horizon`` (raises ``EventRejected``)."""
    length: timedelta | None = None
    if isinstance(delay, str):
        try:
            length = parse_duration(delay)
        except (ValueError, OverflowError, ArithmeticError):
            length = None
    if length is None:
        raise EventRejected(
            f"delay must be an ISO 8601 duration such as PT30S, got {_short(delay)}", "delay"
        )
    if length < timedelta(0):
        raise EventRejected(f"delay must not be negative, got {_short(delay)}", "delay")
    if length > horizon:
        raise EventRejected(
            f"delay is more than {horizon.total_seconds():g} seconds ahead, the maximum", "delay"
        )
    return length


@dataclass(frozen=True, slots=True, kw_only=True)
class Scheduled(Appended):
    """The acknowledgement of an event held for later delivery (``offset`` is 0 until then)."""

    timer_id: str
    """The timer holding it (``DELETE /buses/{bus}/scheduled/{timer_id}`` cancels)."""
    due_at: datetime
    """When it will be appended."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping: ``scheduled`` is true and ``offset`` is null."""
        return {
            "bus": self.bus,
            "offset": None,
            "duplicate": self.duplicate,
            "scheduled": True,
            "timerId": self.timer_id,
            "deliveryTime": format_timestamp(self.due_at),
        }


class DelayingAppender:
    """An event store's ``append`` that holds delayed events in the timer service.

    Args:
        store: The event store.
        timers: The timer service.
        clock: The clock ("now" for ``delay``).
        horizon: The furthest ahead an event may ask to be delivered.
    """

    def __init__(
        self,
        store: EventStore,
        timers: TimerService,
        clock: Clock = SYSTEM_CLOCK,
        horizon: timedelta = MAX_EVENT_DELAY,
    ):
        self._store = store
        self._timers = timers
        self._clock = clock
        self._horizon = horizon

    async def get_bus(self, name: str) -> object:
        """The bus (raises ``BusNotFound``)."""
        return await self._store.get_bus(name)

    async def append(self, bus: str, events: Sequence[Mapping[str, Any]]) -> list[Appended]:
        """Append the events due now; hold the others. One acknowledgement per event, in order.

        Held events are scheduled first: if the append then fails, the client's
        retry finds them already held (same bus, ``source`` and ``id``).

        Raises:
            EventRejected: A delivery attribute is malformed.
            BusNotFound: No such bus.
        """
        now = self._clock.now()
        due = [delivery_time(event, now, self._horizon) for event in events]
        if all(when is None for when in due):
            return list(await self._store.append(bus, events))
        await self._store.get_bus(bus)
        later = [(e, when) for e, when in zip(events, due, strict=True) if when is not None]
        held = iter(await self._hold(bus, later))
        now_events = [event for event, when in zip(events, due, strict=True) if when is None]
        appended = iter(await self._store.append(bus, now_events) if now_events else [])
        return [next(appended) if when is None else next(held) for when in due]

    async def _hold(
        self, bus: str, events: list[tuple[Mapping[str, Any], datetime]]
    ) -> list[Scheduled]:
        """Hold events as timers, one statement for the lot; the repeated ones once."""
        entries = [
            (
                when,
                {"bus": bus, "event": dict(event)},
                f"delayed:{bus}:{event.get('source')}:{event.get('id')}",
            )
            for event, when in events
        ]
        records = await self._timers.add_many(DELAYED_EVENT_KIND, entries)
        return [
            Scheduled(
                bus=bus,
                offset=0,
                duplicate=record.due_at != when or record.state is not TimerState.PENDING,
                timer_id=record.id,
                due_at=record.due_at,
            )
            for record, (_, when) in zip(records, events, strict=True)
        ]


def delayed_event_handler(store: EventStore) -> TimerHandler:
    """The handler that appends due events to their buses (in due order, a batch per bus run)."""

    async def append_due(timers: list[TimerRecord], conn: asyncpg.Connection) -> None:
        start = 0
        for end in range(1, len(timers) + 1):
            bus = timers[start].payload["bus"]
            if end < len(timers) and timers[end].payload["bus"] == bus:
                continue
            try:
                await store.append(bus, [t.payload["event"] for t in timers[start:end]])
            except BusNotFound:
                log.warning("dropped %d delayed events: bus %r is gone", end - start, bus)
            start = end

    return append_due


async def list_scheduled(timers: TimerService, bus: str, limit: int = 100) -> list[TimerRecord]:
    """The events held for ``bus``, in delivery order."""
    return await timers.store.list_delayed(DELAYED_EVENT_KIND, bus, limit)


@asynccontextmanager
async def open_timer_service(
    pool: asyncpg.Pool, store: EventStore, clock: Clock = SYSTEM_CLOCK, **options: Any
) -> AsyncIterator[TimerService]:
    """A started timer service that delivers delayed events to ``store``; stopped on exit."""
    timers = TimerService(pool, clock=clock, **options)
    timers.register(DELAYED_EVENT_KIND, delayed_event_handler(store))
    async with timers:
        yield timers
