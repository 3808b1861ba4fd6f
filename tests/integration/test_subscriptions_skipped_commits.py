"""Offsets that moved only past skipped events are committed at the slower interval."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from tideflow.eventstore import DEFAULT_BUS
from tideflow.eventstore.gateway import PostgresEventStore
from tideflow.testing import ManualClock
from tideflow.triggers.dispatcher import Dispatcher
from tideflow.triggers.gateway import PostgresSubscriptions, Progress

TICK = 0.05


class CountingSubscriptions(PostgresSubscriptions):
    """The real gateway, keeping what each offset commit wrote."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.commits: list[list[Progress]] = []

    async def commit(self, progress: Sequence[Progress], now: datetime) -> None:
        await super().commit(progress, now)
        self.commits.append(list(progress))


async def until(condition: Callable[[], bool]) -> None:
    """Until ``condition()`` (the dispatcher's tasks run meanwhile)."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 -- no event to wait for: the loop polls
            await asyncio.sleep(0)


async def tick(clock: ManualClock) -> None:
    """One commit interval; returns once the commit loop sleeps again (done with it)."""
    clock.advance(TICK)
    await until(lambda: any(abs(t - clock.monotonic() - TICK) < 1e-9 for t, _ in clock._sleepers))


def ce(i: int, kind: str) -> dict[str, Any]:
    return {"specversion": "1.0", "id": str(i), "source": "/s", "type": kind}


async def test_an_offset_past_skipped_events_only_waits_for_the_slower_commit(
    pool: asyncpg.Pool,
) -> None:
    # 100 subscriptions that match nothing on 100 busy buses were 100 rows written every
    # 50 ms (and 100 progress records built): now every second; what they deliver, as before.
    clock = ManualClock()
    subscriptions = CountingSubscriptions(pool)
    got: list[int] = []
    async with PostgresEventStore(pool) as store:
        dispatcher = Dispatcher(
            store,
            subscriptions,
            clock=clock,
            commit_interval=TICK,
            skipped_commit_interval=20 * TICK,
            wait_timeout=3600,
            sync_interval=3600,  # the commit loop alone sleeps on the clock
        )
        await dispatcher.start()
        try:

            async def consumer(batch: list[tuple[int, Any]]) -> None:
                got.extend(offset for offset, _ in batch)

            sub = await dispatcher.attach(
                "skip:wanted", DEFAULT_BUS, consumer, filters=[{"exact": {"type": "wanted"}}]
            )
            await tick(clock)  # the attach's own first commit, if any, is done
            subscriptions.commits.clear()
            appended = await store.append(DEFAULT_BUS, [ce(1, "other"), ce(2, "other")])
            skipped = appended[-1].offset
            await until(lambda: dispatcher.committed(sub.id) == skipped)
            for _ in range(18):
                await tick(clock)
            assert subscriptions.commits == []  # skipped only: not yet
            await tick(clock)
            await tick(clock)
            written = [
                (p.subscription_id, p.committed_offset, p.delivered)
                for commit in subscriptions.commits
                for p in commit
            ]
            assert written == [("skip:wanted", skipped, 0)]
            subscriptions.commits.clear()
            wanted = (await store.append(DEFAULT_BUS, [ce(3, "wanted")]))[0].offset
            await until(lambda: got == [wanted] and dispatcher.committed(sub.id) == wanted)
            await tick(clock)  # delivered: committed at the next interval, as before
            assert [
                (p.committed_offset, p.delivered) for c in subscriptions.commits for p in c
            ] == [(wanted, 1)]
        finally:
            await dispatcher.stop()
        found = await subscriptions.get(sub.id)
    assert found.committed_offset == wanted
