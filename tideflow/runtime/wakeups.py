"""Workflow time through the timer service: the wake-up timers of parked instances.

Every wait on time of the durable runtime -- a sleep state, an action's
``sleep.before``/``sleep.after``, a retry back-off, a state, action, event
or workflow timeout, ``resultEventTimeout``, a sync sub-flow's
``actionExecTimeout`` -- that *parks* its instance becomes one durable timer
of kind :data:`WAKE_KIND` in ``tideflow_timers``:

- **Added with the park.** The journal writer inserts it in the transaction
  that parks the instance (:func:`insert_wake_timers`), so a park without its
  timer is never committed. Its idempotency key is
  ``<instance>/<run>/<step key>`` (:func:`wake_key`), the step whose journaled
  due time is the earliest the instance waits for: parking again on the same
  step adds nothing (or re-arms the timer if it already fired or was
  cancelled, which only happens when a wait ended early and the step parks
  again).
- **Fired by the timer service.** :func:`fire_wakeups` is the kind's handler:
  inside the firing transaction, on the claimed rows' connection, it makes
  the instances runnable (``wake_at = now()``, or ``woken`` for one running
  at that moment) and NOTIFYs the workers, which claim and replay them; the
  replay finds the due time passed. Several processes share the timers
  (``FOR UPDATE SKIP LOCKED``): one of them fires each.
- **Harmless when late.** An instance that ended, was suspended, or moved on
  to another run is not touched. When events answer a wait before its
  timeout, the wait's timer is cancelled in the delivering transaction
  (:func:`cancel_wake_timer`); so is a sync sub-flow step's when the child
  answers first (query ``answer_parent``). A timer whose step ended another way (a
  deadline whose body finished first) fires into an instance waiting for
  something else: it replays, finds nothing due and parks again.

Timers appear in ``GET /timers`` and ``tideflow timers list --kind
tideflow.instance.wake``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

from tideflow.errors import TideflowError
from tideflow.runtime import gateway
from tideflow.supervise import TaskSet
from tideflow.timer.records import TimerRecord

if TYPE_CHECKING:
    from tideflow.timer.service import TimerService

log = logging.getLogger("tideflow.runtime")

__all__ = ["WAKE_KIND", "TimerLoader", "WakeUp", "cancel_wake_timer", "fire_wakeups", "wake_key"]

WAKE_KIND = "tideflow.instance.wake"
"""Timer kind of parked instances' wake-ups."""

WakeUp = tuple[str, int, str, datetime]
"""(instance id, run number, step key, due time) of a park."""


def wake_key(instance_id: str, run_no: int, step_key: str) -> str:
    """The idempotency key of a step's wake-up timer: ``<instance>/<run>/<step key>``."""
    return f"{instance_id}/{run_no}/{step_key}"


async def insert_wake_timers(conn: asyncpg.Connection, wakeups: Sequence[WakeUp]) -> None:
    """Add the wake-up timers of parks, on the parking transaction's connection."""
    unique = {wake_key(i, r, k): (i, r, k, due) for i, r, k, due in wakeups}
    if not unique:
        return
    timers = [
        (due, {"instance": i, "run": r, "key": k}, key) for key, (i, r, k, due) in unique.items()
    ]
    await gateway.insert_wake_timers(conn, WAKE_KIND, timers)


async def cancel_wake_timer(
    conn: asyncpg.Connection, instance_id: str, run_no: int, step_key: str
) -> None:
    """Cancel a step's pending wake-up timer (its wait ended before the due time)."""
    await gateway.cancel_wake_timer(conn, wake_key(instance_id, run_no, step_key))


async def fire_wakeups(timers: list[TimerRecord], conn: asyncpg.Connection) -> None:
    """The timer service's handler for :data:`WAKE_KIND` (inside the firing transaction)."""
    instances = [str(t.payload.get("instance", "")) for t in timers]
    runs = [int(t.payload.get("run", 0)) for t in timers]
    if await gateway.wake_instances(conn, instances, runs):
        await gateway.notify_wake(conn)


class TimerLoader:
    """Has a timer service read newly committed wake-up timers at once.

    Its own poll would see them within ``poll_interval``; a park due sooner
    than that would fire late. One load runs at a time, and one more when
    timers were committed meanwhile.

    Args:
        timers: The timer service.
    """

    def __init__(self, timers: TimerService) -> None:
        self._timers = timers
        self._loads = TaskSet("loading wake-up timers", log)
        self._again = False

    def poke(self) -> None:
        """Wake-up timers were committed (the journal writer's hook)."""
        if len(self._loads):
            self._again = True
            return
        # One load at a time, tracked here, not supervised: _load logs its own failures
        # (the timer service's poll loads the timers anyway) and close() cancels it.
        self._loads.spawn(self._load())

    async def _load(self) -> None:
        while True:
            self._again = False
            try:
                await self._timers.load()
            except (TideflowError, asyncpg.PostgresError, OSError) as exc:
                log.warning("loading wake-up timers failed (the poll will): %s", exc)
            if not self._again:
                return

    async def close(self) -> None:
        """Stop a load in progress."""
        await self._loads.cancel()
