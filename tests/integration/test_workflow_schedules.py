"""Workflows started on ``start.schedule``: real PostgreSQL, an injected clock, no sleeping.

The timer service runs on a :class:`ManualClock`; instances are started by a
real :class:`DurableRuntime`. A "restart" is a new timer service (and
``WorkflowSchedules``) on the same database with the clock moved on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import asyncpg
import pytest

from tests.support.conformance import SW08_EXAMPLES, needs
from tideflow.deploy import deploy_definition
from tideflow.errors import WorkflowValidationError
from tideflow.isotime import format_timestamp
from tideflow.runtime.after_schedules import AfterSchedules
from tideflow.runtime.gateway import PostgresInstances, PostgresRegistry
from tideflow.runtime.hosts.durable import DurableRuntime
from tideflow.runtime.start_schedules import (
    EVENT_START_WARNING,
    WORKFLOW_START_KIND,
    WorkflowSchedules,
    check_start_schedule,
    instance_id_for,
    schedule_id,
)
from tideflow.testing import ManualClock
from tideflow.timer.records import TimerState
from tideflow.timer.service import TimerService

T0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
EXAMPLES = SW08_EXAMPLES


def definition(wf_id: str, schedule: Any, *, version: str = "1", event_start: bool = False) -> str:
    """A JSON workflow (one inject state, or an event state) with ``start.schedule``."""
    doc: dict[str, Any] = {"id": wf_id, "version": version, "specVersion": "0.8"}
    if event_start:
        doc["events"] = [{"name": "Tick", "type": "tick", "source": "clock"}]
        first: dict[str, Any] = {
            "name": "Begin",
            "type": "event",
            "onEvents": [{"eventRefs": ["Tick"]}],
            "end": True,
        }
    else:
        first = {"name": "Begin", "type": "inject", "data": {"ran": True}, "end": True}
    doc["start"] = "Begin" if schedule is None else {"stateName": "Begin", "schedule": schedule}
    doc["states"] = [first]
    return json.dumps(doc)


class System:
    """One "process": a timer service on the manual clock and the schedules wiring."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: ManualClock,
        runtime: DurableRuntime,
        *,
        after: bool = False,
    ) -> None:
        self.registry = PostgresRegistry(pool)
        self.timers = TimerService(pool, clock=clock)
        self.after: AfterSchedules | None = None
        if after:  # 1.0 schedule.after chains (tests/integration/test_after_schedules.py)
            self.after = AfterSchedules(
                self.timers, self.registry, runtime.start_instance, runtime.instances.get
            )
            self.after.register()
        self.schedules = WorkflowSchedules(
            self.timers, self.registry, runtime.start_instance, self.after
        )
        self.schedules.register()

    async def deploy(
        self, source: str, media: str = "application/json"
    ) -> tuple[dict[str, Any], ...]:
        deployed = await deploy_definition(self.registry, source, media)
        await self.schedules.sync(deployed.version.workflow_id)
        return deployed.warnings


@pytest.fixture
async def runtime(pool: asyncpg.Pool) -> AsyncIterator[DurableRuntime]:
    async with DurableRuntime(pool) as rt:
        yield rt


class HasTimers(Protocol):
    """A "process" with a timer service (this module's System, or another test's)."""

    timers: TimerService


async def drain(*systems: HasTimers) -> int:
    """Load and fire until nothing more fires (planning adds tick timers due at once)."""
    fired = 0
    for _ in range(20):
        results = await asyncio.gather(*(s.timers.run_once() for s in systems))
        batch = sum(len(r) for r in results)
        if not batch:
            return fired
        fired += batch
    raise AssertionError("timers kept firing")


async def instances_of(pool: asyncpg.Pool, wf_id: str) -> list[Any]:
    rows, _ = await PostgresInstances(pool).list(workflow=wf_id, limit=1000)
    return rows


def tick_instance(wf_id: str, tick: datetime) -> str:
    return instance_id_for(f"{schedule_id(wf_id)}@{format_timestamp(tick)}")


async def test_interval_schedule_starts_one_instance_per_tick_with_empty_input(
    pool: asyncpg.Pool, runtime: DurableRuntime
) -> None:
    clock = ManualClock(T0)
    system = System(pool, clock, runtime)
    assert await system.deploy(definition("every-second", "R/PT1S")) == ()
    record = await system.timers.store.get_schedule("workflow:every-second")
    assert record is not None
    assert record.next_tick == T0 + timedelta(seconds=1)
    await drain(system)
    assert await instances_of(pool, "every-second") == []  # nothing before the first tick
    for _ in range(3):
        clock.advance(1)
        await drain(system)
    rows = await instances_of(pool, "every-second")
    ticks = [T0 + timedelta(seconds=n) for n in (1, 2, 3)]
    assert [r.id for r in rows] == [tick_instance("every-second", t) for t in ticks]
    assert {json.dumps(r.input) for r in rows} == {"{}"}
    assert {r.version for r in rows} == {"1"}


