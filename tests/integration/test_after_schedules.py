"""DSL 1.0 ``schedule.after``: real PostgreSQL and runtime, the timer service on a manual clock.

A chain starts its first run at the deploy, and each next run ``after`` past
the end of the previous one -- never while it runs, never twice for one run
(handlers fired again add nothing), and it stops when a run is cancelled or
a newer version takes over.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tests.integration import test_workflow_schedules as schedules
from tests.integration.test_workflow_schedules import drain, instances_of, runtime
from tideflow.runtime.after_schedules import (
    AFTER_CHECK_KIND,
    AFTER_START_KIND,
    AfterSchedules,
    after_delay,
    chain_id,
    chain_instance_id,
    start_timer_id,
)
from tideflow.runtime.hosts.durable import DurableRuntime
from tideflow.testing import ManualClock
from tideflow.timer.records import TimerState

__all__ = ["runtime"]  # the fixture, shared with test_workflow_schedules

T0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)

AGAIN = """
document: {dsl: '1.0.3', namespace: test, name: again, version: '1.0.0'}
schedule:
  after: PT10S
do:
  - tick: {set: {ticked: true}}
"""

WAITING = """
document: {dsl: '1.0.3', namespace: test, name: waiting, version: '1.0.0'}
schedule:
  after: {seconds: 5}
do:
  - hold:
      listen:
        to:
          one: {with: {type: test.never, source: /t}}
"""


class System(schedules.System):
    """One "process" with 1.0 ``after`` chains, deploying YAML."""

    def __init__(self, pool: asyncpg.Pool, clock: ManualClock, runtime: DurableRuntime) -> None:
        super().__init__(pool, clock, runtime, after=True)
        assert self.after is not None
        self.chains: AfterSchedules = self.after

    async def deploy(
        self, source: str, media: str = "application/yaml"
    ) -> tuple[dict[str, object], ...]:
        return await super().deploy(source, media)


def run_id(workflow: str, run: int, version: str = "1.0.0") -> str:
    return chain_instance_id(start_timer_id(chain_id(workflow, version), run))


async def test_each_run_starts_after_the_previous_one_ended_plus_the_delay(
    pool: asyncpg.Pool, runtime: DurableRuntime
) -> None:
    clock = ManualClock(T0)
    system = System(pool, clock, runtime)
    assert await system.deploy(AGAIN) == ()  # no warning: it runs
    await drain(system)
    first = run_id("test.again", 0)
    assert [r.id for r in await instances_of(pool, "test.again")] == [first]
    assert (await runtime.wait_for_completion(first, 10)).status == "completed"
    clock.advance(9)
    await drain(system)  # nothing due before the first check
    assert len(await instances_of(pool, "test.again")) == 1
    clock.advance(1)
    await drain(system)  # the check sees the end: the next start is due 10 s later
    assert len(await instances_of(pool, "test.again")) == 1
    start = await system.timers.get(start_timer_id(chain_id("test.again", "1.0.0"), 1))
    assert start is not None
    assert start.state is TimerState.PENDING
    assert (start.due_at - clock.now()).total_seconds() == pytest.approx(10)
    clock.advance(10)
    await drain(system)
    rows = await instances_of(pool, "test.again")
    assert [r.id for r in rows] == [first, run_id("test.again", 1)]
    assert {r.version for r in rows} == {"1.0.0"}


async def test_handlers_fired_again_or_a_restart_start_nothing_twice(
    pool: asyncpg.Pool, runtime: DurableRuntime
) -> None:
    clock = ManualClock(T0)
    system = System(pool, clock, runtime)
    await system.deploy(AGAIN)
    for _ in range(2):
        await drain(system)
        for row in await instances_of(pool, "test.again"):
            await runtime.wait_for_completion(row.id, 10)
        clock.advance(10)
        await drain(system)
        clock.advance(10)
    await drain(system)
    rows = await instances_of(pool, "test.again")
    assert [r.id for r in rows] == [run_id("test.again", n) for n in range(3)]
    # A crash before a firing commit fires its timers again; a restart syncs again.
    starts = await system.timers.list_timers(kind=AFTER_START_KIND, state=TimerState.FIRED)
    checks = await system.timers.list_timers(kind=AFTER_CHECK_KIND, state=TimerState.FIRED)
    async with pool.acquire() as conn:
        await system.chains._fire_starts(starts, conn)
        await system.chains._fire_checks(checks, conn)
    restarted = System(pool, clock, runtime)
    await restarted.schedules.sync_all()
    await drain(restarted)
    assert [r.id for r in await instances_of(pool, "test.again")] == [r.id for r in rows]


async def test_a_run_still_waiting_is_checked_again_and_a_cancel_ends_the_chain(
    pool: asyncpg.Pool, runtime: DurableRuntime
) -> None:
    clock = ManualClock(T0)
    system = System(pool, clock, runtime)
    await system.deploy(WAITING)
    await drain(system)
    first = run_id("test.waiting", 0)
    for _ in range(3):  # it waits for an event that never comes: no second run
        clock.advance(5)
        await drain(system)
    assert [r.id for r in await instances_of(pool, "test.waiting")] == [first]
    pending = await system.timers.list_timers(kind=AFTER_CHECK_KIND, state=TimerState.PENDING)
    assert [t.id for t in pending] == [f"{chain_id('test.waiting', '1.0.0')}#0/check3"]
    await runtime.cancel(first)
    await runtime.wait_for_completion(first, 10)
    clock.advance(5)
    await drain(system)
    clock.advance(60)
    await drain(system)
    assert [r.id for r in await instances_of(pool, "test.waiting")] == [first]
    assert await system.timers.list_timers(kind=AFTER_START_KIND, state=TimerState.PENDING) == []
    assert await system.timers.list_timers(kind=AFTER_CHECK_KIND, state=TimerState.PENDING) == []


async def test_a_new_version_starts_its_own_chain_and_the_old_one_stops(
    pool: asyncpg.Pool, runtime: DurableRuntime
) -> None:
    clock = ManualClock(T0)
    system = System(pool, clock, runtime)
    await system.deploy(AGAIN)
    await drain(system)
    await runtime.wait_for_completion(run_id("test.again", 0), 10)
    await system.deploy(AGAIN.replace("version: '1.0.0'", "version: '2.0.0'"))
    await drain(system)
    for _ in range(2):
        clock.advance(10)
        await drain(system)
    ids = [r.id for r in await instances_of(pool, "test.again")]
    assert ids[:2] == [run_id("test.again", 0), run_id("test.again", 0, "2.0.0")]
    assert run_id("test.again", 1) not in ids  # the 1.0.0 chain stopped at its next start
    # A version without 'after' ends every chain.
    await system.deploy(
        AGAIN.replace("version: '1.0.0'", "version: '3.0.0'").replace(
            "schedule:\n  after: PT10S\n", ""
        )
    )
    before = len(await instances_of(pool, "test.again"))
    for _ in range(4):
        clock.advance(10)
        await drain(system)
    assert len(await instances_of(pool, "test.again")) == before


def test_an_unreadable_delay_counts_as_no_schedule() -> None:
    document = {
        "document": {"dsl": "1.0.3", "namespace": "t", "name": "n", "version": "1"},
        "schedule": {"after": "PTxyz"},
        "do": [],
    }
    assert after_delay(document) is None
    assert after_delay({**document, "schedule": {"after": {"seconds": 5}}}) == timedelta(seconds=5)
