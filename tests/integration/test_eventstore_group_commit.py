"""Group commit on PostgreSQL: shared transactions, acks after commit, failures kept apart."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tideflow.errors import BusNotFound, StoreError
from tideflow.eventstore import DEFAULT_BUS
from tideflow.eventstore.gateway import PostgresEventStore


def ce(i: int | str, source: str = "/g") -> dict[str, object]:
    return {"specversion": "1.0", "id": str(i), "source": source, "type": "t"}


async def test_concurrent_appends_share_transactions(pool: Any) -> None:
    store = PostgresEventStore(pool)
    await store.start()
    try:
        calls = [store.append(DEFAULT_BUS, [ce(f"{n}-{k}") for k in range(5)]) for n in range(64)]
        results = await asyncio.gather(*calls)
        assert sorted(a.offset for acks in results for a in acks) == list(range(1, 321))
        for acks in results:  # each caller's events are contiguous: one COPY per batch
            assert [a.offset for a in acks] == list(range(acks[0].offset, acks[0].offset + 5))
        assert store._committer.batches < 64 / 4
    finally:
        await store.stop()


async def test_an_ack_means_committed(pool: Any) -> None:
    store = PostgresEventStore(pool)
    await store.start()
    try:
        acks = await store.append(DEFAULT_BUS, [ce(1), ce(2)])
        # another connection sees them at once: the ack came after commit
        rows = await pool.fetch("SELECT event_offset FROM tideflow_events ORDER BY 1")
        assert [r["event_offset"] for r in rows] == [a.offset for a in acks]
    finally:
        await store.stop()


async def test_a_failing_append_does_not_fail_the_others(pool: Any) -> None:
    # A real database error for one event: a trigger refuses the id "poison".
    await pool.execute(
        """
        CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.ce_id = 'poison' THEN RAISE EXCEPTION 'poisoned event'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_poison BEFORE INSERT ON tideflow_events
            FOR EACH ROW EXECUTE FUNCTION refuse_poison();
        """
    )
    store = PostgresEventStore(pool)
    await store.start()
    try:
        await store.create_bus("side")
        calls = [store.append(DEFAULT_BUS, [ce(f"good-{n}")]) for n in range(10)]
        calls.insert(5, store.append(DEFAULT_BUS, [ce("fine"), ce("poison")]))
        calls.append(store.append("side", [ce(1)]))
        calls.append(store.append("missing", [ce(1)]))
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert isinstance(results[5], StoreError)
        assert "poisoned event" in str(results[5])
        assert isinstance(results[-1], BusNotFound)
        good = [r for i, r in enumerate(results[:-2]) if i != 5]
        assert all(isinstance(r, list) for r in good)
        offsets = sorted(a.offset for acks in good for a in acks)  # type: ignore[union-attr]
        assert offsets == list(range(1, 11))  # no hole where the failed append was
        assert [a.offset for a in results[-2]] == [1]  # type: ignore[union-attr]
        stored = await store.read(DEFAULT_BUS, 0, 100)
        assert {e.id for e in stored} == {f"good-{n}" for n in range(10)}
    finally:
        await store.stop()


async def test_stop_flushes_queued_appends_and_then_refuses(pool: Any) -> None:
    store = PostgresEventStore(pool)
    await store.start()
    pending = [asyncio.create_task(store.append(DEFAULT_BUS, [ce(n)])) for n in range(20)]
    await asyncio.sleep(0)
    await store.stop()
    results = [await task for task in pending]
    assert sorted(a.offset for acks in results for a in acks) == list(range(1, 21))
    with pytest.raises(StoreError):
        await store.append(DEFAULT_BUS, [ce("late")])


async def test_two_stores_dedup_against_each_other(pool: Any) -> None:
    one, two = PostgresEventStore(pool), PostgresEventStore(pool)
    await one.start()
    await two.start()
    try:
        results = await asyncio.gather(
            *(store.append(DEFAULT_BUS, [ce(n) for n in range(30)]) for store in (one, two))
        )
        flags = sorted(a.duplicate for acks in results for a in acks)
        assert flags == [False] * 30 + [True] * 30
        assert results[0][7].offset == results[1][7].offset
        assert len(await one.read(DEFAULT_BUS, 0, 100)) == 30
    finally:
        await one.stop()
        await two.stop()


async def test_one_transaction_covers_appends_to_many_buses(pool: Any, pg_url: str) -> None:
    # The first flush is held inside its transaction; the appends queued meanwhile,
    # one per bus over 20 buses (and one to a bus that does not exist), form one batch.
    import asyncpg

    gate, entered = asyncio.Event(), asyncio.Event()
    commits = 0

    async def before_commit() -> None:
        nonlocal commits
        commits += 1
        entered.set()
        await gate.wait()

    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(pg_url)
    store = PostgresEventStore(pool, in_flight=1, before_commit=before_commit)
    await store.start()
    try:
        names = [f"b{i:02d}" for i in range(20)]
        for name in names:
            await store.create_bus(name)  # (its notification, "<bus> 0", is not heard below)
        await listener.add_listener("tideflow_events", lambda *args: heard.put_nowait(args[3]))
        first = asyncio.create_task(store.append("b03", [ce("x")]))
        await entered.wait()
        calls = [store.append(name, [ce("x"), ce(f"own-{name}")]) for name in names]
        calls.append(store.append("missing", [ce("x")]))
        results = asyncio.gather(*calls, return_exceptions=True)
        await asyncio.sleep(0)  # one loop turn: each append encodes and queues, no I/O
        assert store._committer._queue.qsize() == len(calls)
        gate.set()
        acks, done = await results, await first
        assert commits == 2
        assert store._committer.batches == 2
        assert [a.offset for a in done] == [1]
        assert isinstance(acks[-1], BusNotFound)
        for name, answer in zip(names, acks, strict=False):
            assert isinstance(answer, list), answer
            if name == "b03":  # "x" was there already: a duplicate, with its offset
                assert [(a.offset, a.duplicate) for a in answer] == [(1, True), (2, False)]
            else:  # the same source and id on another bus is another event
                assert [(a.offset, a.duplicate) for a in answer] == [(1, False), (2, False)]
            stored = await store.read(name, 0, 10)
            assert [(e.offset, e.id) for e in stored] == [(1, "x"), (2, f"own-{name}")]
        expected = {"b03 1"} | {f"{name} 2" for name in names}
        got: set[str] = set()
        while not expected <= got:  # one notification per bus, with its last offset
            got.add(await asyncio.wait_for(heard.get(), 10))
        assert got == expected
    finally:
        await store.stop()
        await listener.close()


async def test_batches_of_two_stores_over_shared_buses_stay_gap_free(pool: Any) -> None:
    # Two processes' batches each lock several of the same buses (in name order).
    one, two = PostgresEventStore(pool), PostgresEventStore(pool)
    await one.start()
    await two.start()
    try:
        names = [f"s{i}" for i in range(6)]
        for name in names:
            await one.create_bus(name)
        calls = [
            store.append(names[(n * step) % 6], [ce(f"{id(store)}-{n}-{k}") for k in range(3)])
            for n in range(60)
            for store, step in ((one, 1), (two, 5))
        ]
        results = await asyncio.gather(*calls)
        by_bus: dict[str, list[int]] = {}
        for acks in results:
            assert [a.offset for a in acks] == list(range(acks[0].offset, acks[0].offset + 3))
            by_bus.setdefault(acks[0].bus, []).extend(a.offset for a in acks)
        for name in names:
            assert sorted(by_bus[name]) == list(range(1, len(by_bus[name]) + 1))
            assert len(await one.read(name, 0, 1000)) == len(by_bus[name])
    finally:
        await one.stop()
        await two.stop()
