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
