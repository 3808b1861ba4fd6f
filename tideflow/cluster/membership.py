"""Membership and leases: the service that makes this process one of the cluster.

:class:`Cluster` joins the membership table, then every ``heartbeat`` seconds
(and at once when a NOTIFY on :data:`~tideflow.cluster.gateway.CHANNEL` says
that a process joined, left or released units, or that units changed):

1. renews its own row and the leases of the units it runs (one statement); a
   unit whose lease it no longer holds (it expired, another took it) is stopped
   here at once;
2. asks each :class:`UnitOwner` to follow changes and list its units;
3. computes the plan (:func:`~tideflow.cluster.assignment.plan`) from the
   live nodes and leases, stops and releases the units the plan moves away,
   and acquires the ones it gives this process (free, expired, or its own
   from a previous life: a restarted process takes its units back at once).
   A lease of this process whose unit it does not run -- stopped for a
   hand-over whose release failed (a deadlock, a lost connection), stopped by
   self-fencing, or of its previous life -- is released when the plan gives the
   unit to another, and acquired again when it gives it here: never renewed
   while nobody runs it, so no unit is kept from its next owner.

A process whose heartbeat cannot be written stops every unit before its
leases can expire (``lease - heartbeat / 2`` after the last renewal it sent),
so no unit ever has two owners; the others take its units once its leases
have expired. Each acquisition bumps the unit's fencing token: a write made
under an older token (an offset commit) is refused by the database.

A clean stop stops every unit, releases every lease and removes the row, so
the others take over at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.cluster.assignment import moves_for, plan
from tideflow.cluster.gateway import CHANNEL, PostgresCluster, View
from tideflow.db import DB_ERRORS
from tideflow.errors import TideflowError
from tideflow.notify import Listener
from tideflow.supervise import Supervisor, first_done

__all__ = ["SOLE", "Cluster", "ClusterOptions", "Ownership", "UnitOwner"]

log = logging.getLogger("tideflow.cluster")

_FAILURES: tuple[type[BaseException], ...] = (TideflowError, *DB_ERRORS)


class Ownership(Protocol):
    """What a service asks before it runs a unit."""

    @property
    def standalone(self) -> bool:
        """True when no cluster drives the service (it follows changes on its own)."""
        ...

    def owns(self, unit: str) -> bool:
        """Whether this process owns ``unit`` now."""
        ...

    def token(self, unit: str) -> int | None:
        """The fencing token of ``unit`` here (``None``: not fenced)."""
        ...

    def elsewhere(self, unit: str) -> bool:
        """Whether another live process owns ``unit`` (as of the last look)."""
        ...

    def changed(self) -> None:
        """Units may have changed here: every process looks again soon."""
        ...


class UnitOwner(Protocol):
    """A service whose work is made of units (all named ``<prefix><name>``)."""

    prefix: str
    """The prefix of its units' names (``subscription:``, ``connector:``)."""

    async def refresh(self) -> set[str]:
        """Follow changes made elsewhere; return every unit that exists now."""
        ...

    async def gained(self, unit: str, token: int) -> None:
        """Start running ``unit`` (this process owns it under ``token``)."""
        ...

    async def lost(self, unit: str) -> None:
        """Stop running ``unit`` now and write what it finished."""
        ...


class _Sole:
    """One process alone: it owns everything, unfenced."""

    standalone = True

    def owns(self, unit: str) -> bool:
        return True

    def token(self, unit: str) -> int | None:
        return None

    def elsewhere(self, unit: str) -> bool:
        return False

    def changed(self) -> None:
        return None