async def test_a_tick_fired_again_or_by_two_processes_starts_one_instance(
    pool: asyncpg.Pool, runtime: DurableRuntime
) -> None:
    clock = ManualClock(T0)
    first, second = System(pool, clock, runtime), System(pool, clock, runtime)
    await first.deploy(definition("twice", "R/PT10S"))
    for _ in range(3):
        clock.advance(10)
        await drain(first, second)
    rows = await instances_of(pool, "twice")
    assert len(rows) == 3
    # A crash after the start and before the firing commit fires the tick again.
    fired = await first.timers.list_timers(kind=WORKFLOW_START_KIND, state=TimerState.FIRED)
    assert len(fired) == 3
    async with pool.acquire() as conn:
        await first.schedules.fire(fired, conn)
        await second.schedules.fire(fired[:1], conn)
    assert [r.id for r in await instances_of(pool, "twice")] == [r.id for r in rows]


async def test_cron_schedule_across_a_restart_runs_the_latest_missed_tick_once(
    pool: asyncpg.Pool, runtime: DurableRuntime
) -> None:
    clock = ManualClock(T0)
    before = System(pool, clock, runtime)
    source = definition("every-5-min", {"cron": "*/5 * * * *"})
    await before.deploy(source)
    clock.advance(300)
    await drain(before)
    assert [r.id for r in await instances_of(pool, "every-5-min")] == [
        tick_instance("every-5-min", T0 + timedelta(minutes=5))
    ]
    # Down for 32 minutes: the ticks at :10 ... :35 are missed (grace is 1 minute).
    clock.advance(32 * 60)
    after = System(pool, clock, runtime)
    await after.deploy(source)  # serve --workflows deploys the same definition again
    assert await after.schedules.sync_all() == 1
    await drain(after)
    ids = [r.id for r in await instances_of(pool, "every-5-min")]
    latest_missed = T0 + timedelta(minutes=35)
    assert ids == [
        tick_instance("every-5-min", T0 + timedelta(minutes=5)),
        tick_instance("every-5-min", latest_missed),
    ]
    record = await after.timers.store.get_schedule("workflow:every-5-min")
    assert record is not None
    assert record.next_tick == T0 + timedelta(minutes=40)
    clock.advance(3 * 60)  # 10:40 -- on time again
    await drain(after, before)
    assert len(await instances_of(pool, "every-5-min")) == 3


async def test_ticks_of_many_workflows_due_together_start_one_instance_each(
    pool: asyncpg.Pool, runtime: DurableRuntime
) -> None:
    clock = ManualClock(T0)
    system = System(pool, clock, runtime)
    names = [f"hourly-{n}" for n in range(12)]
    for name in names:
        await system.deploy(definition(name, {"cron": "0 * * * *"}))
    clock.advance(3600)
    await drain(system)
    for name in names:
        rows = await instances_of(pool, name)
        assert [r.id for r in rows] == [tick_instance(name, T0 + timedelta(hours=1))]


async def test_a_changed_schedule_replaces_the_old_one(
    pool: asyncpg.Pool, runtime: DurableRuntime
) -> None:
    clock = ManualClock(T0)
    system = System(pool, clock, runtime)
    await system.deploy(definition("paced", "R/PT1H"))
    await system.deploy(definition("paced", {"interval": "R/PT1M"}, version="2"))
    clock.advance(60)
    await drain(system)
    rows = await instances_of(pool, "paced")
    assert [(r.id, r.version) for r in rows] == [
        (tick_instance("paced", T0 + timedelta(minutes=1)), "2")
    ]


async def test_cron_in_a_time_zone_ticks_on_that_wall_clock(
    pool: asyncpg.Pool, runtime: DurableRuntime
) -> None:
    clock = ManualClock(T0)  # 10:00 UTC = 11:00 in Paris (winter)
    system = System(pool, clock, runtime)
    schedule = {"cron": {"expression": "0 12 * * *"}, "timezone": "Europe/Paris"}
    await system.deploy(definition("paris-noon", schedule))
    record = await system.timers.store.get_schedule("workflow:paris-noon")
    assert record is not None
    assert record.next_tick == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    clock.advance(3600)
    await drain(system)
    assert len(await instances_of(pool, "paris-noon")) == 1


async def test_cron_valid_until_ends_the_schedule(
    pool: asyncpg.Pool, runtime: DurableRuntime
) -> None:
    clock = ManualClock(T0)
    system = System(pool, clock, runtime)
    until = "2026-03-02T10:02:30Z"
    await system.deploy(
        definition("brief", {"cron": {"expression": "* * * * *", "validUntil": until}})
    )
    for _ in range(5):
        clock.advance(60)
        await drain(system)
    ticks = [T0 + timedelta(minutes=n) for n in (1, 2)]
    assert [r.id for r in await instances_of(pool, "brief")] == [
        tick_instance("brief", t) for t in ticks
    ]
    record = await system.timers.store.get_schedule("workflow:brief")
    assert record is not None
    assert (record.state, record.next_tick) == ("ended", None)
    assert await system.schedules.sync_all() == 0


