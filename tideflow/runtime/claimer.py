"""The loop that claims runnable instances with leases and hands them to runners.

Several processes share one database: each claims instances with
``FOR UPDATE SKIP LOCKED`` (two processes never claim the same row), holds
a lease it renews while the instance runs (every commit of its journal
renews it, and a renewal loop covers long calls), and loses it when it stops
renewing -- a crashed process's instances are then claimed by another one
and replayed. A commit only writes for instances whose lease the process
still holds, so an instance never runs in two processes at once.

Wake-ups: NOTIFY on ``tideflow_runtime`` (``wake`` when something became
runnable -- events delivered, a child ended, a wake-up timer of the timer
service fired for a sleep or timeout (:mod:`tideflow.runtime.wakeups`) --
``done:<ids>`` when instances ended), a local timer for the next known
``wake_at`` still in the future (rows parked by older versions), and a slow
poll. The LISTEN connection is the reconnecting one of :mod:`tideflow.notify`;
after a reconnect the claimer claims at once (a wake-up may have been missed).

A restart: the owner is the process's node id (``tideflow serve``: stable
across restarts, held with :func:`tideflow.node.hold_node`), so a restarted
process knows which leases were its own: :meth:`InstanceClaimer.take_over`
ends them at once instead of waiting them out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.notify import CONNECTION_ERRORS, Listener
from tideflow.runtime import gateway
from tideflow.runtime.gateway import NOTIFY_CHANNEL, InstanceRow
from tideflow.supervise import Supervisor

__all__ = ["ClaimerOptions", "InstanceClaimer"]

log = logging.getLogger("tideflow.runtime.claimer")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimerOptions:
    """How a process claims instances."""

    owner: str
    """This process's lease owner id."""
    lease_seconds: float = 5.0
    """Lease length; a process silent this long loses its instances."""
    poll_seconds: float = 2.0
    """Slow poll for work NOTIFY did not announce."""
    max_running: int = 2000
    """Instances held in memory at once."""
    claim_batch: int = 200
    """Instances claimed per query."""


class InstanceClaimer:
    """Claims instances for one runtime (see the module docs).

    Args:
        pool: The database pool.
        options: Owner, lease, poll, limits.
        spawn: Starts runners for claimed instances (loading their journals together).
        running: The ids of instances this process runs now.
        lost: Called with an instance whose lease renewal failed.
        done: Called with the id of an instance that ended (any process).
        clock: For the wake timer.
        health: The supervisor its LISTEN connection's state is reported to.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        options: ClaimerOptions,
        *,
        spawn: Callable[[list[InstanceRow]], Awaitable[None]],
        running: Callable[[], list[str]],
        lost: Callable[[str], None],
        done: Callable[[str], None],
        clock: Clock = SYSTEM_CLOCK,
        health: Supervisor | None = None,
    ) -> None:
        self._pool = pool
        self.options = options
        self._spawn = spawn
        self._running = running
        self._lost = lost
        self._done = done
        self._clock = clock
        self._poke = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.claimed = 0
        """Instances claimed so far (for tests and figures)."""
        self._stalled: set[str] = set()
        self.listener = Listener(pool, "runtime", clock=clock, health=health)
        self.listener.listen(NOTIFY_CHANNEL, self._notified)
        self.listener.on_reconnect(self.poke)  # a wake-up may have been missed meanwhile

    def poke(self) -> None:
        """Claim soon (something may be runnable)."""
        self._poke.set()

    def hand_back(self, instance_id: str) -> None:
        """Release ``instance_id`` at the next claim: its runner stopped on a database
        error, and waiting for its lease to run out would delay its replay for nothing."""
        self._stalled.add(instance_id)
        self._poke.set()

    def wake_at(self, when: datetime | None) -> None:
        """Claim again at ``when`` (a parked instance's wake time)."""
        if when is None:
            return
        delay = max(0.0, (when - self._clock.now()).total_seconds())
        loop = asyncio.get_running_loop()
        at = loop.time() + delay
        if self._timer_at is not None and self._timer_at <= at and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = loop.call_at(at, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        self._poke.set()

    async def run(self) -> None:
        """Listen, claim and renew until cancelled.

        Each loop outlives database outages (it logs, waits and tries again);
        a loop that raises anything else ends the others and :meth:`run` with
        it, for the runtime's supervisor to restart.
        """
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.listener.run())
                group.create_task(self._claim_loop())
                group.create_task(self._renew_loop())
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = self._timer_at = None

    def _notified(self, payload: str) -> None:
        if payload == "wake":
            self._poke.set()
        elif payload.startswith("done:"):
            for instance_id in payload[5:].split(","):
                self._done(instance_id)

    async def _claim_loop(self) -> None:
        self._poke.set()
        while True:
            try:
                async with asyncio.timeout(self.options.poll_seconds):
                    await self._poke.wait()
            except TimeoutError:
                pass
            self._poke.clear()
            try:
                await self._claim()
            except CONNECTION_ERRORS as exc:  # the next poll (or a reconnect) tries again
                log.warning("claiming instances failed: %s", exc)

    async def _claim(self) -> None:
        room = self.options.max_running - len(self._running())
        if room <= 0:
            return
        limit = min(room, self.options.claim_batch)
        async with self._pool.acquire() as conn:
            if self._stalled:  # claimed again below, or by another process
                stalled = list(self._stalled)
                await gateway.release_instances(conn, self.options.owner, stalled)
                self._stalled.difference_update(stalled)
            rows = await gateway.claim_instances(
                conn, self.options.owner, self.options.lease_seconds, limit
            )
            if len(rows) < limit:
                self.wake_at(await gateway.next_wake(conn))
        self.claimed += len(rows)
        if rows:
            await self._spawn(rows)
        if len(rows) == limit:
            self._poke.set()

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.lease_seconds / 3)
            ids = self._running()
            if not ids:
                continue
            try:
                async with self._pool.acquire() as conn:
                    held = await gateway.renew_leases(
                        conn, self.options.owner, ids, self.options.lease_seconds
                    )
            except CONNECTION_ERRORS as exc:
                log.warning("renewing leases failed: %s", exc)
                continue
            for instance_id in ids:
                if instance_id not in held:
                    self._lost(instance_id)

    async def take_over(self) -> int:
        """End the leases this owner's previous life left (see the module docs); how many."""
        async with self._pool.acquire() as conn:
            return await gateway.reclaim_leases(conn, self.options.owner)

    async def release_all(self) -> None:
        """Shutdown: hand back every instance this process still holds."""
        async with self._pool.acquire() as conn:
            await gateway.release_all(conn, self.options.owner)
