"""The only place that reads the time.

Everything else takes a :class:`Clock`, so tests can hand in a manual one.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """A source of time."""

    def now(self) -> datetime:
        """The current UTC time (timezone-aware)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Wait at least ``seconds`` of :meth:`monotonic` time.

        uvloop (what ``tideflow serve`` runs on) rounds a delay to whole
        milliseconds from a loop time read before the call, so one
        ``asyncio.sleep`` can end up to about 1 ms early; the rest is slept
        again (a delay that rounds to 0 ms is a pass of the loop).
        """
        end = time.monotonic() + seconds
        left = seconds
        while left > 0:
            await asyncio.sleep(left)
            left = end - time.monotonic()
        if seconds <= 0:
            await asyncio.sleep(0)


def thread_seconds() -> float:
    """CPU seconds the calling thread has used: how long a run *held* the event loop
    (a durable run's pace, :class:`tideflow.runtime.hosts.plumbing.ClockPace`), which
    the process being preempted on a loaded machine does not lengthen. Not a time of
    day or a duration to wait: nothing is scheduled by it."""
    return time.thread_time()


async def sleep_until(clock: Clock, due: datetime) -> None:
    """Sleep on ``clock`` until its :meth:`~Clock.now` reaches ``due``; never before.

    A clock's ``sleep`` measures time on its own scale (the system clock's is
    monotonic, ``now`` is the wall clock), so the time left is read again
    after each sleep and slept again while some is left.
    """
    while (left := (due - clock.now()).total_seconds()) > 0:
        await clock.sleep(left)


SYSTEM_CLOCK = SystemClock()
