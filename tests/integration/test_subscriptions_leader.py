"""Two dispatchers on one database: one runs the subscriptions, the other stands by.

Both serve the API; changes made through the standby reach the leader at its
next sync (called directly here, so nothing depends on timing), a commit from
before a reset cannot undo it, and the standby takes over when the leader stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from tests.support.sink import running_sink
from tideflow.eventstore.gateway import PostgresEventStore
from tideflow.triggers.dispatcher import Dispatcher
from tideflow.triggers.gateway import PostgresSubscriptions


def ev(i: int) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"e-{i}", "source": "/s", "type": "t", "data": i}


def dispatcher(store: PostgresEventStore, pool: asyncpg.Pool) -> Dispatcher:
    return Dispatcher(store, PostgresSubscriptions(pool), sync_interval=3600)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while not (result := await check()):  # noqa: ASYNC110 - the state is in the database
            await asyncio.sleep(0.01)
    return result


async def test_one_leader_delivers_and_the_standby_takes_over(pool: asyncpg.Pool) -> None:
    async with PostgresEventStore(pool) as store, running_sink() as sink:
        await store.create_bus("orders")
        leader, standby = dispatcher(store, pool), dispatcher(store, pool)
        await leader.start()
        await standby.start()
        assert (leader.leader.held, standby.leader.held) == (True, False)

        sub = await standby.create({"bus": "orders", "sink": sink.url})  # via the standby
        assert standby.committed(sub.id) is None  # it does not run it
        await leader.sync()
        assert leader.committed(sub.id) == 0
        await store.append("orders", [ev(1)])
        await sink.wait_for(lambda: sink.ids() == ["e-1"])

        async def committed(d: Dispatcher, offset: int) -> bool:
            return (await d.get(sub.id))[0].committed_offset >= offset

        await eventually(lambda: committed(leader, 1))
        await standby.pause(sub.id)
        await leader.sync()
        assert leader.committed(sub.id) is None
        await store.append("orders", [ev(2)])
        await standby.resume(sub.id)
        await leader.sync()
        await eventually(lambda: committed(leader, 2))
        assert sink.ids() == ["e-1", "e-2"]

        await standby.reset(sub.id, offset=1)  # replay everything
        await leader.sync()  # its commit from before the reset is ignored
        await sink.wait_for(lambda: len(sink.ids()) == 4)
        assert sorted(sink.ids()[2:]) == ["e-1", "e-2"]

        await leader.stop()
        await standby.sync()
        assert standby.leader.held
        await store.append("orders", [ev(3)])
        await sink.wait_for(lambda: "e-3" in sink.ids())
        await eventually(lambda: committed(standby, 3))
        await standby.stop()
        assert sink.ids().count("e-3") == 1
