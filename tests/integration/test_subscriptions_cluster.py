"""Two dispatchers on one database share the subscriptions under cluster leases.

Each dispatcher runs the subscriptions its cluster member holds; changes made
through one process reach the one running the subscription when its member
ticks (called directly here, so nothing depends on timing); a commit made
under a lease that was taken since is refused (fencing); a clean stop hands
everything over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from tests.support.sink import Sink, running_sink
from tideflow.cluster.gateway import PostgresCluster
from tideflow.cluster.membership import Cluster, ClusterOptions
from tideflow.eventstore.gateway import PostgresEventStore
from tideflow.triggers.dispatcher import Dispatcher
from tideflow.triggers.gateway import PostgresSubscriptions


def ev(i: int) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"e-{i}", "source": "/s", "type": "t", "data": i}


def member(store: PostgresEventStore, pool: asyncpg.Pool, node: str) -> tuple[Dispatcher, Cluster]:
    cluster = Cluster(PostgresCluster(pool), node, options=ClusterOptions(lease=30))
    dispatcher = Dispatcher(store, PostgresSubscriptions(pool), ownership=cluster)
    cluster.add(dispatcher)
    return dispatcher, cluster


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while not (result := await check()):  # noqa: ASYNC110 - the state is in the database
            await asyncio.sleep(0.01)
    return result


async def settle(*clusters: Cluster) -> None:
    for _ in range(2):
        for cluster in clusters:
            await cluster.tick()


async def test_two_processes_split_the_subscriptions_and_hand_them_over(
    pool: asyncpg.Pool,
) -> None:
    async with PostgresEventStore(pool) as store, running_sink() as sink:
        await store.create_bus("orders")
        (one, a), (two, b) = member(store, pool, "a"), member(store, pool, "b")
        for dispatcher, cluster in ((one, a), (two, b)):
            await dispatcher.start()
            await cluster.gateway.join(cluster.node_id, None, 30)
        subs = [await two.create({"bus": "orders", "sink": f"{sink.url}/{i}"}) for i in range(4)]
        assert all(two.committed(s.id) is None for s in subs)  # nobody owns them yet
        await settle(a, b)
        runs = [[s.id for s in subs if d.committed(s.id) is not None] for d in (one, two)]
        assert sorted(len(r) for r in runs) == [2, 2]
        assert not set(runs[0]) & set(runs[1])

        await store.append("orders", [ev(1), ev(2)])
        for i in range(4):
            await sink.wait_for(_received(sink, f"/{i}", ["e-1", "e-2"]))

        # A change made through the process that does not run the subscription.
        theirs = next(s for s in subs if one.committed(s.id) is not None)
        await eventually(lambda: _committed(two, theirs.id, 2))
        await two.reset(theirs.id, offset=1)  # replay everything
        await settle(a, b)  # the owner restarts it from the reset offset
        path = f"/{subs.index(theirs)}"
        await sink.wait_for(lambda: sink.ids(path) == ["e-1", "e-2", "e-1", "e-2"])

        await one.stop()  # not through the cluster: b must not wait for a's leases
        await a.stop()
        await b.tick()
        assert all(two.committed(s.id) is not None for s in subs)
        await store.append("orders", [ev(3)])
        for i in range(4):
            await sink.wait_for(_received(sink, f"/{i}", ["e-3"], last=True))
        await b.stop()
        await two.stop()
        assert sink.ids().count("e-3") == 4


def _received(sink: Sink, path: str, ids: list[str], *, last: bool = False) -> Callable[[], bool]:
    def check() -> bool:
        got = sink.ids(path)
        return (got[-len(ids) :] if last else got) == ids

    return check


async def _committed(dispatcher: Dispatcher, sid: str, offset: int) -> bool:
    return (await dispatcher.get(sid))[0].committed_offset >= offset


async def test_a_commit_under_a_lease_taken_since_is_refused(pool: asyncpg.Pool) -> None:
    async with PostgresEventStore(pool) as store, running_sink() as sink:
        await store.create_bus("orders")
        one, a = member(store, pool, "a")
        await one.start()
        await a.gateway.join("a", None, 30)
        sub = await one.create({"bus": "orders", "sink": sink.url})
        await a.tick()
        await store.append("orders", [ev(1)])
        await eventually(lambda: _committed(one, sub.id, 1))
        # Another process takes the unit (as after a's lease expired); a does not know yet.
        await a.gateway.acquire("a-next-life", [one.unit(sub.id)], 30)
        await store.append("orders", [ev(2)])
        await sink.wait_for(lambda: sink.ids() == ["e-1", "e-2"])
        await one.flush()
        found = await PostgresSubscriptions(pool).get(sub.id)
        assert found.committed_offset == 1  # the stale owner's commit did not count
        await one.stop()
