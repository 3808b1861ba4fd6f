"""The dispatcher's bus reader wakes on the event store's notifications (``Listener.watch``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from tideflow.eventstore import DEFAULT_BUS
from tideflow.eventstore.gateway import NOTIFY_CHANNEL, PostgresEventStore
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


@contextlib.asynccontextmanager
async def consuming(
    store: PostgresEventStore, pool: asyncpg.Pool, wait_timeout: float
) -> AsyncIterator[Seen]:
    """A started store and dispatcher, one consumer attached to the default bus that has
    seen one event already."""
    await store.start()
    dispatcher = Dispatcher(store, PostgresSubscriptions(pool), wait_timeout=wait_timeout)
    await dispatcher.start()
    seen = Seen()
    try:
        await asyncio.wait_for(store.listener.connected.wait(), 10)
        await dispatcher.attach("watch:consumer", DEFAULT_BUS, seen, start="latest")
        await store.append(DEFAULT_BUS, [ce(0)])
        await seen.until(1)
        yield seen
    finally:
        await dispatcher.stop()
        await store.stop()


async def test_the_reader_reads_once_per_commit_not_again_to_find_nothing(
    pool: asyncpg.Pool,
) -> None:
    # Before, every batch of events cost a second read that came back empty; the bus's
    # announced last offset tells the reader it has read everything.
    store = CountingStore(pool)
    async with consuming(store, pool, 3600) as seen:
        store.reads = 0
        for i in range(1, 21):
            await store.append(DEFAULT_BUS, [ce(i)])
            await seen.until(i + 1)
        reads = store.reads
    assert reads <= 20  # one read per commit (it was two: the second one empty)
    assert seen.offsets == list(range(seen.offsets[0], seen.offsets[0] + 21))


async def test_a_wake_up_of_the_reader_starts_no_task(pool: asyncpg.Pool) -> None:
    # The reader waited for its notification and for its workers in a task each (and a
    # timeout around the first), made and cancelled at every wait: over 100 buses, one
    # event a commit, that was 8% of the server's time. Now both set one event it awaits.
    store = PostgresEventStore(pool)
    loop = asyncio.get_running_loop()
    started: list[str] = []

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        started.append(getattr(coro, "__qualname__", "?"))
        return asyncio.Task(coro, loop=loop, **kwargs)

    async with consuming(store, pool, 3600) as seen:
        loop.set_task_factory(counting)
        try:
            for i in range(1, 21):
                await store.append(DEFAULT_BUS, [ce(i)])
                await seen.until(i + 1)
        finally:
            loop.set_task_factory(None)
    # per commit: its flush, the consumer's batch and its note, asyncpg's releases -- none
    # for the reader's waits (they were Event.wait and BusReader._watched, one each a wait)
    assert [name for name in started if name == "Event.wait" or "BusReader" in name] == []
    assert started.count("GroupCommit._flush_in_slot") == 20
    assert seen.offsets == list(range(seen.offsets[0], seen.offsets[0] + 21))


async def test_an_event_whose_notification_never_came_is_read_at_the_readers_timer(
    pool: asyncpg.Pool,
) -> None:
    # The safety net: the reader reads once a wait_timeout passed without a read, whatever
    # its bus's announced heads say.
    store = PostgresEventStore(pool)
    async with consuming(store, pool, 0.2) as seen:
        store.listener._channels[NOTIFY_CHANNEL] = []  # notifications lost from now on
        await store.append(DEFAULT_BUS, [ce(1)])
        await seen.until(2)
        await store.append(DEFAULT_BUS, [ce(2)])
        await seen.until(3)
    assert seen.offsets == list(range(seen.offsets[0], seen.offsets[0] + 3))
