"""Segments on PostgreSQL: created ahead of need, dropped whole by retention."""

from __future__ import annotations

import asyncio
from typing import Any

from tideflow.eventstore import Retention
from tideflow.eventstore.gateway import PostgresEventStore
from tideflow.testing import ManualClock


def ce(i: int) -> dict[str, object]:
    return {"specversion": "1.0", "id": str(i), "source": "/r", "type": "t"}


async def _segment_tables(pool: Any, bus: str) -> list[str]:
    rows = await pool.fetch(
        """
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = 'tideflow_events_' ||
            (SELECT id FROM tideflow_buses WHERE name = $1)
        ORDER BY c.relname
        """,
        bus,
    )
    return [row["relname"] for row in rows]


async def test_segments_are_created_ahead_and_dropped_whole(pool: Any) -> None:
    store = PostgresEventStore(pool, segment_size=100, clock=ManualClock(), retention_interval=None)
    await store.start()
    try:
        await store.create_bus("logs", Retention(max_events=200))
        bus_id = await pool.fetchval("SELECT id FROM tideflow_buses WHERE name = 'logs'")
        assert await _segment_tables(pool, "logs") == [
            f"tideflow_events_{bus_id}_0",
            f"tideflow_events_{bus_id}_1",
        ]
        for start in range(0, 450, 50):
            await store.append("logs", [ce(i) for i in range(start, start + 50)])
        # offsets 1-450 fill segments 0-4; one more segment waits ahead of need
        tables = await _segment_tables(pool, "logs")
        assert tables == [f"tideflow_events_{bus_id}_{n}" for n in range(6)]
        size_before = (await store.get_bus("logs")).size_bytes

        # keep the newest 200 (251-450): 1-100 and 101-200 go; 201-300 holds kept events
        assert await store.apply_retention() == 2
        tables = await _segment_tables(pool, "logs")
        assert tables == [f"tideflow_events_{bus_id}_{n}" for n in range(2, 6)]
        info = await store.get_bus("logs")
        assert (info.first_offset, info.last_offset, info.segment_count) == (201, 450, 4)
        assert info.size_bytes < size_before
        assert await pool.fetchval("SELECT count(*) FROM tideflow_events") == 250
        assert (await store.read("logs", 0, 1))[0].offset == 201
        # the dropped events' dedup keys went with them: their ids are new again (live tier)
        keys = "SELECT min(event_offset), count(*) FROM tideflow_event_keys WHERE bus_id = $1"
        assert tuple(await pool.fetchrow(keys, bus_id)) == (201, 250)
        acks = await store.append("logs", [ce(0), ce(250), ce(449)])
        assert [(a.offset, a.duplicate) for a in acks] == [(451, False), (251, True), (450, True)]
    finally:
        await store.stop()


async def test_one_batch_larger_than_a_segment(pool: Any) -> None:
    store = PostgresEventStore(pool, segment_size=10)
    await store.start()
    try:
        await store.create_bus("big")
        acks = await store.append("big", [ce(i) for i in range(35)])
        assert [a.offset for a in acks] == list(range(1, 36))
        assert [e.offset for e in await store.read("big", 0, 100)] == list(range(1, 36))
        assert (await store.get_bus("big")).segment_count == 5  # 4 in use, 1 ahead
    finally:
        await store.stop()


async def test_deleting_a_bus_drops_its_log(pool: Any) -> None:
    store = PostgresEventStore(pool, segment_size=10)
    await store.start()
    try:
        await store.create_bus("gone")
        await store.append("gone", [ce(i) for i in range(25)])
        gone_id = await pool.fetchval("SELECT id FROM tideflow_buses WHERE name = 'gone'")
        await store.delete_bus("gone")
        keys = "SELECT count(*) FROM tideflow_event_keys WHERE bus_id = $1"
        assert await pool.fetchval(keys, gone_id) == 0
        tables = await pool.fetch(
            "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') "
            "AND relname LIKE 'tideflow\\_events\\_%' ORDER BY relname"
        )
        default_id = await pool.fetchval("SELECT id FROM tideflow_buses WHERE name = 'default'")
        assert [t["relname"] for t in tables] == [
            f"tideflow_events_{default_id}",
            f"tideflow_events_{default_id}_0",
            f"tideflow_events_{default_id}_1",
        ]
        assert await pool.fetchval("SELECT count(*) FROM tideflow_segments") == 2  # default's
    finally:
        await store.stop()


async def test_a_started_store_applies_retention_on_its_own(pool: Any) -> None:
    clock = ManualClock()
    store = PostgresEventStore(pool, segment_size=10, clock=clock, retention_interval=60)
    await store.start()
    try:
        await store.create_bus("auto", Retention(max_events=10))
        await store.append("auto", [ce(i) for i in range(25)])
        assert (await store.get_bus("auto")).first_offset == 1
        clock.advance(60)
        for _ in range(500):
            if (await store.get_bus("auto")).first_offset > 1:
                break
            await asyncio.sleep(0.01)
        assert (await store.get_bus("auto")).first_offset == 11
    finally:
        await store.stop()
