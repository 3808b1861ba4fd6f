"""Membership and leases on a real database: fair share, hand-over, takeover, fencing.

Each test drives :meth:`Cluster.tick` itself (no heartbeat loop), so nothing
depends on timing except lease expiry, which is the database's own clock.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tideflow.cluster.gateway import PostgresCluster
from tideflow.cluster.membership import Cluster, ClusterOptions
from tideflow.errors import StoreError

UNITS = {f"subscription:s{i:02d}" for i in range(12)}


class Owner:
    """Records what it was given and still runs."""

    prefix = "subscription:"

    def __init__(self, units: set[str]) -> None:
        self.units = units
        self.running: dict[str, int] = {}

    async def refresh(self) -> set[str]:
        return set(self.units)

    async def gained(self, unit: str, token: int) -> None:
        assert unit not in self.running
        self.running[unit] = token

    async def lost(self, unit: str) -> None:
        del self.running[unit]


def member(pool: asyncpg.Pool, node: str, lease: float = 30.0) -> tuple[Cluster, Owner]:
    cluster = Cluster(
        PostgresCluster(pool), node, options=ClusterOptions(heartbeat=0.1, lease=lease)
    )
    owner = Owner(UNITS)
    cluster.add(owner)
    return cluster, owner


async def settle(*clusters: Cluster) -> None:
    for _ in range(3):
        for cluster in clusters:
            await cluster.tick()


async def test_three_processes_own_a_third_each_and_none_twice(pool: asyncpg.Pool) -> None:
    (a, oa), (b, ob), (c, oc) = (member(pool, n) for n in "abc")
    await a.gateway.join("a", None, 30)
    await a.tick()
    assert set(oa.running) == UNITS  # alone: everything
    for cluster in (b, c):
        await cluster.gateway.join(cluster.node_id, None, 30)
    await settle(a, b, c)
    assert [len(o.running) for o in (oa, ob, oc)] == [4, 4, 4]
    assert set(oa.running) | set(ob.running) | set(oc.running) == UNITS
    assert a.held() == oa.running


async def test_a_clean_stop_hands_its_units_over_at_once(pool: asyncpg.Pool) -> None:
    (a, oa), (b, ob) = member(pool, "a"), member(pool, "b")
    for cluster in (a, b):
        await cluster.gateway.join(cluster.node_id, None, 30)
    await settle(a, b)
    moved = dict(ob.running)
    await b.stop()
    assert ob.running == {}
    await a.tick()
    assert set(oa.running) == UNITS
    assert all(oa.running[u] == token + 1 for u, token in moved.items())  # fenced anew


async def test_a_silent_process_is_taken_over_after_its_lease_and_fenced(
    pool: asyncpg.Pool,
) -> None:
    (a, oa), (b, ob) = member(pool, "a", lease=0.5), member(pool, "b", lease=0.5)
    for cluster in (a, b):
        await cluster.gateway.join(cluster.node_id, None, 0.5)
    await settle(a, b)
    assert len(ob.running) == 6
    # b stops heartbeating (as if killed); a takes over once b's leases expired.
    async with asyncio.timeout(10):
        while len(oa.running) < len(UNITS):
            await asyncio.sleep(0.05)
            await a.tick()
    # b comes back: its heartbeat shows it lost every unit; it stops them, then gets a share.
    await b.tick()
    await settle(a, b)
    assert len(oa.running) == len(ob.running) == 6
    assert set(oa.running) | set(ob.running) == UNITS


async def test_a_restarted_process_takes_its_own_units_back_at_once(pool: asyncpg.Pool) -> None:
    (a, oa), (b, _) = member(pool, "a"), member(pool, "b")
    for cluster in (a, b):
        await cluster.gateway.join(cluster.node_id, None, 30)
    await settle(a, b)
    before = dict(oa.running)
    again, owner = member(pool, "a")  # the same identity, a new life (the old one is gone)
    await again.gateway.join("a", None, 30)
    await again.tick()
    assert set(owner.running) == set(before)
    assert all(owner.running[u] == before[u] + 1 for u in before)


async def _refuse_releases(pool: asyncpg.Pool, refuse: bool) -> None:
    """Make the database refuse (or take again) every release of a lease, as a deadlock or
    a dropped connection would: a real error of the real statement."""
    async with pool.acquire() as conn:
        if refuse:
            await conn.execute(
                """
                CREATE FUNCTION refuse_release() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION 'release refused'; END $$;
                CREATE TRIGGER refuse_release BEFORE UPDATE ON tideflow_cluster_leases
                FOR EACH ROW WHEN (NEW.owner IS NULL) EXECUTE FUNCTION refuse_release();
                """
            )
        else:
            await conn.execute(
                "DROP TRIGGER refuse_release ON tideflow_cluster_leases;"
                "DROP FUNCTION refuse_release();"
            )


async def test_units_stopped_for_a_hand_over_whose_release_failed_are_handed_over_next(
    pool: asyncpg.Pool,
) -> None:
    (a, oa), (b, ob) = member(pool, "a"), member(pool, "b")
    await a.gateway.join("a", None, 30)
    await a.tick()
    assert set(oa.running) == UNITS
    await b.gateway.join("b", None, 30)
    # a stops the half the plan gives b, then its release fails (a deadlock, a lost connection).
    await _refuse_releases(pool, True)
    with pytest.raises(StoreError, match="release refused"):
        await a.tick()
    assert len(oa.running) == 6
    await _refuse_releases(pool, False)
    # a's leases of the units it stopped are not kept (renewed by its heartbeat, never let go
    # again: b would never get its share, and nobody would run them).
    await settle(a, b)
    assert len(oa.running) == len(ob.running) == 6
    assert set(oa.running) | set(ob.running) == UNITS
    view = await a.gateway.view()
    assert view.owners() == {**dict.fromkeys(oa.running, "a"), **dict.fromkeys(ob.running, "b")}


async def test_a_restarted_process_lets_go_of_the_units_of_its_last_life_it_does_not_get_back(
    pool: asyncpg.Pool,
) -> None:
    (a, oa), (b, ob) = member(pool, "a"), member(pool, "b")
    for cluster in (a, b):
        await cluster.gateway.join(cluster.node_id, None, 30)
    await settle(a, b)
    assert len(oa.running) == 6
    # a dies without a word (its leases stay a's), c joins, a comes back under its identity:
    # it takes back four of its six, and the other two go to c at once.
    c, oc = member(pool, "c")
    again, owner = member(pool, "a")
    for cluster in (c, again):
        await cluster.gateway.join(cluster.node_id, None, 30)
    await settle(again, b, c)
    assert [len(o.running) for o in (owner, ob, oc)] == [4, 4, 4]
    assert set(owner.running) < set(oa.running)
    view = await c.gateway.view()
    expected = {n: set(o.running) for n, o in (("a", owner), ("b", ob), ("c", oc))}
    assert {n: {u for u, o in view.owners().items() if o == n} for n in "abc"} == expected


async def test_taking_units_does_not_lock_those_another_process_holds(pool: asyncpg.Pool) -> None:
    (a, oa), (b, _) = member(pool, "a"), member(pool, "b")
    await a.gateway.join("a", None, 30)
    await a.tick()
    await b.gateway.join("b", None, 30)
    async with pool.acquire() as conn, conn.transaction():
        # a's heartbeat or release in flight holds its rows; b tries to take a's units (a
        # stale plan): an acquisition that locked them would wait here, and deadlock with
        # a statement of a's locking them in another order.
        await conn.execute("SELECT 1 FROM tideflow_cluster_leases FOR UPDATE")
        async with asyncio.timeout(10):  # a bound, for the old code that waited here
            got = await b.gateway.acquire("b", sorted(UNITS), 30)
    assert got == {}
    assert set(oa.running) == UNITS
