"""Schedules inside the timer service: storing them and planning their ticks.

A schedule is a row of ``tideflow_schedules`` plus one internal timer
(kind :data:`SCHEDULE_KIND`) due at its next tick. Firing that timer runs
:func:`plan_schedules` in the firing transaction: it locks the schedule row,
asks :func:`~tideflow.timer.schedules.plan_ticks` which ticks to start, adds
one timer of the schedule's kind per tick (id ``<schedule>@<tick>``, so a
tick is started at most once however often planning runs), stores the next
tick and adds the internal timer for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg

from tideflow.isotime import format_timestamp
from tideflow.timer.gateway import TimerStore
from tideflow.timer.records import TimerRecord
from tideflow.timer.schedules import CatchUp, parse_schedule, plan_ticks

log = logging.getLogger("tideflow.timer")

SCHEDULE_KIND = "tideflow.schedule"
"""Kind of the internal timer that plans a schedule's ticks."""

Hold = Callable[[str, datetime], None]
"""Puts a timer into the service's wheel (if it is due soon)."""


async def add_planner(
    store: TimerStore, conn: asyncpg.Connection, schedule_id: str, tick: datetime, hold: Hold
) -> None:
    """Add the internal timer that plans ``schedule_id`` at ``tick`` (once per tick)."""
    key = f"schedule:{schedule_id}:{format_timestamp(tick)}"
    await store.insert(
        timer_id=key,
        kind=SCHEDULE_KIND,
        due_at=tick,
        payload={"schedule": schedule_id},
        idempotency_key=key,
        conn=conn,
    )
    hold(key, tick)  # harmless if the transaction rolls back: there is nothing to claim


async def plan_schedules(
    store: TimerStore,
    conn: asyncpg.Connection,
    timers: list[TimerRecord],
    *,
    now: datetime,
    grace: timedelta,
    max_catch_up: int,
    hold: Hold,
) -> None:
    """Handle fired planning timers: start the due ticks of their schedules."""
    for timer in timers:
        record = await store.lock_schedule(conn, timer.payload.get("schedule", ""))
        if record is None or record.state != "active":
            continue
        schedule = parse_schedule(record.spec, anchor=record.created_at or now)
        plan = plan_ticks(
            schedule,
            pending=record.next_tick,
            now=now,
            policy=CatchUp(record.catch_up),
            grace=grace,
            max_catch_up=max_catch_up,
        )
        for tick in plan.run:
            key = f"{record.id}@{format_timestamp(tick)}"
            await store.insert(
                timer_id=key,
                kind=record.kind,
                due_at=tick,
                payload=record.payload,
                idempotency_key=key,
                schedule_id=record.id,
                conn=conn,
            )
            hold(key, tick)
        if plan.skipped:
            log.info("schedule %s: skipped %d missed ticks", record.id, plan.skipped)
        await store.advance_schedule(conn, record.id, plan.next_tick)
        if plan.next_tick is not None:
            await add_planner(store, conn, record.id, plan.next_tick, hold)
