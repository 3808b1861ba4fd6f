"""One suite, two stores: InMemoryEventStore and PostgresEventStore keep the same contract."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from tideflow.errors import (
    AlreadyExists,
    BusNotFound,
    ConflictError,
    EventNotFound,
    EventRejected,
    InvalidArgument,
)
from tideflow.eventstore import DEFAULT_BUS, EventStore, Retention
from tideflow.testing import InMemoryEventStore, ManualClock

SEGMENT = 10


def ce(i: int | str, source: str = "/tests", **extra: object) -> dict[str, object]:
    return {"specversion": "1.0", "id": str(i), "source": source, "type": "t.test", **extra}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["memory", "postgres"])
def make_store(request: pytest.FixtureRequest, clock: ManualClock) -> Callable[[], EventStore]:
    if request.param == "memory":
        return lambda: InMemoryEventStore(segment_size=SEGMENT, clock=clock)
    from tideflow.eventstore.gateway import PostgresEventStore

    pool = request.getfixturevalue("pool")  # only the postgres variant starts PostgreSQL
    return lambda: PostgresEventStore(
        pool, segment_size=SEGMENT, clock=clock, retention_interval=None
    )


@pytest.fixture
async def store(make_store: Callable[[], EventStore]) -> AsyncIterator[EventStore]:
    subject = make_store()
    await subject.start()
    try:
        yield subject
    finally:
        await subject.stop()


async def test_default_bus_exists(store: EventStore) -> None:
    assert [bus.name for bus in await store.list_buses()] == [DEFAULT_BUS]
    info = await store.get_bus(DEFAULT_BUS)
    assert (info.first_offset, info.last_offset) == (1, 0)


async def test_create_list_delete(store: EventStore) -> None:
    bus = await store.create_bus("orders", Retention(max_events=100))
    assert bus.name == "orders"
    assert bus.retention == Retention(max_events=100)
    assert [b.name for b in await store.list_buses()] == [DEFAULT_BUS, "orders"]
    with pytest.raises(AlreadyExists):
        await store.create_bus("orders")
    await store.delete_bus("orders")
    with pytest.raises(BusNotFound):
        await store.get_bus("orders")


async def test_bad_names_and_unknown_buses(store: EventStore) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await store.create_bus("no spaces")
    assert caught.value.argument == "name"
    for call in (
        store.get_bus("nope"),
        store.append("nope", [ce(1)]),
        store.append("nope", []),
        store.read("nope"),
        store.get("nope", 1),
        store.delete_bus("nope"),
        store.wait_for("nope", 0, 1.0),
    ):
        with pytest.raises(BusNotFound):
            await call


async def test_default_bus_cannot_be_deleted(store: EventStore) -> None:
    with pytest.raises(ConflictError):
        await store.delete_bus(DEFAULT_BUS)
    assert (await store.get_bus(DEFAULT_BUS)).name == DEFAULT_BUS


async def test_offsets_start_at_one_and_have_no_gaps(store: EventStore) -> None:
    first = await store.append(DEFAULT_BUS, [ce(1), ce(2), ce(3)])
    second = await store.append(DEFAULT_BUS, [ce(4)])
    assert [a.offset for a in first + second] == [1, 2, 3, 4]
    assert not any(a.duplicate for a in first + second)
    assert {a.bus for a in first} == {DEFAULT_BUS}
    assert [e.offset for e in await store.read(DEFAULT_BUS, 0, 100)] == [1, 2, 3, 4]
    assert [e.offset for e in await store.read(DEFAULT_BUS, 1, 2)] == [2, 3]
    assert await store.read(DEFAULT_BUS, 4, 10) == []
    assert (await store.get(DEFAULT_BUS, 3)).id == "3"
    with pytest.raises(EventNotFound):
        await store.get(DEFAULT_BUS, 5)


async def test_buses_have_their_own_offsets(store: EventStore) -> None:
    await store.create_bus("a")
    await store.append(DEFAULT_BUS, [ce(1), ce(2)])
    acks = await store.append("a", [ce(1), ce(2)])
    assert [(a.bus, a.offset, a.duplicate) for a in acks] == [("a", 1, False), ("a", 2, False)]


async def test_events_are_kept_exactly(store: EventStore) -> None:
    events = [
        ce(
            "json",
            time="2026-01-01T00:00:00.5+01:00",
            datacontenttype="application/json",
            dataschema="https://example.com/s",
            subject="x/y",
            myext="value",
            intext=7,
            data={"nested": [1, 2.5, None, True, "ü€𝄞"], "big": 12345678901234567890123},
        ),
        ce("b64", data_base64="AAEC/w==", datacontenttype="application/octet-stream"),
        ce("none"),
        ce("string", data="just text"),
    ]
    await store.append(DEFAULT_BUS, events)
    stored = await store.read(DEFAULT_BUS, 0, 10)
    assert [dict(e.event) for e in stored] == events
    assert [list(e.event) for e in stored] == [list(e) for e in events]
    assert stored[0].type == "t.test"
    assert stored[0].source == "/tests"


async def test_duplicates_are_acknowledged_with_the_first_offset(store: EventStore) -> None:
    await store.append(DEFAULT_BUS, [ce(1), ce(2)])
    acks = await store.append(DEFAULT_BUS, [ce(2), ce(3), ce(3), ce(2, source="/other")])
    assert [(a.offset, a.duplicate) for a in acks] == [(2, True), (3, False), (3, True), (4, False)]
    assert [e.id for e in await store.read(DEFAULT_BUS, 0, 10)] == ["1", "2", "3", "2"]


async def test_a_bad_event_rejects_the_whole_call(store: EventStore) -> None:
    with pytest.raises(EventRejected) as caught:
        await store.append(DEFAULT_BUS, [ce(1), {"source": "/s", "type": "t"}])
    assert (caught.value.attribute, caught.value.index) == ("id", 1)
    with pytest.raises(EventRejected) as caught:
        await store.append(DEFAULT_BUS, [ce(1, source="")])
    assert caught.value.attribute == "source"
    with pytest.raises(EventRejected):
        await store.append(DEFAULT_BUS, [ce(1, data={1j})])
    assert await store.read(DEFAULT_BUS) == []
    assert (await store.append(DEFAULT_BUS, [ce(1)]))[0].offset == 1


async def test_retention_by_count_drops_whole_segments(store: EventStore) -> None:
    await store.create_bus("short", Retention(max_events=5))
    await store.append("short", [ce(i) for i in range(1, 26)])  # segments 1-10, 11-20, 21-30
    assert await store.apply_retention() == 2
    info = await store.get_bus("short")
    assert (info.first_offset, info.last_offset) == (21, 25)
    assert [e.offset for e in await store.read("short", 0, 100)] == [21, 22, 23, 24, 25]
    with pytest.raises(EventNotFound):
        await store.get("short", 20)
    assert await store.apply_retention() == 0
    # dedup covers what is kept: a dropped event's key is accepted again
    acks = await store.append("short", [ce(25), ce(1)])
    assert [(a.offset, a.duplicate) for a in acks] == [(25, True), (26, False)]


async def test_retention_never_drops_the_segment_being_filled(store: EventStore) -> None:
    await store.create_bus("tiny", Retention(max_events=1))
    await store.append("tiny", [ce(i) for i in range(1, 10)])
    assert await store.apply_retention() == 0
    assert len(await store.read("tiny", 0, 100)) == 9


async def test_retention_by_age(store: EventStore, clock: ManualClock) -> None:
    await store.create_bus("aging", Retention(max_age=timedelta(hours=1)))
    await store.append("aging", [ce(i) for i in range(1, 11)])  # fills segment 1-10
    clock.advance(1800)
    await store.append("aging", [ce(i) for i in range(11, 16)])
    assert await store.apply_retention() == 0
    clock.advance(1801)
    assert await store.apply_retention() == 1
    assert [e.offset for e in await store.read("aging", 0, 100)] == [11, 12, 13, 14, 15]
    await store.append(DEFAULT_BUS, [ce(1)])  # a bus without retention keeps everything
    clock.advance(10**6)
    await store.apply_retention()
    assert len(await store.read(DEFAULT_BUS)) == 1


async def test_bus_figures(store: EventStore, clock: ManualClock) -> None:
    await store.append(DEFAULT_BUS, [ce(i) for i in range(1, 13)])
    clock.advance(120)
    await store.append(DEFAULT_BUS, [ce(i) for i in range(13, 19)])
    info = await store.get_bus(DEFAULT_BUS)
    assert (info.first_offset, info.last_offset) == (1, 18)
    assert info.segment_count >= 2
    assert info.size_bytes > 0
    assert info.events_per_second == pytest.approx(6 / 60)
    assert info.to_json()["lastOffset"] == 18


async def test_recreated_bus_starts_over(store: EventStore) -> None:
    await store.create_bus("again")
    await store.append("again", [ce(1), ce(2)])
    await store.delete_bus("again")
    await store.create_bus("again")
    assert (await store.append("again", [ce(1)]))[0].offset == 1
    assert [e.offset for e in await store.read("again")] == [1]


async def test_wait_for(store: EventStore, clock: ManualClock) -> None:
    await store.append(DEFAULT_BUS, [ce(1)])
    assert await store.wait_for(DEFAULT_BUS, 0, 0.0) is True
    waiting = asyncio.create_task(store.wait_for(DEFAULT_BUS, 1, 60.0))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await store.append(DEFAULT_BUS, [ce(2)])
    assert await asyncio.wait_for(waiting, 10) is True


async def test_wait_for_times_out_on_the_clock(store: EventStore, clock: ManualClock) -> None:
    waiting = asyncio.create_task(store.wait_for(DEFAULT_BUS, 0, 30.0))
    for _ in range(20):
        await asyncio.sleep(0.01)
        clock.advance(5)
        if waiting.done():
            break
    assert await asyncio.wait_for(waiting, 10) is False


async def test_concurrent_appends_get_distinct_contiguous_offsets(store: EventStore) -> None:
    calls = [store.append(DEFAULT_BUS, [ce(f"{n}-{i}") for i in range(3)]) for n in range(20)]
    acks = [a for result in await asyncio.gather(*calls) for a in result]
    assert sorted(a.offset for a in acks) == list(range(1, 61))
