"""Dedup on PostgreSQL (a 64-bit hash finds candidates, source and id decide); bus id caching."""

from __future__ import annotations

import asyncio
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


async def test_an_append_of_a_few_events_is_two_statements_in_its_transaction(pg_url: str) -> None:
    # The lock of the buses and the dedup probe are one statement, and a few events are
    # written with the buses' advance in one more: an append is BEGIN, those two and COMMIT.
    # Fails on the code before f866385 (find_duplicates was a statement of its own between the
    # lock and the COPY), and on that commit (the COPY, then advance_buses).
    from tideflow.db import create_pool

    logged: list[tuple[str, tuple[Any, ...]]] = []
    two = await create_pool(pg_url, min_size=2, max_size=2)
    async with two.acquire() as a, two.acquire() as b:  # every connection's statements logged
        for conn in (a, b):
            conn.add_query_logger(lambda record: logged.append((record.query, record.args)))
    store = PostgresEventStore(two)
    await store.start()
    try:
        await store.append(DEFAULT_BUS, [ce("warm")])
        for calls, new in (([ce("a")], ["a"]), ([ce("b"), ce("a")], ["b"])):
            logged.clear()
            await store.append(DEFAULT_BUS, calls)
            flush = [q for q in logged if "tideflow_buses" in q[0] or "tideflow_event_keys" in q[0]]
            assert len(flush) == 2, flush  # lock_buses (with the probe), advance_buses
            assert not any("k.bus_id = p.bus_id" in query for query, _ in logged)
            # the new events are written by that statement (its arguments), with no COPY
            assert len(flush[1][1]) == 13
            assert flush[1][1][8] == new
        acks = await store.append(DEFAULT_BUS, [ce("a"), ce("c")])
        assert [(a.offset, a.duplicate) for a in acks] == [(2, True), (4, False)]
        stored = await store.read(DEFAULT_BUS)
        assert [(e.offset, e.id) for e in stored] == [(1, "warm"), (2, "a"), (3, "b"), (4, "c")]
    finally:
        await store.stop()
        await two.close()


async def test_a_duplicate_committed_while_an_append_waits_for_the_lock_is_found(
    pool: Any, pg_url: str
) -> None:
    # Two processes' stores on one bus: the first holds the bus lock with event "x" written,
    # the second appends "x" too and waits for the lock -- its probe's snapshot is older than
    # the first's commit. It must still find "x" (probed again once the bus row moved); a
    # probe in the locking statement alone would store "x" twice.
    import asyncpg

    gate, entered = asyncio.Event(), asyncio.Event()

    async def before_commit() -> None:
        entered.set()
        await gate.wait()

    first = PostgresEventStore(pool, before_commit=before_commit)
    second = PostgresEventStore(pool)
    watcher = await asyncpg.connect(pg_url)
    await first.start()
    await second.start()
    try:
        held = asyncio.create_task(first.append(DEFAULT_BUS, [ce("x")]))
        await entered.wait()
        racing = asyncio.create_task(second.append(DEFAULT_BUS, [ce("y"), ce("x")]))
        for _ in range(1000):  # until the second's statement waits for the first's lock
            if await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            ):
                break
            await asyncio.sleep(0.005)
        else:
            raise AssertionError("the second append never waited for the bus lock")
        gate.set()
        assert [(a.offset, a.duplicate) for a in await held] == [(1, False)]
        acks = await racing
        assert [(a.offset, a.duplicate) for a in acks] == [(2, False), (1, True)]
        stored = await pool.fetchval("SELECT count(*) FROM tideflow_events WHERE ce_id = 'x'")
        assert stored == 1
    finally:
        gate.set()
        await watcher.close()
        await first.stop()
        await second.stop()
