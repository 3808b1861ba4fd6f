"""A sink that never answers costs only its own subscription's connections.

Real PostgreSQL, two real uvicorn sinks on 127.0.0.1: one hangs on every
request, the other answers at once. Each subscription has its own small
connection pool, so the hanging one filling its pool leaves the healthy one's
deliveries untouched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.support.sink import HANG, Sink, running_sink
from tideflow.errors import BusNotFound
from tideflow.eventstore.gateway import PostgresEventStore
from tideflow.timer.service import TimerService
from tideflow.triggers.delivery import HttpSender
from tideflow.triggers.dispatcher import Dispatcher
from tideflow.triggers.gateway import PostgresSubscriptions

CONNECTIONS = 2


def ev(i: int) -> dict[str, object]:
    return {"specversion": "1.0", "id": f"e-{i}", "source": "/t", "type": "com.example.t"}


@pytest.fixture
async def dispatcher(pool: asyncpg.Pool) -> AsyncIterator[Dispatcher]:
    async with PostgresEventStore(pool) as store:
        await store.create_bus("slow")
        await store.create_bus("orders")
        sender = HttpSender(connections=CONNECTIONS)
        dispatcher = Dispatcher(
            store, PostgresSubscriptions(pool), TimerService(pool), sender=sender
        )
        await dispatcher.start()
        try:
            yield dispatcher
        finally:
            await dispatcher.stop()


async def test_a_hanging_sink_does_not_delay_or_dead_letter_another_subscription(
    dispatcher: Dispatcher,
) -> None:
    async with running_sink() as hanging, running_sink() as healthy:
        hanging.plan = lambda path, headers, attempt: HANG
        await dispatcher.create(
            {
                "bus": "slow",
                "sink": hanging.url,
                "delivery": {"maxInFlight": 8, "timeout": "PT60S", "retry": 0},
            }
        )
        await dispatcher.create(
            {"bus": "orders", "sink": healthy.url, "delivery": {"timeout": "PT1S", "retry": 0}}
        )
        await dispatcher.store.append("slow", [ev(i) for i in range(8)])
        await hanging.wait_for(lambda: hanging.in_flight == CONNECTIONS)
        await dispatcher.store.append("orders", [ev(i) for i in range(5)])
        await _received(healthy, 5)
        assert sorted(healthy.ids(ok=True)) == [f"e-{i}" for i in range(5)]
        assert hanging.in_flight == CONNECTIONS  # its own pool's limit, no more
        assert await _dead_letters(dispatcher) == []


async def _dead_letters(dispatcher: Dispatcher) -> list[object]:
    try:
        return list(await dispatcher.store.read("orders.deadletter"))
    except BusNotFound:  # created on the first dead letter
        return []


async def _received(sink: Sink, count: int) -> None:
    await sink.wait_for(lambda: len(sink.received) >= count, timeout=20)
