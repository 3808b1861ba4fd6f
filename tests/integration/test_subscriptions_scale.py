"""Many subscriptions on one bus share one reading task (real PostgreSQL, no sink needed)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import asyncpg

from tideflow.eventstore.gateway import PostgresEventStore
from tideflow.triggers.dispatcher import Dispatcher
from tideflow.triggers.gateway import PostgresSubscriptions

SUBSCRIPTIONS = 300


async def test_subscriptions_cost_no_task_while_they_wait(pool: asyncpg.Pool) -> None:
    got: dict[str, list[int]] = defaultdict(list)
    done = asyncio.Event()

    def consumer(name: str) -> Any:
        async def consume(batch: list[tuple[int, Any]]) -> None:
            got[name].extend(event["data"]["n"] for _, event in batch)
            if sum(len(v) for v in got.values()) == 2 * (SUBSCRIPTIONS - 1):  # s-0 + the rest
                done.set()

        return consume

    async with PostgresEventStore(pool) as store:
        await store.create_bus("many")
        async with Dispatcher(store, PostgresSubscriptions(pool)) as dispatcher:
            await dispatcher.attach("s-0", "many", consumer("s-0"))
            tasks_with_one = len(asyncio.all_tasks())
            for i in range(1, SUBSCRIPTIONS):
                await dispatcher.attach(
                    f"s-{i}", "many", consumer(f"s-{i}"), filters=[{"exact": {"subject": str(i)}}]
                )
            # The reader's own wait helpers come and go; nothing grows per subscription.
            assert len(asyncio.all_tasks()) - tasks_with_one < 10
            events = [
                {"specversion": "1.0", "id": f"e-{i}", "source": "/t", "type": "t",
                 "subject": str(i), "data": {"n": i}}
                for i in range(1, SUBSCRIPTIONS)
            ]  # fmt: skip
            await store.append("many", events)
            async with asyncio.timeout(20):
                await done.wait()
            assert got["s-0"] == list(range(1, SUBSCRIPTIONS))  # no filter: everything
            for i in range(1, SUBSCRIPTIONS):
                assert got[f"s-{i}"] == [i]
            await dispatcher.flush()
            assert {sub.committed_offset for sub, _ in await dispatcher.list_all()} == {
                SUBSCRIPTIONS - 1
            }
