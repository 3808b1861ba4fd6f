"""The dispatcher's bus reader wakes on the event store's notifications (``Listener.watch``)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from tideflow.eventstore import DEFAULT_BUS
from tideflow.eventstore.gateway import PostgresEventStore
from tideflow.triggers.dispatcher import Dispatcher
from tideflow.triggers.gateway import PostgresSubscriptions


def ce(i: int) -> dict[str, Any]:
    return {"specversion": "1.0", "id": str(i), "source": "/w", "type": "t"}


class Seen:
    """An in-process consumer recording offsets, with an event per arrival."""

    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.arrived = asyncio.Event()

    async def __call__(self, batch: list[tuple[int, Any]]) -> None:
        self.offsets += [offset for offset, _ in batch]
        self.arrived.set()

    async def until(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.offsets) < count:
                self.arrived.clear()
                await self.arrived.wait()


async def test_the_reader_wakes_on_notifications_and_after_a_listener_drop(
    pg_url: str, pool: asyncpg.Pool
) -> None:
    # No periodic re-read for an hour: only a notification (or the listener's
    # fallback poll while it is down) can bring the events in time.
    store = PostgresEventStore(pool, poll_interval=0.05)
    await store.start()
    dispatcher = Dispatcher(store, PostgresSubscriptions(pool), wait_timeout=3600)
    await dispatcher.start()
    admin = await asyncpg.connect(pg_url)
    seen = Seen()
    try:
        await asyncio.wait_for(store.listener.connected.wait(), 10)
        await dispatcher.attach("watch:test", DEFAULT_BUS, seen, start="latest")
        first = await store.append(DEFAULT_BUS, [ce(1)])
        await seen.until(1)
        await store.append(DEFAULT_BUS, [ce(2), ce(3)])
        await seen.until(3)
        pid = store.listener.backend_pid
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        await store.append(DEFAULT_BUS, [ce(4)])  # while the listener is down or reconnecting
        await seen.until(4)
        await asyncio.wait_for(store.listener.connected.wait(), 10)
        await store.append(DEFAULT_BUS, [ce(5)])  # and through the new listener
        await seen.until(5)
    finally:
        await admin.close()
        await dispatcher.stop()
        await store.stop()
    start = first[0].offset
    assert seen.offsets == list(range(start, start + 5))  # each once, in order


class CountingStore(PostgresEventStore):
    """The real store, counting the reads that reach the database."""

    reads = 0

    async def read(self, bus: str, after: int = 0, limit: int = 100) -> Any:
        self.reads += 1
        return await super().read(bus, after, limit)


async def test_the_reader_reads_once_per_commit_not_again_to_find_nothing(
    pool: asyncpg.Pool,
) -> None:
    # Before, every batch of events cost a second read that came back empty; the bus's
    # announced last offset tells the reader it has read everything.
    store = CountingStore(pool)
    await store.start()
    dispatcher = Dispatcher(store, PostgresSubscriptions(pool), wait_timeout=3600)
    await dispatcher.start()
    seen = Seen()
    try:
        await asyncio.wait_for(store.listener.connected.wait(), 10)
        await dispatcher.attach("watch:count", DEFAULT_BUS, seen, start="latest")
        await store.append(DEFAULT_BUS, [ce(0)])
        await seen.until(1)
        store.reads = 0
        for i in range(1, 21):
            await store.append(DEFAULT_BUS, [ce(i)])
            await seen.until(i + 1)
        reads = store.reads
    finally:
        await dispatcher.stop()
        await store.stop()
    assert reads <= 20  # one read per commit (it was two: the second one empty)
    assert seen.offsets == list(range(seen.offsets[0], seen.offsets[0] + 21))
