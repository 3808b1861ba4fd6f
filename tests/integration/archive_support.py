"""Shared by the archive tier's tests: events, ingestion, and the checks on partitions and files."""

from __future__ import annotations

import json
import os
from typing import Any

from tideflow.eventstore.archive_format import checksum
from tideflow.eventstore.gateway import PostgresEventStore

EVENTS = int(os.environ.get("TIDEFLOW_ARCHIVE_TEST_EVENTS", "10050"))
"""Events of the full tests (CI size; the issue's 100,000 is run by hand, see bench/RESULTS.md)."""
SEGMENT = int(os.environ.get("TIDEFLOW_ARCHIVE_TEST_SEGMENT", "100"))


def event(i: int) -> dict[str, Any]:
    """Event ``i``: text with non-ASCII characters, and now and then an integer beyond 64 bits
    (stored through the standard library, with its leading space) -- both must come back exact."""
    data: dict[str, Any] = {"n": i, "text": "é ✓ 𝄞 " * (i % 4), "nested": {"list": [i, None]}}
    if i % 997 == 0:
        data["big"] = 2**70 + i
    return {
        "specversion": "1.0",
        "id": f"e-{i}",
        "source": "/archive/test",
        "type": f"com.example.t{i % 3}",
        "subject": f"s{i % 7}",
        "datacontenttype": "application/json",
        "data": data,
    }


async def ingest(store: PostgresEventStore, bus: str, count: int) -> list[dict[str, Any]]:
    """Append events 1..count in batches; return them."""
    events = [event(i) for i in range(1, count + 1)]
    for start in range(0, count, 1000):
        await store.append(bus, events[start : start + 1000])
    return events


async def stored_texts(pool: Any, bus: str) -> dict[int, str]:
    """The JSON text the log holds for each offset of ``bus`` (its live segments)."""
    rows = await pool.fetch(
        "SELECT event_offset, event FROM tideflow_events "
        "WHERE bus_id = (SELECT id FROM tideflow_buses WHERE name = $1)",
        bus,
    )
    return {row[0]: row[1] for row in rows}


async def partitions(pool: Any, bus: str) -> list[int]:
    """The segment numbers of ``bus`` that are partitions (from the catalog), ascending."""
    rows = await pool.fetch(
        """
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = 'tideflow_events_' || (SELECT id FROM tideflow_buses WHERE name = $1)
        """,
        bus,
    )
    return sorted(int(row[0].rsplit("_", 1)[1]) for row in rows)


async def manifest(pool: Any, bus: str) -> list[Any]:
    """The archived segments of ``bus`` (the database's manifest), oldest first."""
    return list(
        await pool.fetch(
            "SELECT * FROM tideflow_archived_segments "
            "WHERE bus_id = (SELECT id FROM tideflow_buses WHERE name = $1) ORDER BY segment_no",
            bus,
        )
    )


async def check_tiers(store: PostgresEventStore, pool: Any, bus: str, full_segments: int) -> int:
    """Every full segment is exactly one of: a partition, or a verified file. Returns how many
    are archived."""
    live = set(await partitions(pool, bus))
    archived = {row["segment_no"]: row for row in await manifest(pool, bus)}
    for number in range(full_segments):
        assert (number in live) != (number in archived), (
            f"segment {number}: partition {number in live}, archived {number in archived}"
        )
    for number, row in archived.items():
        data = await store.archive_files.read_file(row["location"])
        assert len(data) == row["event_count"] == row["end_offset"] - row["start_offset"]
        assert checksum(data.offsets, data.texts) == row["checksum"], number
    return len(archived)


async def read_all(store: PostgresEventStore, bus: str, after: int = 0) -> list[Any]:
    """Every event of ``bus`` after ``after``, page by page."""
    found: list[Any] = []
    while True:
        page = await store.read(bus, after, 1000)
        if not page:
            return found
        found.extend(page)
        after = page[-1].offset


def same_events(read: list[Any], ingested: list[dict[str, Any]], first: int = 1) -> None:
    """Offsets first.. once each, in order, each event the one ingested (same JSON, key order
    too)."""
    assert [e.offset for e in read] == list(range(first, first + len(ingested)))
    for got, sent in zip(read, ingested, strict=True):
        assert json.dumps(got.event, ensure_ascii=False) == json.dumps(sent, ensure_ascii=False)
