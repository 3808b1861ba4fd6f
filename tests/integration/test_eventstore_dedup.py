"""Dedup on PostgreSQL (a 64-bit hash finds candidates, source and id decide); bus id caching."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tideflow.errors import BusNotFound
from tideflow.eventstore import DEFAULT_BUS
from tideflow.eventstore.codec import key_hash
from tideflow.eventstore.gateway import PostgresEventStore


def ce(i: str, source: str = "/d") -> dict[str, object]:
    return {"specversion": "1.0", "id": i, "source": source, "type": "t"}


async def test_a_hash_collision_is_not_a_duplicate(pool: Any) -> None:
    store = PostgresEventStore(pool)
    await store.start()
    try:
        await store.append(DEFAULT_BUS, [ce("a")])
        # Forge a stored event whose hash equals that of ("/d", "b"): a collision.
        bus_id = await pool.fetchval("SELECT id FROM tideflow_buses WHERE name = 'default'")
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO tideflow_events VALUES ($1, 2, '/other', 'x', $2, $3, '{}')",
                bus_id,
                key_hash("/d", "b"),
                datetime.now(UTC),
            )
            await conn.execute(  # and its dedup key, as an append writes it
                "INSERT INTO tideflow_event_keys VALUES ($1, $2, 2)", bus_id, key_hash("/d", "b")
            )
            await conn.execute("UPDATE tideflow_buses SET next_offset = 3 WHERE id = $1", bus_id)
        acks = await store.append(DEFAULT_BUS, [ce("b"), ce("a")])
        assert [(a.offset, a.duplicate) for a in acks] == [(3, False), (1, True)]
        # a key whose event is gone (its segment dropped) is no duplicate either
        await pool.execute("INSERT INTO tideflow_event_keys VALUES ($1, $2, 99)", bus_id, 7)
        await pool.execute(
            "UPDATE tideflow_event_keys SET event_offset = 99 WHERE ce_key = $1",
            key_hash("/d", "a"),
        )
        acks = await store.append(DEFAULT_BUS, [ce("a"), ce("b")])
        assert [(a.offset, a.duplicate) for a in acks] == [(4, False), (3, True)]
    finally:
        await store.stop()


def test_key_hash_is_stable_and_separates_fields() -> None:
    assert key_hash("/s", "1") == -2749391681865558830  # pinned: stored hashes never change
    assert key_hash("/s", "1") != key_hash("/s1", "")
    assert -(2**63) <= key_hash("a", "b") < 2**63


async def test_reads_follow_a_bus_recreated_by_another_process(pool: Any) -> None:
    reader, other = PostgresEventStore(pool), PostgresEventStore(pool)
    await reader.start()
    await other.start()
    try:
        await other.create_bus("again")
        await other.append("again", [ce("old-1"), ce("old-2")])
        assert [e.id for e in await reader.read("again")] == ["old-1", "old-2"]  # id cached
        await other.delete_bus("again")
        await other.create_bus("again")  # a new id: the reader's cached one is stale
        await other.append("again", [ce("new-1")])
        assert [e.id for e in await reader.read("again")] == ["new-1"]
        assert (await reader.get("again", 1)).id == "new-1"
        await other.delete_bus("again")
        with pytest.raises(BusNotFound):
            await reader.read("again")
    finally:
        await reader.stop()
        await other.stop()
