"""Subscriptions delivering to a real HTTP sink on 127.0.0.1 that fails on purpose.

Real PostgreSQL (event store, subscriptions, timers), a real uvicorn sink.
Retries go through a timer service on a ManualClock: the test moves time and
fires due timers itself, so back-off is checked exactly without sleeping.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import asyncpg
import orjson
import pytest

from tests.support.sink import HANG, HOLD, Sink, running_sink
from tideflow import expression_budget, limits
from tideflow.errors import BusNotFound
from tideflow.eventstore.gateway import PostgresEventStore
from tideflow.expression_budget import Budget
from tideflow.testing import ManualClock
from tideflow.timer.records import TimerState
from tideflow.timer.service import TimerService
from tideflow.triggers.delivery import REASON_ATTRIBUTE
from tideflow.triggers.dispatcher import RETRY_KIND, Dispatcher
from tideflow.triggers.gateway import PostgresSubscriptions

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ev(i: int, type_: str = "com.example.order.created", **extra: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"e-{i}",
        "source": "/orders",
        "type": type_,
        "data": {"n": i},
        **extra,
    }


def without_data(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "data"}


@dataclass
class System:
    pool: asyncpg.Pool
    store: PostgresEventStore
    clock: ManualClock
    timers: TimerService
    dispatcher: Dispatcher
    sink: Sink

    async def restart(self) -> None:
        """Stop the dispatcher and start a new one on the same database (a process restart)."""
        await self.dispatcher.stop()
        self.timers = TimerService(self.pool, clock=self.clock)
        self.dispatcher = Dispatcher(
            self.store, PostgresSubscriptions(self.pool), self.timers, consumer_retry_delay=0.01
        )
        await self.dispatcher.start()

    async def subscribe(self, path: str = "/", **body: Any) -> str:
        sub = await self.dispatcher.create({"bus": "orders", "sink": self.sink.url + path, **body})
        return sub.id

    async def fire_retries(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await self.timers.run_once()

    async def pending_retries(self) -> list[Any]:
        return await self.timers.list_timers(kind=RETRY_KIND, state=TimerState.PENDING)


@pytest.fixture
async def system(pool: asyncpg.Pool) -> AsyncIterator[System]:
    clock = ManualClock(T0)
    async with PostgresEventStore(pool) as store, running_sink() as sink:
        await store.create_bus("orders")
        timers = TimerService(pool, clock=clock)
        dispatcher = Dispatcher(
            store, PostgresSubscriptions(pool), timers, consumer_retry_delay=0.01
        )
        await dispatcher.start()
        system = System(pool, store, clock, timers, dispatcher, sink)
        try:
            yield system
        finally:
            await system.dispatcher.stop()


async def test_delivers_in_cloudevents_binary_mode_and_commits(system: System) -> None:
    sub_id = await system.subscribe("/in")
    await system.store.append(
        "orders",
        [
            ev(1, subject="o-1", region="eu", priority=3),
            {**ev(2), "data": "plain text", "datacontenttype": "text/plain"},
            {**without_data(ev(3)), "data_base64": base64.b64encode(b"\x00\x01").decode()},
        ],
    )
    await system.sink.wait_for(lambda: len(system.sink.received) == 3)
    first, second, third = sorted(system.sink.received, key=lambda r: r.id)
    assert first.headers["ce-id"] == "e-1"
    assert first.headers["ce-specversion"] == "1.0"
    assert first.headers["ce-source"] == "/orders"
    assert first.headers["ce-type"] == "com.example.order.created"
    assert first.headers["ce-subject"] == "o-1"
    assert first.headers["ce-region"] == "eu"
    assert first.headers["ce-priority"] == "3"
    assert first.headers["content-type"] == "application/json"
    assert first.json() == {"n": 1}
    assert second.headers["content-type"] == "text/plain"
    assert second.body == b"plain text"
    assert third.body == b"\x00\x01"
    await _settled(system, sub_id, 3)
    sub, head = await system.dispatcher.get(sub_id)
    assert (sub.committed_offset, head, sub.delivered, sub.failed) == (3, 3, 3, 0)
    assert sub.to_json(head)["lag"] == 0


async def test_latest_skips_events_already_in_the_bus_earliest_and_offset_do_not(
    system: System,
) -> None:
    await system.store.append("orders", [ev(i) for i in range(1, 6)])
    await system.subscribe("/latest")
    await system.subscribe("/earliest", **{"from": "earliest"})
    await system.subscribe("/from4", **{"from": 4})
    await system.store.append("orders", [ev(6)])
    await system.sink.wait_for(lambda: len(system.sink.received) == 1 + 6 + 3)
    assert system.sink.ids("/latest") == ["e-6"]
    assert sorted(system.sink.ids("/earliest")) == [f"e-{i}" for i in range(1, 7)]
    assert sorted(system.sink.ids("/from4")) == ["e-4", "e-5", "e-6"]


FILTERS: dict[str, list[dict[str, Any]]] = {
    "exact": [{"exact": {"type": "com.example.order.paid"}}],
    "prefix": [{"prefix": {"type": "com.example.order.c"}}],
    "suffix": [{"suffix": {"subject": "-vip"}}],
    "all": [{"all": [{"prefix": {"type": "com.example."}}, {"exact": {"region": "eu"}}]}],
    "any": [{"any": [{"exact": {"region": "us"}}, {"suffix": {"type": ".paid"}}]}],
    "not": [{"not": {"exact": {"region": "eu"}}}],
    "sql": [{"sql": "region = 'eu' AND priority > 2 AND type LIKE '%.created'"}],
    "and": [{"prefix": {"type": "com.example."}}, {"sql": "EXISTS subject"}],
}
EXPECTED = {
    "exact": ["e-2"],
    "prefix": ["e-1", "e-3"],
    "suffix": ["e-3"],
    "all": ["e-1", "e-2"],
    "any": ["e-2", "e-3"],
    "not": ["e-3", "e-4"],
    "sql": ["e-1"],
    "and": ["e-1", "e-3"],
}


async def test_each_filter_dialect_through_delivery(system: System) -> None:
    for name, filters in FILTERS.items():
        await system.subscribe(f"/{name}", filters=filters)
    await system.store.append(
        "orders",
        [
            ev(1, region="eu", priority=5, subject="o-1"),
            ev(2, "com.example.order.paid", region="eu", priority=1),
            ev(3, region="us", priority=9, subject="o-3-vip"),
            ev(4, "org.other.thing"),
        ],
    )
    total = sum(len(ids) for ids in EXPECTED.values())
    await system.sink.wait_for(lambda: len(system.sink.received) == total)
    for name, ids in EXPECTED.items():
        assert sorted(system.sink.ids(f"/{name}")) == ids, name
    for sub, _ in await system.dispatcher.list_all():  # filtered-out events are committed too
        assert (await _settled(system, sub.id, 4)).committed_offset == 4


async def test_transform_result_becomes_the_data(system: System) -> None:
    await system.subscribe("/t", transform="{order: .data.n, kind: .type, drop: (.data.n == 2)}")
    await system.subscribe("/skip", transform="select(.data.n != 2) | .data.n * 10")
    await system.store.append("orders", [ev(1), {**ev(2), "datacontenttype": "application/json"}])
    await system.sink.wait_for(lambda: len(system.sink.received) == 3)
    bodies = {r.id: r.json() for r in system.sink.received if r.path == "/t"}
    assert bodies["e-1"] == {"order": 1, "kind": "com.example.order.created", "drop": False}
    assert system.sink.received[0].headers["content-type"] == "application/json"
    assert [r.json() for r in system.sink.received if r.path == "/skip"] == [10]


async def test_retry_with_exponential_backoff_then_success(system: System) -> None:
    system.sink.plan = lambda path, headers, attempt: 503 if attempt <= 2 else 200
    sub_id = await system.subscribe(
        delivery={"retry": 3, "backoffDelay": "PT2S", "maxDelay": "PT1M"}
    )
    await system.store.append("orders", [ev(1)])
    await system.sink.wait_for(lambda: len(system.sink.received) == 1)
    await _wait_retry_timer(system)
    [timer] = await system.pending_retries()
    assert timer.due_at == T0 + timedelta(seconds=2)
    assert timer.payload["attempt"] == 2
    await system.fire_retries(1.99)
    assert len(system.sink.received) == 1  # not due yet
    await system.fire_retries(0.01)
    await system.sink.wait_for(lambda: len(system.sink.received) == 2)
    await _wait_retry_timer(system)
    [timer] = await system.pending_retries()
    assert timer.due_at == T0 + timedelta(seconds=2 + 4)  # doubled
    await system.fire_retries(4)
    await system.sink.wait_for(lambda: len(system.sink.received) == 3)
    assert [r.status for r in system.sink.received] == [503, 503, 200]
    sub = await _settled(system, sub_id, 1)
    assert (sub.delivered, sub.failed, sub.dead_lettered) == (1, 2, 0)


async def test_linear_backoff_is_capped_by_max_delay(system: System) -> None:
    system.sink.plan = lambda path, headers, attempt: 429 if attempt <= 3 else 200
    await system.subscribe(
        delivery={"backoffPolicy": "linear", "backoffDelay": "PT3S", "maxDelay": "PT5S"}
    )
    await system.store.append("orders", [ev(1)])
    dues = []
    for attempt, step in ((1, 3.0), (2, 5.0), (3, 5.0)):  # 3s, 6s capped to 5s, 9s capped
        await system.sink.wait_for(partial(_received, system.sink, attempt))
        await _wait_retry_timer(system)
        [timer] = await system.pending_retries()
        dues.append((timer.due_at - system.clock.now()).total_seconds())
        await system.fire_retries(step)
    await system.sink.wait_for(lambda: system.sink.ids(ok=True) == ["e-1"])
    assert dues == [3.0, 5.0, 5.0]


async def test_client_error_goes_to_the_dead_letter_bus_created_on_demand(
    system: System,
) -> None:
    system.sink.plan = lambda path, headers, attempt: 404 if headers["ce-id"] == "e-2" else 200
    sub_id = await system.subscribe()
    await system.store.append("orders", [ev(1), ev(2), ev(3)])
    sub = await _settled(system, sub_id, 3)
    assert (sub.delivered, sub.failed, sub.dead_lettered) == (2, 1, 1)
    [letter] = await system.store.read("orders.deadletter")
    assert letter.event["id"] == f"{sub_id}:e-2"
    assert letter.event["deadletterid"] == "e-2"
    assert letter.event["data"] == {"n": 2}
    assert letter.event[REASON_ATTRIBUTE] == "HTTP 404 on the first attempt"
    assert letter.event["deadlettersub"] == sub_id
    assert letter.event["deadletteroffset"] == 2
    assert await system.pending_retries() == []


async def test_redirects_are_not_followed(system: System) -> None:
    system.sink.plan = lambda path, headers, attempt: 302 if path == "/moved" else 200
    sub_id = await system.subscribe("/moved")
    await system.store.append("orders", [ev(1)])
    sub = await _settled(system, sub_id, 1)
    assert (sub.delivered, sub.dead_lettered) == (0, 1)
    assert [r.path for r in system.sink.received] == ["/moved"]  # /elsewhere not fetched
    assert system.sink.received[0].headers["user-agent"].startswith("tideflow/")


async def test_exhausted_retries_dead_letter_to_the_configured_bus(system: System) -> None:
    system.sink.plan = lambda path, headers, attempt: 500
    sub_id = await system.subscribe(
        delivery={"retry": 1, "backoffDelay": "PT1S", "deadLetterBus": "failed-orders"}
    )
    await system.store.append("orders", [ev(1)])
    await _wait_retry_timer(system)
    await system.fire_retries(1)
    sub = await _settled(system, sub_id, 1)
    assert (sub.delivered, sub.failed, sub.dead_lettered) == (0, 2, 1)
    [letter] = await system.store.read("failed-orders")
    assert letter.event[REASON_ATTRIBUTE] == "HTTP 500 after 2 attempts"


async def test_timeouts_and_connection_errors_are_retried_then_dead_lettered(
    system: System,
) -> None:
    system.sink.plan = lambda path, headers, attempt: HANG
    slow = await system.subscribe("/slow", delivery={"retry": 0, "timeout": "PT0.2S"})
    closed = "http://127.0.0.1:9/"  # discard port: nothing listens
    down = await system.dispatcher.create(
        {"bus": "orders", "sink": closed, "delivery": {"retry": 1, "backoffDelay": "PT1S"}}
    )
    await system.store.append("orders", [ev(1)])
    await _wait_retry_timer(system)  # the connection error is retried
    await system.fire_retries(1)
    await _settled(system, slow, 1)
    await _settled(system, down.id, 1)
    reasons = sorted(
        e.event[REASON_ATTRIBUTE] for e in await system.store.read("orders.deadletter")
    )
    assert reasons[0].startswith("connection error")
    assert reasons[0].endswith("after 2 attempts")
    assert reasons[1] == "timeout after 0.2s on the first attempt"


async def test_a_runaway_transform_is_retried_then_dead_lettered_with_the_limit(
    system: System,
) -> None:
    expression_budget.configure(Budget(seconds=0.3, memory_bytes=64 * 1024 * 1024))
    try:
        looping = await system.subscribe(
            "/loop", transform="def f: f; f", delivery={"retry": 1, "backoffDelay": "PT1S"}
        )
        healthy = await system.subscribe("/ok", transform="reduce .data.n as $n (0; . + $n)")
        await system.store.append("orders", [ev(1)])
        await system.sink.wait_for(lambda: len(system.sink.received) == 1)
        await _wait_retry_timer(system)  # the overrun counts as a failed attempt
        await system.fire_retries(1)
        sub = await _settled(system, looping, 1)
        await _settled(system, healthy, 1)
    finally:
        expression_budget.configure(Budget())
    assert (sub.delivered, sub.failed, sub.dead_lettered) == (0, 2, 1)
    [letter] = await system.store.read("orders.deadletter")
    reason = letter.event[REASON_ATTRIBUTE]
    assert reason.startswith(
        "transform failed: EXPRESSION_TIME_LIMIT: 'def f: f; f' exceeded its time budget"
    )
    assert reason.endswith("after 2 attempts")
    assert [(r.path, r.json()) for r in system.sink.received] == [("/ok", 1)]


async def test_ordered_delivers_one_at_a_time_in_offset_order(system: System) -> None:
    system.sink.plan = lambda path, headers, attempt: (
        503 if headers["ce-id"] == "e-2" and attempt == 1 else 200
    )
    sub_id = await system.subscribe("/o", delivery={"ordered": True, "backoffDelay": "PT1S"})
    await system.subscribe("/u", delivery={"backoffDelay": "PT1S"})
    await system.store.append("orders", [ev(i) for i in range(1, 6)])
    await system.sink.wait_for(lambda: len(system.sink.ids("/u")) == 5)
    await system.sink.wait_for(lambda: len(system.sink.ids("/o")) == 2)
    await _wait_retry_timer(system, 2)
    assert system.sink.ids("/o") == ["e-1", "e-2"]  # e-3 waits behind e-2's retry
    await system.fire_retries(1)
    await system.sink.wait_for(lambda: len(system.sink.ids("/o")) == 6)
    assert system.sink.ids("/o") == ["e-1", "e-2", "e-2", "e-3", "e-4", "e-5"]
    assert (await _settled(system, sub_id, 5)).committed_offset == 5


async def test_unordered_keeps_at_most_max_in_flight(system: System) -> None:
    system.sink.plan = lambda path, headers, attempt: HOLD
    sub_id = await system.subscribe(delivery={"maxInFlight": 3})
    await system.store.append("orders", [ev(i) for i in range(1, 11)])
    await system.sink.wait_for(lambda: system.sink.in_flight == 3)
    sub, _ = await system.dispatcher.get(sub_id)
    assert sub.committed_offset == 0  # nothing finished: nothing committed
    system.sink.release()
    await _settled(system, sub_id, 10)
    assert system.sink.peak_in_flight == 3
    assert sorted(system.sink.ids(), key=lambda i: int(i[2:])) == [f"e-{i}" for i in range(1, 11)]


async def test_offsets_survive_a_restart_without_loss(system: System) -> None:
    system.sink.plan = lambda path, headers, attempt: (
        HANG if headers["ce-id"] == "e-10" and attempt == 1 else 200
    )
    sub_id = await system.subscribe(delivery={"ordered": True})
    await system.store.append("orders", [ev(i) for i in range(1, 21)])
    await system.sink.wait_for(lambda: system.sink.in_flight == 1 and len(system.sink.ids()) == 9)
    await system.restart()  # e-10 was in flight: not committed
    sub, _ = await system.dispatcher.get(sub_id)
    assert sub.committed_offset == 9
    await _settled(system, sub_id, 20)
    delivered = system.sink.ids(ok=True)
    assert sorted(set(delivered)) == sorted(f"e-{i}" for i in range(1, 21))
    assert len(delivered) == 20  # the hanging attempt never completed: no duplicate at all


async def test_a_pending_retry_survives_a_restart(system: System) -> None:
    system.sink.plan = lambda path, headers, attempt: (
        503 if attempt == 1 and headers["ce-id"] != "e-3" else 200
    )
    sub_id = await system.subscribe(delivery={"backoffDelay": "PT10S"})
    await system.store.append("orders", [ev(1), ev(2)])
    await system.sink.wait_for(lambda: len(system.sink.received) == 2)
    await _wait_retry_timer(system, 2)
    await system.restart()
    await system.store.append("orders", [ev(3)])
    await system.sink.wait_for(lambda: "e-3" in system.sink.ids())
    sub, _ = await system.dispatcher.get(sub_id)
    assert sub.committed_offset == 0  # e-1 and e-2 still wait for their retries
    ids = system.sink.ids()
    assert (sorted(ids[:2]), ids[2:]) == (["e-1", "e-2"], ["e-3"])  # none sent again yet
    await system.fire_retries(10)
    await _settled(system, sub_id, 3)
    assert sorted(system.sink.ids()[3:]) == ["e-1", "e-2"]
    assert [r.attempt for r in system.sink.received if r.status == 200] == [1, 2, 2]


async def test_ordered_retry_survives_a_restart_and_holds_the_rest(system: System) -> None:
    system.sink.plan = lambda path, headers, attempt: (
        503 if headers["ce-id"] == "e-1" and attempt == 1 else 200
    )
    sub_id = await system.subscribe(delivery={"ordered": True, "backoffDelay": "PT5S"})
    await system.store.append("orders", [ev(1), ev(2), ev(3)])
    await _wait_retry_timer(system)
    await system.restart()
    await system.fire_retries(5)
    await _settled(system, sub_id, 3)
    assert system.sink.ids() == ["e-1", "e-1", "e-2", "e-3"]


async def test_pause_resume_and_reset_replay(system: System) -> None:
    sub_id = await system.subscribe()
    await system.store.append("orders", [ev(1), ev(2)])
    await _settled(system, sub_id, 2)
    paused = await system.dispatcher.pause(sub_id)
    assert paused.state.value == "paused"
    await system.store.append("orders", [ev(3)])
    sub, head = await system.dispatcher.get(sub_id)
    assert (sub.committed_offset, head) == (2, 3)
    await system.dispatcher.resume(sub_id)
    await _settled(system, sub_id, 3)
    await system.dispatcher.reset(sub_id, offset=2)
    await system.sink.wait_for(lambda: len(system.sink.received) == 5)
    assert system.sink.ids() == ["e-1", "e-2", "e-3", "e-2", "e-3"]
    await system.dispatcher.reset(sub_id, time=T0 - timedelta(days=365 * 100))
    await system.sink.wait_for(lambda: len(system.sink.received) == 8)
    await system.dispatcher.delete(sub_id)
    assert [s for s, _ in await system.dispatcher.list_all()] == []


async def test_internal_consumer_gets_batches_and_commits_after_return(system: System) -> None:
    seen: list[list[int]] = []
    failures = [1]

    async def consume(batch: list[tuple[int, Any]]) -> None:
        if failures[0]:
            failures[0] -= 1
            raise RuntimeError("consumer failed on purpose")
        seen.append([offset for offset, _ in batch])

    await system.store.append("orders", [ev(1), ev(2, "x.other"), ev(3)])
    sub = await system.dispatcher.attach(
        "wf:test", "orders", consume, filters=[{"prefix": {"type": "com."}}], start="earliest"
    )
    assert sub.kind.value == "internal"
    sub = await _settled(system, "wf:test", 3)
    assert seen == [[1, 3]]
    assert (sub.delivered, sub.failed) == (2, 1)
    await system.dispatcher.detach("wf:test")
    await system.store.append("orders", [ev(4)])
    again = await system.dispatcher.attach("wf:test", "orders", consume)
    assert again.committed_offset == 3  # continues where it stopped


async def test_a_consumer_has_events_noted_first_and_the_offset_commit_forgets_the_notes(
    system: System,
) -> None:
    """Crash notes: every event is noted before the consumer has it (a process it kills
    finds the note when the event comes again); a batch consumed without a crash before is
    forgotten by the offset commit that passes it (no statement of its own), and a note
    past the committed offset stays."""
    held = asyncio.Event()
    noted: list[int] = []

    async def notes() -> int:
        async with system.pool.acquire() as conn:
            query = "SELECT count(*) FROM tideflow_consumer_attempts WHERE subscription_id = $1"
            return int(await conn.fetchval(query, "wf:test"))

    async def consume(batch: list[tuple[int, Any]]) -> None:
        noted.append(await notes())
        if any(event["id"] == "e-5" for _, event in batch):
            await held.wait()

    await system.store.append("orders", [ev(1), ev(2), ev(3)])
    await system.dispatcher.attach("wf:test", "orders", consume, start="earliest")
    await _settled(system, "wf:test", 3)  # get() commits the offsets
    assert noted == [3]
    assert await notes() == 0
    await system.store.append("orders", [ev(4)])
    await _settled(system, "wf:test", 4)
    assert noted == [3, 1]
    assert await notes() == 0
    await system.store.append("orders", [ev(5)])
    await eventually(lambda: asyncio.sleep(0, len(noted) == 3))
    await system.dispatcher.flush()
    assert await notes() == 1  # e-5 is with the consumer: its note stays
    held.set()
    await _settled(system, "wf:test", 5)
    assert await notes() == 0


async def test_a_batch_handed_over_by_a_detach_goes_whole_again_with_no_crash_counted(
    system: System,
) -> None:
    """A consumer stopped with a batch in flight (a stop, or its unit moved to another
    process) forgets the notes it made: whoever takes the subscription next has the batch
    handed over whole, not one event at a time counting a crash for each."""
    first: list[list[int]] = []
    held = asyncio.Event()

    async def stuck(batch: list[tuple[int, Any]]) -> None:
        first.append([offset for offset, _ in batch])
        await held.wait()  # never set: the batch is in flight at the detach

    seen: list[list[int]] = []

    async def consume(batch: list[tuple[int, Any]]) -> None:
        seen.append([offset for offset, _ in batch])

    await system.store.append("orders", [ev(1), ev(2), ev(3)])
    await system.dispatcher.attach("wf:test", "orders", stuck, start="earliest")
    await eventually(lambda: asyncio.sleep(0, bool(first)))
    await system.dispatcher.detach("wf:test")
    async with system.pool.acquire() as conn:
        left = await conn.fetchval("SELECT count(*) FROM tideflow_consumer_attempts")
    await system.dispatcher.attach("wf:test", "orders", consume)
    await _settled(system, "wf:test", 3)
    assert first == [[1, 2, 3]]
    assert left == 0
    assert seen == [[1, 2, 3]]


async def test_a_poisoned_event_is_dead_lettered_after_the_attempts_and_the_rest_go_on(
    system: System,
) -> None:
    tried: list[list[int]] = []

    async def consume(batch: list[tuple[int, Any]]) -> None:
        tried.append([offset for offset, _ in batch])
        if any(event["id"] == "e-2" for _, event in batch):
            raise RuntimeError("consumer failed on purpose")

    await system.store.append("orders", [ev(1), ev(2), ev(3)])
    await system.dispatcher.attach("wf:test", "orders", consume, start="earliest")
    sub = await _settled(system, "wf:test", 3)
    # the batch twice, then one event at a time: e-2 the delivery policy's 1 + 3 retries
    assert tried == [[1, 2, 3], [1, 2, 3], [1], [2], [2], [2], [2], [3]]
    assert (sub.delivered, sub.failed, sub.dead_lettered) == (2, 6, 1)
    [letter] = await system.store.read("orders.deadletter")
    assert letter.event["deadletterid"] == "e-2"
    assert letter.event["data"] == {"n": 2}
    assert letter.event[REASON_ATTRIBUTE] == (
        "RuntimeError: consumer failed on purpose after 4 attempts"
    )
    await system.store.append("orders", [ev(4)])  # later events are consumed as before
    await _settled(system, "wf:test", 4)
    assert tried[-1] == [4]


async def test_an_event_beyond_the_value_limits_is_dead_lettered_at_once_without_its_data(
    system: System,
) -> None:
    """An event stored before the depth limit (here: under a higher one) that no writer
    can handle: not retried, since it would fail the same way every time."""
    deep: Any = []
    for _ in range(300):
        deep = [deep]
    limits.configure(limits.Limits(value_depth=1000))
    try:
        await system.store.append("orders", [{**ev(1), "data": deep}])
    finally:
        limits.configure(limits.Limits())
    tried: list[int] = []

    async def consume(batch: list[tuple[int, Any]]) -> None:
        tried.extend(offset for offset, _ in batch)
        orjson.dumps([event for _, event in batch])  # refuses nesting past 254, as writers do

    await system.store.append("orders", [ev(2)])
    await system.dispatcher.attach("wf:test", "orders", consume, start="earliest")
    await _settled(system, "wf:test", 2)
    assert tried == [1, 2, 1, 2, 1, 2]  # the batch twice, then each event once
    [letter] = await system.store.read("orders.deadletter")
    assert "data" not in letter.event
    assert letter.event[REASON_ATTRIBUTE].startswith(
        "VALUE_DEPTH_LIMIT: the event is nested deeper than 128 (not retried"
    )
    assert "data dropped: VALUE_DEPTH_LIMIT" in letter.event[REASON_ATTRIBUTE]


async def test_a_consumer_failing_on_the_database_is_retried_past_the_attempts(
    system: System,
) -> None:
    failures = [8]
    seen: list[int] = []

    async def consume(batch: list[tuple[int, Any]]) -> None:
        if failures[0]:
            failures[0] -= 1
            raise ConnectionRefusedError("the database is away")
        seen.extend(offset for offset, _ in batch)

    await system.store.append("orders", [ev(1)])
    await system.dispatcher.attach("wf:test", "orders", consume, start="earliest")
    sub = await _settled(system, "wf:test", 1)
    assert (seen, sub.dead_lettered) == ([1], 0)
    with pytest.raises(BusNotFound):  # nothing was ever dead-lettered
        await system.store.read("orders.deadletter")


def _received(sink: Sink, count: int) -> bool:
    return len(sink.received) == count


async def _wait_retry_timer(system: System, count: int = 1) -> None:
    async def enough() -> bool:
        return len(await system.pending_retries()) >= count

    await eventually(enough)


async def _settled(system: System, sub_id: str, offset: int) -> Any:
    async def reached() -> Any:
        sub, _ = await system.dispatcher.get(sub_id)
        return sub if sub.committed_offset >= offset else None

    return await eventually(reached)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:  # noqa: ASYNC109
    """Poll ``check`` until it returns something truthy (state settling over real HTTP)."""
    async with asyncio.timeout(timeout):
        while not (result := await check()):  # noqa: ASYNC110 - the state is in the database
            await asyncio.sleep(0.01)
    return result


async def test_a_commit_cancelled_by_a_stop_is_written_by_the_final_flush(system: System) -> None:
    # The write of the last offset (5) hangs, so the periodic flush (every 50 ms) is the one
    # in flight when stop() cancels it; earlier writes go through. (A test that waited for
    # delivery first and then flushed itself raced that loop: when the loop had already written
    # everything, there was nothing left to flush and it waited for a write that never came.)
    gateway = system.dispatcher.subscriptions
    real_commit = gateway.commit
    writing = asyncio.Event()

    async def never_returns(progress: Any, now: datetime) -> None:
        if all(p.committed_offset < 5 for p in progress):
            await real_commit(progress, now)
            return
        writing.set()
        await asyncio.Event().wait()  # the write in flight when stop() cancels the flush

    gateway.commit = never_returns  # type: ignore[method-assign]
    sub_id = await system.subscribe(delivery={"ordered": True})
    await system.store.append("orders", [ev(i) for i in range(1, 6)])
    async with asyncio.timeout(30):
        while system.dispatcher.committed(sub_id) != 5:  # noqa: ASYNC110 - the worker's progress
            await asyncio.sleep(0.01)
        await writing.wait()
    del gateway.commit  # the real write again (the instance attribute hid the method)
    await system.restart()
    sub, _ = await system.dispatcher.get(sub_id)
    assert sub.committed_offset == 5  # was an older periodic commit: the progress was dropped
