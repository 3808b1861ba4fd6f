"""The cluster's gateway to PostgreSQL: the only code that uses ``cluster/sql/queries.sql``."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import asyncpg

from tideflow.db import acquired, load_queries

__all__ = ["CHANNEL", "LeaseRow", "NodeRow", "PostgresCluster", "View"]

_Q = load_queries("tideflow.cluster")

CHANNEL: Final = "tideflow_cluster"
"""NOTIFY channel: a process joined, left or released units, or units changed
(subscriptions, connectors, buses): every process looks at the plan again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRow:
    """A live process."""

    node_id: str
    """Its stable identity."""
    address: str | None
    """Where its API answers, if it said."""
    started_at: datetime
    """When it (re)joined."""
    heartbeat_at: datetime
    """Its last heartbeat (database time)."""
    expires_at: datetime
    """When it counts as gone without another heartbeat."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseRow:
    """A unit owned under an unexpired lease."""

    unit: str
    """The unit."""
    owner: str
    """The node owning it."""
    token: int
    """The fencing token of this ownership."""
    acquired_at: datetime
    """When the owner took it."""
    expires_at: datetime
    """When it is free without a renewal."""


@dataclass(frozen=True, slots=True, kw_only=True)
class View:
    """What every process plans from: the live nodes and the live leases."""

    nodes: tuple[NodeRow, ...]
    leases: tuple[LeaseRow, ...]

    def owners(self) -> dict[str, str]:
        """``unit -> owner`` of the live leases."""
        return {lease.unit: lease.owner for lease in self.leases}


class PostgresCluster:
    """Membership and leases in ``tideflow_cluster_nodes`` and ``tideflow_cluster_leases``.

    Args:
        pool: The asyncpg pool (migrations applied).
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    def _conn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return acquired(self.pool, "cluster")

    async def join(self, node_id: str, address: str | None, ttl: float) -> None:
        """Add or renew ``node_id`` (a restarted process keeps its identity)."""
        async with self._conn() as conn:
            await conn.fetchval(_Q["join"], node_id, address, ttl)

    async def heartbeat(
        self, node_id: str, address: str | None, ttl: float, units: Sequence[str]
    ) -> dict[str, int]:
        """Renew the node, and its leases of ``units`` (those it runs), for ``ttl`` seconds.

        Returns:
            ``unit -> token`` of those leases it still holds (one that expired is not
            renewed); its other leases are left to expire, or to be released.
        """
        async with self._conn() as conn, conn.transaction():
            rows = await conn.fetch(_Q["heartbeat"], node_id, address, ttl, list(units))
        return {row["unit"]: int(row["token"]) for row in rows}

    async def view(self) -> View:
        """The live nodes and leases, read in one snapshot."""
        async with self._conn() as conn, conn.transaction(isolation="repeatable_read"):
            nodes = await conn.fetch(_Q["live_nodes"])
            leases = await conn.fetch(_Q["live_leases"])
        return View(
            nodes=tuple(NodeRow(**dict(row)) for row in nodes),
            leases=tuple(LeaseRow(**dict(row)) for row in leases),
        )

    async def acquire(self, node_id: str, units: Sequence[str], ttl: float) -> dict[str, int]:
        """Take those of ``units`` that are free, expired or already ``node_id``'s.

        The others (another process holds them) are neither changed nor locked: taking
        them would wait for their owner's heartbeat or release, and deadlock with it.

        Returns:
            ``unit -> token`` of the units taken (each with a new token).
        """
        if not units:
            return {}
        async with self._conn() as conn:
            rows = await conn.fetch(_Q["acquire"], node_id, list(units), ttl)
        return {row["unit"]: int(row["token"]) for row in rows}

    async def release(self, node_id: str, units: Sequence[str]) -> None:
        """Let ``units`` go, so that their next owners take them at once."""
        if units:
            async with self._conn() as conn:
                await conn.fetchrow(_Q["release"], node_id, list(units))

    async def leave(self, node_id: str) -> None:
        """Release every lease of ``node_id`` and remove it (a clean stop)."""
        async with self._conn() as conn, conn.transaction():
            await conn.fetchrow(_Q["leave"], node_id)

    async def announce(self, what: str) -> None:
        """Tell every process that units may have changed."""
        async with self._conn() as conn:
            await conn.fetchval(_Q["announce"], what)

    async def forget_dead(self, after: float) -> None:
        """Remove the rows of nodes gone for more than ``after`` seconds."""
        async with self._conn() as conn:
            await conn.execute(_Q["forget_dead"], after)