SOLE: Ownership = _Sole()
"""The ownership of a service that runs without a cluster (tests, embedded use)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterOptions:
    """How the cluster keeps time.

    Attributes:
        heartbeat: Seconds between heartbeats (and plan checks).
        lease: Seconds a lease and a membership last without a heartbeat: a process
            gone without a word is taken over after about this long.
        forget_after: Seconds a gone process's row is kept before it is removed.
    """

    heartbeat: float = 1.0
    lease: float = 3.0
    forget_after: float = 600.0


class Cluster:
    """This process's membership and leases (see the module docs).

    Args:
        gateway: The cluster tables.
        node_id: This process's stable identity.
        address: Where its API answers (shown by ``tideflow cluster status``).
        options: Heartbeat and lease times.
        clock: Monotonic time for self-fencing and waits.
    """

    standalone = False

    def __init__(
        self,
        gateway: PostgresCluster,
        node_id: str,
        *,
        address: str | None = None,
        options: ClusterOptions | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.gateway = gateway
        self.node_id = node_id
        self.address = address
        self.options = options or ClusterOptions()
        self.clock = clock
        self._owners: dict[str, UnitOwner] = {}
        self._held: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._announce = False
        self._fence_at = 0.0
        self._lock = asyncio.Lock()
        self.view = View(nodes=(), leases=())
        """The live nodes and leases at the last plan."""
        self._owners_seen: dict[str, str] = {}
        self.units: set[str] = set()
        """Every unit that existed at the last plan."""
        self.supervisor = Supervisor("cluster", clock=clock)
        """Owns the heartbeat loop and the listener (``/healthz`` reports them)."""
        self.listener = Listener(gateway.pool, "cluster", clock=clock, health=self.supervisor)
        self.listener.listen(CHANNEL, lambda _payload: self._wake.set())
        self.listener.on_reconnect(self._wake.set)

    def add(self, owner: UnitOwner) -> None:
        """Run ``owner``'s units under leases (before :meth:`start`)."""
        self._owners[owner.prefix] = owner

    # -- Ownership ---------------------------------------------------------------------

    def owns(self, unit: str) -> bool:
        """Whether this process holds ``unit``'s lease."""
        return unit in self._held

    def token(self, unit: str) -> int | None:
        """The fencing token of ``unit`` (``None`` when not held here)."""
        return self._held.get(unit)

    def elsewhere(self, unit: str) -> bool:
        """Whether another live process held ``unit``'s lease at the last plan."""
        owner = self._owners_seen.get(unit)
        return owner is not None and owner != self.node_id

    def changed(self) -> None:
        """Units changed here: plan again now and tell the other processes."""
        self._announce = True
        self._wake.set()

    def held(self) -> dict[str, int]:
        """``unit -> token`` of every unit this process holds."""
        return dict(self._held)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Join, take this process's share, then follow the others."""
        await self.gateway.join(self.node_id, self.address, self.options.lease)
        await self.gateway.announce(f"joined {self.node_id}")
        await self.tick()
        self.supervisor.spawn("listen", self.listener.run)
        self.supervisor.spawn("heartbeat", self._loop)

    async def stop(self) -> None:
        """Stop every unit here, release the leases and leave (others take over at once)."""
        await self.supervisor.stop()
        async with self._lock:
            await self._lose(list(self._held))
        try:
            await self.gateway.leave(self.node_id)
        except _FAILURES as exc:  # the leases expire on their own
            log.warning(
                "leaving the cluster failed, leases expire in %.0f s: %s", self.options.lease, exc
            )

    async def _loop(self) -> None:
        while True:
            wait = self.options.heartbeat
            if self._held:  # wake in time to stop the units before their leases expire
                wait = min(wait, max(self._fence_at - self.clock.monotonic(), 0.05))
            await first_done(self._wake.wait(), self.clock.sleep(wait))
            self._wake.clear()
            try:
                await self.tick()
            except _FAILURES as exc:
                log.warning("cluster heartbeat failed, will retry: %s", exc)
                if self._held and self.clock.monotonic() >= self._fence_at:
                    log.error("leases about to expire: stopping every unit here")
                    async with self._lock:
                        await self._lose(list(self._held))

    async def tick(self) -> None:
        """Heartbeat, follow changes, and move units to follow the plan."""
        async with self._lock:
            sent = self.clock.monotonic()
            still = await self.gateway.heartbeat(
                self.node_id, self.address, self.options.lease, sorted(self._held)
            )
            self._fence_at = sent + self.options.lease - self.options.heartbeat / 2
            await self._lose([u for u, token in self._held.items() if still.get(u) != token])
            if self._announce:
                self._announce = False
                await self.gateway.announce(f"changed {self.node_id}")
            units: set[str] = set()
            for owner in self._owners.values():
                units |= await owner.refresh()
            self.units = units
            view = await self.gateway.view()
            self.view = view
            self._owners_seen = view.owners()
            target = plan([n.node_id for n in view.nodes], units, self._owners_seen)
            leased = [u for u, owner in self._owners_seen.items() if owner == self.node_id]
            moves = moves_for(self.node_id, target, self._held, leased)
            if moves.release:
                await self._lose(moves.release)
                await self.gateway.release(self.node_id, moves.release)
            got = await self.gateway.acquire(self.node_id, moves.acquire, self.options.lease)
            for unit in sorted(got):
                self._held[unit] = got[unit]
                await self._gain(unit, got[unit])

    async def _gain(self, unit: str, token: int) -> None:
        owner = self._owner(unit)
        if owner is None:
            return
        try:
            await owner.gained(unit, token)
        except _FAILURES as exc:  # tried again: the unit is released and planned anew
            log.warning("starting %s failed, letting it go: %s", unit, exc)
            await self._lose([unit])
            await self.gateway.release(self.node_id, [unit])

    async def _lose(self, units: Iterable[str]) -> None:
        for unit in list(units):
            if self._held.pop(unit, None) is None:
                continue
            owner = self._owner(unit)
            if owner is not None:
                await owner.lost(unit)

    def _owner(self, unit: str) -> UnitOwner | None:
        prefix, sep, _ = unit.partition(":")
        return self._owners.get(prefix + sep)
