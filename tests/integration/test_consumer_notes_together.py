"""The consumers of a bus handed the same events note them in one statement.

Each in-process consumer notes the events it is handed (``tideflow_consumer_attempts``)
before it runs, so that a process dying on an event is counted (the poisoned-event
quarantine). A bus's reader hands the same events to every consumer of the bus at once --
the workflow subscriber alone has four partitions -- and the notes of those calls now go in
one statement instead of one round trip each. Real PostgreSQL; the statements are counted
with asyncpg's query logger on the pool's connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tideflow.db import SERVER_SETTINGS
from tideflow.errors import StoreError
from tideflow.eventstore import DEFAULT_BUS
from tideflow.eventstore.gateway import PostgresEventStore
from tideflow.triggers.dispatcher import Dispatcher
from tideflow.triggers.gateway import PostgresSubscriptions

NOTE = "INSERT INTO tideflow_consumer_attempts (subscription_id, event_offset)"
"""How the statement noting events for consumers begins (not ``begin_attempt``'s)."""


class Statements:
    """The statements the pool's connections ran, as asyncpg's query logger saw them."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    async def init(self, conn: asyncpg.Connection) -> None:
        conn.add_query_logger(lambda logged: self.queries.append(logged.query))

    def notes(self) -> int:
        return sum(NOTE in query for query in self.queries)


@pytest.fixture
async def counted(pg_url: str) -> AsyncIterator[tuple[asyncpg.Pool, Statements]]:
    statements = Statements()
    pool = await asyncpg.create_pool(
        pg_url, min_size=1, max_size=8, server_settings=SERVER_SETTINGS, init=statements.init
    )
    try:
        yield pool, statements
    finally:
        await pool.close()


def ce(i: int) -> dict[str, Any]:
    return {"specversion": "1.0", "id": str(i), "source": "/w", "type": "t"}


class Noting:
    """A consumer that records, as it runs, whether its own note was in the database."""

    def __init__(self, pool: asyncpg.Pool, subscription_id: str) -> None:
        self.pool = pool
        self.subscription_id = subscription_id
        self.noted_before: list[bool] = []
        self.done = asyncio.Event()

    async def __call__(self, batch: list[tuple[int, Any]]) -> None:
        found = await self.pool.fetchval(
            "SELECT count(*) FROM tideflow_consumer_attempts"
            " WHERE subscription_id = $1 AND event_offset = $2",
            self.subscription_id,
            batch[0][0],
        )
        self.noted_before.append(found == 1)
        self.done.set()


async def test_four_consumers_of_a_bus_note_an_event_in_one_statement(
    counted: tuple[asyncpg.Pool, Statements],
) -> None:
    pool, statements = counted
    store = PostgresEventStore(pool)
    await store.start()
    dispatcher = Dispatcher(store, PostgresSubscriptions(pool), wait_timeout=3600)
    await dispatcher.start()
    consumers = [Noting(pool, f"notes.{i}") for i in range(4)]
    try:
        await asyncio.wait_for(store.listener.connected.wait(), 10)
        for consumer in consumers:
            await dispatcher.attach(consumer.subscription_id, DEFAULT_BUS, consumer)
        before = statements.notes()
        await store.append(DEFAULT_BUS, [ce(1)])
        async with asyncio.timeout(10):
            for consumer in consumers:
                await consumer.done.wait()
        notes = statements.notes() - before
    finally:
        await dispatcher.stop()
        await store.stop()
    assert [c.noted_before for c in consumers] == [[True]] * 4  # each noted before it ran
    assert notes == 1  # one statement for the four (it was four)


async def test_calls_of_one_turn_share_a_statement_and_each_finds_its_own_crash(
    counted: tuple[asyncpg.Pool, Statements],
) -> None:
    pool, statements = counted
    subscriptions = PostgresSubscriptions(pool)
    # "b" was handed offset 5 by a process that died before it finished with it
    await pool.execute(
        "INSERT INTO tideflow_consumer_attempts (subscription_id, event_offset) VALUES ('b', 5)"
    )
    before = statements.notes()
    fresh = await asyncio.gather(
        subscriptions.begin_attempts("a", [5, 6]),
        subscriptions.begin_attempts("b", [5, 6]),
        subscriptions.begin_attempts("c", [7, 7]),
    )
    assert statements.notes() - before == 1
    assert list(fresh) == [True, False, True]  # only "b" goes one event at a time, counting
    rows = await pool.fetch(
        "SELECT subscription_id, event_offset FROM tideflow_consumer_attempts ORDER BY 1, 2"
    )
    assert [tuple(row) for row in rows] == [("a", 5), ("a", 6), ("b", 5), ("b", 6), ("c", 7)]
    # the same pair twice in one statement is the first call's, as if one after the other
    again = await asyncio.gather(
        subscriptions.begin_attempts("d", [1]), subscriptions.begin_attempts("d", [1])
    )
    assert list(again) == [True, False]


async def test_a_cancelled_call_leaves_the_others_noted(
    counted: tuple[asyncpg.Pool, Statements],
) -> None:
    pool, _ = counted
    subscriptions = PostgresSubscriptions(pool)
    gone = asyncio.ensure_future(subscriptions.begin_attempts("gone", [1]))
    kept = asyncio.ensure_future(subscriptions.begin_attempts("kept", [1]))
    await asyncio.sleep(0)  # both joined the statement, which is under way
    gone.cancel()
    assert await kept is True
    assert gone.cancelled()


async def test_a_failed_statement_fails_every_call_in_it(
    counted: tuple[asyncpg.Pool, Statements],
) -> None:
    pool, _ = counted
    subscriptions = PostgresSubscriptions(pool)
    await pool.execute("ALTER TABLE tideflow_consumer_attempts RENAME TO attempts_away")
    results = await asyncio.gather(
        subscriptions.begin_attempts("a", [1]),
        subscriptions.begin_attempts("b", [1]),
        return_exceptions=True,
    )
    assert [type(r) for r in results] == [StoreError, StoreError]
    await pool.execute("ALTER TABLE attempts_away RENAME TO tideflow_consumer_attempts")
    assert await subscriptions.begin_attempts("a", [1]) is True  # the next statement works
