"""The durable timer service against real PostgreSQL (an injected clock; no sleeping)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tideflow.clock import SYSTEM_CLOCK
from tideflow.errors import InvalidArgument, InvalidSchedule
from tideflow.testing import ManualClock
from tideflow.timer.planner import SCHEDULE_KIND
from tideflow.timer.records import TimerRecord, TimerState
from tideflow.timer.schedules import CatchUp
from tideflow.timer.service import TimerService

T0 = datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)


class Recorder:
    """A handler that remembers what it fired (and can be told to fail)."""

    def __init__(self) -> None:
        self.fired: list[TimerRecord] = []
        self.failures: Counter[str] = Counter()  # timer id -> calls left that fail

    async def __call__(self, timers: list[TimerRecord], conn: asyncpg.Connection) -> None:
        failing = [t.id for t in timers if self.failures[t.id] > 0]
        if failing:
            self.failures.subtract(failing)
            raise RuntimeError("handler failed on purpose")
        self.fired.extend(timers)

    @property
    def ids(self) -> list[str]:
        return [t.id for t in self.fired]


def make_service(
    pool: asyncpg.Pool, clock: Any, recorder: Recorder, **options: Any
) -> TimerService:
    service = TimerService(pool, clock=clock, **options)
    service.register("test", recorder)
    return service


async def drain(*services: TimerService) -> list[TimerRecord]:
    """Run load+fire steps until nothing more fires (planning adds timers due at once)."""
    fired: list[TimerRecord] = []
    for _ in range(20):
        results = await asyncio.gather(*(s.run_once() for s in services))
        batch = [t for result in results for t in result]
        if not batch:
            return fired
        fired += batch
    raise AssertionError("timers kept firing")


async def test_timer_fires_when_due_and_not_before(pool: asyncpg.Pool) -> None:
    clock, recorder = ManualClock(T0), Recorder()
    service = make_service(pool, clock, recorder)
    added = await service.add_after("test", "PT5S", {"n": 1}, timer_id="t1")
    assert added.state is TimerState.PENDING
    clock.advance(4.99)
    assert await service.run_once() == []
    clock.advance(0.01)
    assert [t.id for t in await service.run_once()] == ["t1"]
    assert recorder.fired[0].payload == {"n": 1}
    stored = await service.get("t1")
    assert stored is not None
    assert stored.state is TimerState.FIRED
    assert stored.fired_at == T0 + timedelta(seconds=5)


async def test_restart_fires_overdue_timers_at_once_in_due_order(pool: asyncpg.Pool) -> None:
    clock = ManualClock(T0)
    first = make_service(pool, clock, Recorder())
    for name, seconds in [("c", 3), ("a", 1), ("far", 3600), ("b", 2)]:
        await first.add_after("test", seconds, timer_id=name)
    # The process dies before anything is due; time passes while it is down.
    clock.advance(120)
    recorder = Recorder()
    second = make_service(pool, clock, recorder)
    fired = await second.run_once()
    assert [t.id for t in fired] == ["a", "b", "c"]
    assert recorder.ids == ["a", "b", "c"]
    assert await second.run_once() == []  # nothing fires twice
    pending = await second.list_timers(state=TimerState.PENDING)
    assert [t.id for t in pending] == ["far"]


async def test_cancel(pool: asyncpg.Pool) -> None:
    clock, recorder = ManualClock(T0), Recorder()
    service = make_service(pool, clock, recorder)
    await service.add_after("test", 1, timer_id="keep")
    await service.add_after("test", 1, timer_id="drop")
    assert await service.cancel("drop") is True
    assert await service.cancel("drop") is False
    assert await service.cancel("never-added") is False
    clock.advance(2)
    assert [t.id for t in await service.run_once()] == ["keep"]
    dropped = await service.get("drop")
    assert dropped is not None
    assert dropped.state is TimerState.CANCELLED


async def test_cancel_from_another_process_wins_over_its_wheel(pool: asyncpg.Pool) -> None:
    clock, recorder = ManualClock(T0), Recorder()
    holder = make_service(pool, clock, recorder)
    other = make_service(pool, clock, Recorder())
    await holder.add_after("test", 1, timer_id="x")  # now in holder's wheel
    assert await other.cancel("x") is True
    clock.advance(2)
    assert await holder.run_once() == []
    assert recorder.fired == []


async def test_idempotency_key_adds_once(pool: asyncpg.Pool) -> None:
    service = make_service(pool, ManualClock(T0), Recorder())
    one = await service.add_after("test", 5, idempotency_key="k")
    two = await service.add_after("test", 50, idempotency_key="k")
    assert two.id == one.id
    assert two.due_at == one.due_at
    assert len(await service.list_timers()) == 1


async def test_two_services_on_one_database_fire_each_timer_once(pool: asyncpg.Pool) -> None:
    clock = ManualClock(T0)
    left, right = Recorder(), Recorder()
    a = make_service(pool, clock, left, batch_size=7)
    b = make_service(pool, clock, right, batch_size=7)
    for i in range(150):
        await (a if i % 2 else b).add_after("test", 1 + (i % 10) / 10, timer_id=f"t{i:03}")
    await asyncio.gather(a.load(), b.load())
    clock.advance(5)
    await drain(a, b)
    counts = Counter(left.ids + right.ids)
    assert set(counts) == {f"t{i:03}" for i in range(150)}
    assert max(counts.values()) == 1
    assert await a.list_timers(state=TimerState.PENDING) == []


async def test_failed_handler_leaves_timer_pending_and_retries_with_backoff(
    pool: asyncpg.Pool,
) -> None:
    clock, recorder = ManualClock(T0), Recorder()
    service = make_service(pool, clock, recorder, retry_base=10.0)
    await service.add_after("test", 1, timer_id="ok")
    await service.add_after("test", 1, timer_id="flaky")
    recorder.failures["flaky"] = 2  # fails in the batch, then alone
    clock.advance(1)
    fired = await service.run_once()
    assert [t.id for t in fired] == ["ok"]
    flaky = await service.get("flaky")
    assert flaky is not None
    assert flaky.state is TimerState.PENDING
    assert flaky.attempts == 1
    assert flaky.last_error is not None
    assert "failed on purpose" in flaky.last_error
    assert flaky.due_at == T0 + timedelta(seconds=11)
    clock.advance(9.9)
    assert await service.run_once() == []
    clock.advance(0.1)
    assert [t.id for t in await service.run_once()] == ["flaky"]


async def test_handler_effect_in_the_firing_transaction_happens_once(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE effects (timer_id text PRIMARY KEY)")
    crash = {"after_effect": True}

    async def handler(timers: list[TimerRecord], conn: asyncpg.Connection) -> None:
        for timer in timers:
            await conn.execute("INSERT INTO effects VALUES ($1)", timer.id)
        if crash["after_effect"]:
            crash["after_effect"] = False
            raise ConnectionResetError("the process died after the effect")

    clock = ManualClock(T0)
    service = TimerService(pool, clock=clock, retry_base=0.5)
    service.register("effect", handler)
    await service.add_after("effect", 1, timer_id="e1")
    clock.advance(1)
    await service.run_once()  # batch fails, single retry succeeds
    clock.advance(1)
    await service.run_once()
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM effects") == 1


async def test_cron_schedule_across_a_simulated_restart(pool: asyncpg.Pool) -> None:
    clock = ManualClock(T0)  # 00:00:30
    before = Recorder()
    first = make_service(pool, clock, before)
    record = await first.schedule("test", "* * * * *", {"wf": "w"}, schedule_id="every-minute")
    assert record.next_tick == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    for _ in range(2):
        clock.advance(60)
        await drain(first)
    assert before.ids == ["every-minute@2026-01-01T00:01:00Z", "every-minute@2026-01-01T00:02:00Z"]
    assert before.fired[0].payload == {"wf": "w"}
    assert before.fired[0].schedule_id == "every-minute"
    # Down from 00:02:30 to 00:10:50: ticks 00:03 .. 00:10 are missed; 00:10 is within grace.
    clock.advance(500)
    after, again = Recorder(), Recorder()
    second = make_service(pool, clock, after)
    third = make_service(pool, clock, again)  # a second process starting at the same time
    await drain(second, third)
    assert sorted(after.ids + again.ids) == ["every-minute@2026-01-01T00:10:00Z"]
    clock.advance(10)  # 00:11:00
    await drain(second, third)
    ticks = Counter(before.ids + after.ids + again.ids)
    assert max(ticks.values()) == 1
    assert "every-minute@2026-01-01T00:11:00Z" in ticks
    stored = await second.store.get_schedule("every-minute")
    assert stored is not None
    assert stored.next_tick == datetime(2026, 1, 1, 0, 12, tzinfo=UTC)


async def test_schedule_catch_up_all_runs_every_missed_tick(pool: asyncpg.Pool) -> None:
    clock, recorder = ManualClock(T0), Recorder()
    service = make_service(pool, clock, recorder)
    await service.schedule("test", "R/PT10M", schedule_id="s", catch_up=CatchUp.ALL)
    clock.advance(3600)
    await drain(make_service(pool, clock, recorder))
    assert len(recorder.ids) == 6
    assert recorder.fired[0].due_at == T0 + timedelta(minutes=10)
    assert [t.due_at for t in recorder.fired] == sorted(t.due_at for t in recorder.fired)


async def test_cancelled_schedule_starts_nothing(pool: asyncpg.Pool) -> None:
    clock, recorder = ManualClock(T0), Recorder()
    service = make_service(pool, clock, recorder)
    await service.schedule("test", "R/PT1M", schedule_id="s")
    assert await service.cancel_schedule("s") is True
    clock.advance(300)
    await drain(service)
    assert recorder.fired == []


async def test_invalid_schedule_is_rejected_before_storing(pool: asyncpg.Pool) -> None:
    service = make_service(pool, ManualClock(T0), Recorder())
    with pytest.raises(InvalidSchedule, match="invalid cron expression"):
        await service.schedule("test", "61 * * * *", schedule_id="bad")
    assert await service.store.list_schedules() == []


async def test_background_loops_fire_on_the_real_clock(pool: asyncpg.Pool) -> None:
    fired = asyncio.Event()
    seen: list[datetime] = []

    async def handler(timers: list[TimerRecord], conn: asyncpg.Connection) -> None:
        seen.append(SYSTEM_CLOCK.now())
        fired.set()

    service = TimerService(pool, poll_interval=0.2)
    service.register("real", handler)
    async with service:
        timer = await service.add_after("real", 0.3)
        await asyncio.wait_for(fired.wait(), timeout=10)
    assert seen[0] >= timer.due_at  # never early (how late is the machine's business)


async def test_two_running_services_share_timers_on_the_real_clock(pool: asyncpg.Pool) -> None:
    fired: list[str] = []
    all_fired = asyncio.Event()

    async def handler(timers: list[TimerRecord], conn: asyncpg.Connection) -> None:
        fired.extend(t.id for t in timers)
        if len(fired) >= 600:
            all_fired.set()

    a = TimerService(pool, poll_interval=0.2, batch_size=50)
    b = TimerService(pool, poll_interval=0.2, batch_size=50)
    a.register("test", handler)
    b.register("test", handler)
    async with a, b:
        now = SYSTEM_CLOCK.now()
        await a.add_many("test", [(now + timedelta(milliseconds=i), {}, None) for i in range(300)])
        await b.add_many("test", [(now + timedelta(milliseconds=i), {}, None) for i in range(300)])
        await asyncio.wait_for(all_fired.wait(), timeout=20)
    counts = Counter(fired)
    assert len(counts) == 600
    assert max(counts.values()) == 1
    assert await a.list_timers(state=TimerState.PENDING) == []


async def test_incremental_load_sees_timers_another_process_adds(pool: asyncpg.Pool) -> None:
    clock, recorder = ManualClock(T0), Recorder()
    loader = make_service(pool, clock, recorder)
    adder = make_service(pool, clock, Recorder())
    assert await loader.load() == 0  # the first load reads the whole horizon
    await adder.add_after("test", 5, timer_id="theirs")
    assert await loader.load() == 1  # an incremental load: added since the last one
    clock.advance(5)
    assert [t.id for t in await loader.fire_due()] == ["theirs"]


async def test_full_rescan_catches_what_the_incremental_load_cannot_see(pool: asyncpg.Pool) -> None:
    clock, recorder = ManualClock(T0), Recorder()
    service = make_service(pool, clock, recorder, full_rescan=10.0)
    await service.load()
    async with pool.acquire() as conn:  # as if its transaction had stayed open for an hour
        await conn.execute(
            "INSERT INTO tideflow_timers (id, kind, due_at, touched_at)"
            " VALUES ('late', 'test', $1, now() - interval '1 hour')",
            T0 + timedelta(seconds=1),
        )
    clock.advance(2)
    assert await service.run_once() == []
    clock.advance(10)
    assert [t.id for t in await service.run_once()] == ["late"]


async def test_one_handler_per_kind(pool: asyncpg.Pool) -> None:
    service = make_service(pool, ManualClock(T0), Recorder())
    with pytest.raises(InvalidArgument, match="a handler for timer kind 'test' exists"):
        service.register("test", Recorder())
    with pytest.raises(InvalidArgument, match=r"tideflow\.schedule"):
        service.register(SCHEDULE_KIND, Recorder())
