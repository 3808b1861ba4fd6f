"""Sleeping never ends before its time: the system clock under uvloop, and sleep_until."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tideflow.clock import SYSTEM_CLOCK, sleep_until
from tideflow.testing import ManualClock


class EarlyClock(ManualClock):
    """A clock whose sleep ends 0.9 ms before the time asked for (what uvloop's rounding
    of a delay to whole milliseconds did to in-memory sleeps)."""

    def __init__(self) -> None:
        super().__init__(datetime(2026, 1, 1, tzinfo=UTC))
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds - 0.0009 if seconds > 0.001 else seconds)
        await asyncio.sleep(0)


async def test_sleep_until_sleeps_again_while_the_clock_is_before_the_due_time() -> None:
    clock = EarlyClock()
    due = clock.now() + timedelta(seconds=2)
    await sleep_until(clock, due)
    assert clock.now() >= due
    assert len(clock.sleeps) >= 2  # the first sleep ended early: it slept the rest
    assert clock.sleeps[0] == 2.0


async def test_sleep_until_a_past_time_does_not_sleep() -> None:
    clock = EarlyClock()
    await sleep_until(clock, clock.now() - timedelta(seconds=1))
    assert clock.sleeps == []


def test_the_system_clock_never_wakes_early_under_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")  # a dependency on every platform tideflow serves on

    async def one(delay: float) -> float:
        end = SYSTEM_CLOCK.monotonic() + delay
        await SYSTEM_CLOCK.sleep(delay)
        return SYSTEM_CLOCK.monotonic() - end

    async def many() -> list[float]:
        # 200 sleeps of 0.1 to 5 ms: uvloop alone ended about a third of them early
        delays = [0.0001 + 0.000025 * i for i in range(200)]
        return list(await asyncio.gather(*(one(d) for d in delays)))

    early = [late for late in uvloop.run(many()) if late < 0]
    assert early == []
