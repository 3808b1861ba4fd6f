"""Event buses: append-only logs of CloudEvents with gap-free offsets, on PostgreSQL."""

from __future__ import annotations

from tideflow.eventstore.store import (
    DEFAULT_BUS,
    Appended,
    ArchivePolicy,
    Bus,
    BusInfo,
    EventStore,
    Retention,
    StoredEvent,
    TierFigures,
    check_bus_name,
    event_key,
)

__all__ = [
    "DEFAULT_BUS",
    "Appended",
    "ArchivePolicy",
    "Bus",
    "BusInfo",
    "EventStore",
    "Retention",
    "StoredEvent",
    "TierFigures",
    "check_bus_name",
    "event_key",
]
