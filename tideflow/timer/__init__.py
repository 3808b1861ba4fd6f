"""Timers: a hierarchical timing wheel, schedules, and (in ``service``) durable timers.

The pure parts are exported here; the durable service lives in
:mod:`tideflow.timer.service` and delayed CloudEvents in
:mod:`tideflow.timer.delayed` (both need a database).
"""

from __future__ import annotations

from tideflow.timer.records import ScheduleRecord, TimerRecord, TimerState
from tideflow.timer.schedules import (
    CatchUp,
    CronSchedule,
    IntervalSchedule,
    Schedule,
    TickPlan,
    parse_schedule,
    plan_ticks,
)
from tideflow.timer.wheel import DueTimer, TimingWheel

__all__ = [
    "CatchUp",
    "CronSchedule",
    "DueTimer",
    "IntervalSchedule",
    "Schedule",
    "ScheduleRecord",
    "TickPlan",
    "TimerRecord",
    "TimerState",
    "TimingWheel",
    "parse_schedule",
    "plan_ticks",
]
