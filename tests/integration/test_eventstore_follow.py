"""PostgresEventStore.follow: what this process committed, from memory, as read() returns it."""

from __future__ import annotations

import asyncio
import contextlib
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


class _SlowReply:
    """A transaction whose COMMIT's reply is held back until ``reply`` is set."""

    def __init__(self, transaction: Any, reply: asyncio.Event) -> None:
        self._transaction, self._reply = transaction, reply

    async def __aenter__(self) -> Any:
        return await self._transaction.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        await self._transaction.__aexit__(*exc)  # committed: its notification is sent
        await self._reply.wait()


class _Conn:
    def __init__(self, conn: Any, reply: asyncio.Event) -> None:
        self._conn, self._reply = conn, reply

    def transaction(self) -> _SlowReply:
        return _SlowReply(self._conn.transaction(), self._reply)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class SlowReplyStore(PostgresEventStore):
    """The real store, its commits' replies held back; counting the reads of the database."""

    def __init__(self, pool: Any) -> None:
        super().__init__(pool)
        self.reply = asyncio.Event()
        self.reply.set()
        self.reads = 0

    def _connection(self) -> Any:
        @contextlib.asynccontextmanager
        async def connection() -> Any:
            async with super(SlowReplyStore, self)._connection() as conn:
                yield _Conn(conn, self.reply)

        return connection()

    async def read(self, bus: str, after: int = 0, limit: int = 100) -> Any:
        self.reads += 1
        return await super().read(bus, after, limit)


async def test_a_follower_told_before_the_commit_replied_waits_for_it_not_the_database(
    pool: Any,
) -> None:
    # The commit's notification reached the listener before the COMMIT's own reply reached
    # the flush (9-23% of the followers' reads over 100 buses): the follower read the
    # database; now it waits for the reply and reads the events from memory.
    store = SlowReplyStore(pool)
    await store.start()
    try:
        await store.create_bus("r")
        await asyncio.wait_for(store.listener.connected.wait(), 10)
        told = store.waiters.watch("r")
        store.reply.clear()
        appending = asyncio.ensure_future(store.append("r", [ce(1), ce(2)]))
        async with asyncio.timeout(10):  # committed (its notification), the reply held back
            while store.heads.head("r") != 2:  # not the bus's creation's notification
                told.clear()
                await told.wait()
        assert not appending.done()
        following = asyncio.ensure_future(store.follow("r", 0, 100))
        for _ in range(5):  # the follower runs up to its wait (or its read, as before)
            await asyncio.sleep(0)
        store.reply.set()
        followed = await asyncio.wait_for(following, 10)
        await appending
        assert [e.offset for e in followed] == [1, 2]
        assert store.reads == 0
        assert followed == await store.read("r", 0, 100)
    finally:
        store.reply.set()
        await store.stop()
