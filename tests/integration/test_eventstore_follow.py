"""PostgresEventStore.follow: what this process committed, from memory, as read() returns it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tideflow.errors import BusNotFound
from tideflow.eventstore.gateway import PostgresEventStore


def ce(i: int | str, source: str = "/f") -> dict[str, object]:
    return {"specversion": "1.0", "id": str(i), "source": source, "type": "t", "data": {"n": i}}


async def test_follow_returns_what_read_returns_and_a_prefix_when_others_appended(
    pool: Any,
) -> None:
    mine, other = PostgresEventStore(pool), PostgresEventStore(pool)  # two processes
    await mine.start()
    await other.start()
    try:
        await mine.create_bus("f")
        await asyncio.gather(*(mine.append("f", [ce(n)]) for n in range(1, 6)))
        await mine.append("f", [ce(1)])  # a duplicate: nothing new to keep
        assert mine.tails.read("f", 0, 100) is not None  # answered from memory
        followed, read = await mine.follow("f", 0, 100), await mine.read("f", 0, 100)
        assert followed == read
        assert [e.offset for e in followed] == [1, 2, 3, 4, 5]
        assert followed[0].event is not read[0].event  # each read decodes its own copy
        await other.append("f", [ce(6)])  # offset 6, not in this process's run
        assert [e.offset for e in await mine.follow("f", 2, 100)] == [3, 4, 5]  # a prefix
        assert [e.offset for e in await mine.follow("f", 5, 100)] == [6]  # the database
        await mine.append("f", [ce(7)])  # offset 7: a new run
        assert mine.tails.read("f", 6, 100) is not None
        assert [e.offset for e in await mine.follow("f", 2, 100)] == [3, 4, 5, 6, 7]
        assert await mine.follow("f", 6, 100) == await mine.read("f", 6, 100)
    finally:
        await other.stop()
        await mine.stop()


async def test_a_deleted_bus_is_not_followed_from_memory(pool: Any) -> None:
    mine, other = PostgresEventStore(pool), PostgresEventStore(pool)
    await mine.start()
    await other.start()
    try:
        await mine.create_bus("gone")
        await mine.append("gone", [ce(1), ce(2)])
        await mine.delete_bus("gone")  # here
        with pytest.raises(BusNotFound):
            await mine.follow("gone", 0, 100)
        await mine.create_bus("there")
        await mine.append("there", [ce(1)])
        assert mine.tails.read("there", 0, 100) is not None
        told = mine.waiters.watch("there")
        await other.delete_bus("there")  # by another process: its notification tells
        async with asyncio.timeout(10):
            await told.wait()
        assert mine.tails.read("there", 0, 100) is None
        with pytest.raises(BusNotFound):
            await mine.follow("there", 0, 100)
    finally:
        await other.stop()
        await mine.stop()
