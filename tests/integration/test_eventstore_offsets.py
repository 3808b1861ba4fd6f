"""Offsets stay gap-free in commit order with concurrent writers and slow commits.

Eight writers, each a separate store with its own pool (as eight processes
would be), append concurrently and hold every transaction open for a random
time before commit. Readers poll "offset > cursor" all along. If an offset
could commit after a higher one, a reader would jump over it; the readers
check that every read continues exactly at cursor + 1.
"""

from __future__ import annotations

import asyncio
import random

from tideflow.db import create_pool
from tideflow.eventstore import DEFAULT_BUS
from tideflow.eventstore.gateway import PostgresEventStore

WRITERS = 8
APPENDS_PER_WRITER = 15


def ce(writer: int, n: int, k: int) -> dict[str, object]:
    return {"specversion": "1.0", "id": f"{writer}-{n}-{k}", "source": "/w", "type": "t"}


async def _writer(pg_url: str, writer: int, rng: random.Random) -> list[int]:
    async def slow_commit() -> None:
        await asyncio.sleep(rng.uniform(0, 0.02))

    pool = await create_pool(pg_url, min_size=1, max_size=2)
    store = PostgresEventStore(pool, segment_size=25, before_commit=slow_commit)
    await store.start()
    offsets = []
    try:
        for n in range(APPENDS_PER_WRITER):
            events = [ce(writer, n, k) for k in range(rng.randint(1, 4))]
            acks = await store.append(DEFAULT_BUS, events)
            assert not any(a.duplicate for a in acks)
            offsets += [a.offset for a in acks]
            await asyncio.sleep(rng.uniform(0, 0.005))
    finally:
        await store.stop()
        await pool.close()
    return offsets


async def _reader(store: PostgresEventStore, done: asyncio.Event) -> list[int]:
    seen: list[int] = []
    cursor = 0
    while True:
        finished = done.is_set()  # read once more after the writers are done
        for event in await store.read(DEFAULT_BUS, cursor, 7):
            assert event.offset == cursor + 1, f"reader skipped from {cursor} to {event.offset}"
            cursor = event.offset
            seen.append(cursor)
        if finished and not await store.read(DEFAULT_BUS, cursor, 1):
            return seen
        await asyncio.sleep(0)


async def test_no_reader_skips_an_event_that_committed_late(pg_url: str, pool: object) -> None:
    observer = PostgresEventStore(pool, segment_size=25)
    await observer.start()
    done = asyncio.Event()
    readers = [asyncio.create_task(_reader(observer, done)) for _ in range(3)]
    rngs = [random.Random(seed) for seed in range(WRITERS)]
    written = await asyncio.gather(*(_writer(pg_url, w, rngs[w]) for w in range(WRITERS)))
    done.set()
    seen = await asyncio.gather(*readers)
    total = sum(len(offsets) for offsets in written)
    all_offsets = sorted(o for offsets in written for o in offsets)
    assert all_offsets == list(range(1, total + 1))
    for offsets in written:  # one writer's appends commit in its own order
        assert offsets == sorted(offsets)
    for reader_seen in seen:
        assert reader_seen == list(range(1, total + 1))
    events = await observer.read(DEFAULT_BUS, 0, total + 10)
    assert len({e.id for e in events}) == total
    info = await observer.get_bus(DEFAULT_BUS)
    assert info.last_offset == total
    await observer.stop()