async def test_delete_and_a_version_without_schedule_stop_the_ticks(
    pool: asyncpg.Pool, runtime: DurableRuntime
) -> None:
    clock = ManualClock(T0)
    system = System(pool, clock, runtime)
    await system.deploy(definition("stops", "R/PT1M"))
    await system.deploy(definition("stops", None, version="2"))
    record = await system.timers.store.get_schedule("workflow:stops")
    assert record is not None
    assert record.state == "cancelled"
    clock.advance(120)
    await drain(system)
    assert await instances_of(pool, "stops") == []

    await system.deploy(definition("stops", "R/PT1M", version="3"))
    await system.registry.delete("stops")
    await system.schedules.sync("stops")
    clock.advance(120)
    await drain(system)
    assert await instances_of(pool, "stops") == []
    record = await system.timers.store.get_schedule("workflow:stops")
    assert record is not None
    assert record.state == "cancelled"


async def test_a_tick_of_a_workflow_deleted_meanwhile_starts_nothing(
    pool: asyncpg.Pool, runtime: DurableRuntime
) -> None:
    clock = ManualClock(T0)
    system = System(pool, clock, runtime)
    await system.deploy(definition("gone", "R/PT1M"))
    clock.advance(60)
    # The tick is planned (its timer added) before the delete reaches the schedule.
    await system.timers.run_once()
    await system.registry.delete("gone")
    await drain(system)
    assert await instances_of(pool, "gone") == []
    ticks = await system.timers.list_timers(kind=WORKFLOW_START_KIND)
    assert [t.state for t in ticks] == [TimerState.FIRED]


async def test_sync_all_cancels_schedules_of_deleted_workflows(
    pool: asyncpg.Pool, runtime: DurableRuntime
) -> None:
    clock = ManualClock(T0)
    system = System(pool, clock, runtime)
    await system.deploy(definition("kept", "R/PT1M"))
    await system.deploy(definition("dropped", "R/PT1M"))
    await system.registry.delete("dropped")  # by a process without the schedules wiring
    assert await system.schedules.sync_all() == 1
    dropped = await system.timers.store.get_schedule("workflow:dropped")
    assert dropped is not None
    assert dropped.state == "cancelled"


async def test_event_start_state_with_a_schedule_warns_and_starts_nothing(
    pool: asyncpg.Pool, runtime: DurableRuntime
) -> None:
    clock = ManualClock(T0)
    system = System(pool, clock, runtime)
    warnings = await system.deploy(definition("on-event", "R/PT1M", event_start=True))
    assert warnings == (
        {"path": "start.schedule", "message": EVENT_START_WARNING, "severity": "warning"},
    )
    assert await system.timers.store.get_schedule("workflow:on-event") is None
    clock.advance(600)
    await drain(system)
    assert await instances_of(pool, "on-event") == []


@pytest.mark.parametrize(
    ("schedule", "path"),
    [
        ({"cron": "99 * * * *"}, "start.schedule.cron"),
        ({"cron": {"expression": "0 0 31 2 *"}}, "start.schedule.cron.expression"),
        ("R/PT0S", "start.schedule"),
    ],
)
def test_an_unusable_schedule_is_a_validation_error_with_its_path(schedule: Any, path: str) -> None:
    document = json.loads(definition("bad", schedule))
    with pytest.raises(WorkflowValidationError) as caught:
        check_start_schedule(document, "bad.json")
    assert [p.to_json()["path"] for p in caught.value.problems] == [path]


async def test_deploy_rejects_an_unusable_schedule_before_storing(pool: asyncpg.Pool) -> None:
    registry = PostgresRegistry(pool)
    with pytest.raises(WorkflowValidationError):
        await deploy_definition(
            registry, definition("never", {"cron": "61 * * * *"}), "application/json"
        )
    assert await registry.list() == []


@needs(EXAMPLES)
async def test_spec_examples_check_inbox_ticks_and_car_auction_warns(
    pool: asyncpg.Pool, runtime: DurableRuntime
) -> None:
    clock = ManualClock(T0 + timedelta(minutes=7))
    system = System(pool, clock, runtime)
    registry = system.registry
    inbox = await deploy_definition(
        registry, (EXAMPLES / "checkInbox.yaml").read_text(), "application/yaml"
    )
    assert inbox.warnings == ()
    record = await system.schedules.sync("checkInbox")
    assert record is not None
    assert record.next_tick == T0 + timedelta(minutes=15)  # Quartz 0 0/15 * * * ?
    auction = await deploy_definition(
        registry, (EXAMPLES / "handleCarAuctionBid.yaml").read_text(), "application/yaml"
    )
    assert [w["path"] for w in auction.warnings] == ["start.schedule"]
    assert await system.schedules.sync(auction.version.workflow_id) is None
