"""Readers wait with LISTEN/NOTIFY, and fall back to polling when the listener drops."""

from __future__ import annotations

import asyncio

import asyncpg

from tideflow.db import create_pool
from tideflow.eventstore import DEFAULT_BUS
from tideflow.eventstore.gateway import PostgresEventStore


def ce(i: int) -> dict[str, object]:
    return {"specversion": "1.0", "id": str(i), "source": "/n", "type": "t"}


async def test_a_reader_is_woken_by_notify_from_another_process(pg_url: str, pool: object) -> None:
    # Polling once an hour: only a notification can wake the reader in time.
    reader = PostgresEventStore(pool, poll_interval=3600)
    await reader.start()
    writer_pool = await create_pool(pg_url, min_size=1, max_size=2)
    writer = PostgresEventStore(writer_pool)
    await writer.start()
    try:
        await asyncio.wait_for(reader.listener.connected.wait(), 10)
        waiting = asyncio.create_task(reader.wait_for(DEFAULT_BUS, 0, 3600))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        await writer.append(DEFAULT_BUS, [ce(1)])
        assert await asyncio.wait_for(waiting, 10) is True  # long before the hourly poll
        # a notification for another bus does not end the wait
        await writer.create_bus("other")
        waiting = asyncio.create_task(reader.wait_for(DEFAULT_BUS, 1, 3600))
        await writer.append("other", [ce(1)])
        await asyncio.sleep(0.2)
        assert not waiting.done()
        await writer.append(DEFAULT_BUS, [ce(2)])
        assert await asyncio.wait_for(waiting, 10) is True
    finally:
        await writer.stop()
        await writer_pool.close()
        await reader.stop()


async def test_readers_poll_while_the_listener_is_down(pg_url: str, pool: object) -> None:
    reader = PostgresEventStore(pool, poll_interval=0.05)
    await reader.start()
    admin = await asyncpg.connect(pg_url)
    try:
        await asyncio.wait_for(reader.listener.connected.wait(), 10)
        pid = reader.listener.backend_pid
        assert pid is not None
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        for _ in range(200):  # the listener notices the drop
            if reader.listener.backend_pid != pid:
                break
            await asyncio.sleep(0.01)
        waiting = asyncio.create_task(reader.wait_for(DEFAULT_BUS, 0, 30))
        await reader.append(DEFAULT_BUS, [ce(1)])
        assert await asyncio.wait_for(waiting, 10) is True
        # and the listener comes back on a new connection (``connected`` may still be set from
        # the old one for a moment after the drop, so wait for the new connection's pid)
        for _ in range(1000):
            if reader.listener.backend_pid not in (None, pid):
                break
            await asyncio.sleep(0.01)
        assert reader.listener.backend_pid not in (None, pid)
        # the new connection is held before its LISTENs are issued: ``connected`` follows them
        await asyncio.wait_for(reader.listener.connected.wait(), 10)
    finally:
        await admin.close()
        await reader.stop()


async def test_the_store_knows_each_bus_last_offset_from_its_notifications(
    pg_url: str, pool: object
) -> None:
    store = PostgresEventStore(pool, poll_interval=0.05)
    await store.start()
    admin = await asyncpg.connect(pg_url)
    try:
        await asyncio.wait_for(store.listener.connected.wait(), 10)
        placed = await store.append(DEFAULT_BUS, [ce(1), ce(2)])
        for _ in range(500):  # the notification arrives after the commit
            if store.heads.head(DEFAULT_BUS) == placed[-1].offset:
                break
            await asyncio.sleep(0.01)
        assert store.heads.head(DEFAULT_BUS) == placed[-1].offset
        await store.create_bus("heads")  # announced with 0: nothing known of it
        await store.append("heads", [ce(1)])
        for _ in range(500):
            if store.heads.head("heads") == 1:
                break
            await asyncio.sleep(0.01)
        assert store.heads.head("heads") == 1
        pid = store.listener.backend_pid
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        for _ in range(500):  # what commits while it is down is not announced: unknown again
            if store.heads.head(DEFAULT_BUS) is None:
                break
            await asyncio.sleep(0.01)
        assert store.heads.head(DEFAULT_BUS) is None
        await asyncio.wait_for(store.listener.connected.wait(), 10)
        assert store.heads.head(DEFAULT_BUS) is None
    finally:
        await admin.close()
        await store.stop()
