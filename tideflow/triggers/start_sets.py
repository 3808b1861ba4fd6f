"""Non-exclusive start sets: correlated events collected until a set is complete.

A start state with ``exclusive: false`` creates an instance once all its
events have arrived with the same correlation values. Each event of such a set
is one row of ``tideflow_correlation_starts`` (migrations ``0006_correlation``
and ``0008_correlation_starts``):

- **Crash-safe.** The event that completes a set *takes* it: in one
  transaction the set's rows are marked with the instance id (derived from
  the workflow, its version and the set's last offset) and the events are
  addressed to the instance's inbox. The instance is started after the
  commit, idempotently (an existing id returns the existing instance). A
  crash between the two leaves a taken set without an instance; it is
  started at the next start of the subscriber (:meth:`StartSets.unstarted`),
  or when its last event is handed over again. A redelivered event is never
  added twice (its offset is in the table, open or taken).
- **eventTimeout.** The spec's maximum time between the events of the set
  (the state's ``timeouts.eventTimeout``, else the workflow's). An event's
  time is its CloudEvents ``time`` attribute, or its arrival time (the
  injected clock) without one. When an event arrives more than the timeout
  away from an event of the open set, that set is discarded and the event
  begins a new one: no instance for the events that were too far apart.
- **Retention.** :meth:`StartSets.sweep` discards open sets one of whose
  events has waited longer than the timeout (or, without one, than
  ``retention_seconds``, 7 days by default) and forgets taken sets once their
  instance exists and the subscription's committed offset is past them.

See ``docs/events.md``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import asyncpg

from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.db import load_queries
from tideflow.isotime import parse_timestamp
from tideflow.runtime.gateway import dumps, loads
from tideflow.triggers.workflow_events import StartSpec

__all__ = ["DEFAULT_RETENTION", "StartSets", "Taken", "event_time", "set_instance_id"]

Q = load_queries("tideflow.triggers", "start_sets.sql")

DEFAULT_RETENTION: Final = 7 * 24 * 3600.0
"""Seconds an incomplete set without ``eventTimeout`` is kept (and a taken set at most)."""


def set_instance_id(spec: StartSpec, last_offset: int) -> str:
    """The id of the instance a set whose last event is at ``last_offset`` starts."""
    name = f"tideflow:start/{spec.workflow_id}/{spec.version}/{last_offset}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def event_time(event: Mapping[str, Any], arrived: datetime) -> datetime:
    """The event's CloudEvents ``time``, or ``arrived`` when it has none (or not RFC 3339)."""
    value = event.get("time")
    if isinstance(value, str):
        try:
            return parse_timestamp(value)
        except ValueError:
            return arrived
    return arrived


@dataclass(frozen=True, slots=True, kw_only=True)
class Taken:
    """A taken set: the instance to start (its events wait in the inbox)."""

    instance_id: str
    """The instance's id (derived from the set)."""
    workflow_id: str
    """The workflow."""
    version: str
    """Its version."""


class StartSets:
    """The durable partial sets of non-exclusive starts (see the module docs).

    Args:
        pool: The database pool (migrated).
        clock: Gives the arrival time of events without a ``time`` attribute.
        retention_seconds: How long an incomplete set without ``eventTimeout`` is kept.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        clock: Clock = SYSTEM_CLOCK,
        retention_seconds: float = DEFAULT_RETENTION,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.retention_seconds = retention_seconds

    async def add(self, spec: StartSpec, offset: int, event: Mapping[str, Any]) -> Taken | None:
        """Add ``event`` to its open set; take the set when it is complete.

        Returns:
            The instance to start: the set this event completed (taken and
            addressed to the instance's inbox in this call's transaction), or
            the one a redelivered event's set was taken for; else ``None``.
        """
        match = next(m for m in spec.events if m.matches(event))
        corr = dumps(spec.group_key(event))
        now = self.clock.now()
        when = event_time(event, now)
        async with self.pool.acquire() as conn, conn.transaction():
            taken = await conn.fetchval(Q["taken_by"], spec.workflow_id, spec.version, offset)
            if taken is not None:  # handed over again: start what it completed (idempotent)
                return Taken(instance_id=taken, workflow_id=spec.workflow_id, version=spec.version)
            if spec.event_timeout is not None:
                await conn.execute(
                    Q["discard_gapped_set"],
                    spec.workflow_id,
                    spec.version,
                    corr,
                    when,
                    spec.event_timeout,
                )
            await conn.execute(
                Q["add_start_part"],
                spec.workflow_id,
                spec.version,
                corr,
                match.name,
                dumps(dict(event)),
                offset,
                when,
                self._expiry(spec, when, now),
            )
            return await self._take(conn, spec, corr)

    def _expiry(self, spec: StartSpec, when: datetime, now: datetime) -> datetime:
        if spec.event_timeout is None:
            return now + timedelta(seconds=self.retention_seconds)
        return max(when, now) + timedelta(seconds=spec.event_timeout)

    async def _take(self, conn: asyncpg.Connection, spec: StartSpec, corr: str) -> Taken | None:
        rows = await conn.fetch(Q["open_start_set"], spec.workflow_id, spec.version, corr)
        kept = {r["name"]: r for r in rows}
        if any(m.name not in kept for m in spec.events):
            return None
        instance_id = set_instance_id(spec, max(r["event_offset"] for r in rows))
        await conn.execute(Q["take_start_set"], spec.workflow_id, spec.version, corr, instance_id)
        events = [loads(kept[m.name]["event"]) for m in spec.events]
        await conn.execute(Q["put_start_inbox"], instance_id, spec.wait_key, dumps(events))
        return Taken(instance_id=instance_id, workflow_id=spec.workflow_id, version=spec.version)

    async def unstarted(self) -> list[Taken]:
        """The taken sets whose instance does not exist (a crash came between)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(Q["unstarted_sets"])
        return [
            Taken(instance_id=r["instance_id"], workflow_id=r["workflow_id"], version=r["version"])
            for r in rows
        ]

    async def sweep(self, subscription_id: str) -> tuple[int, int]:
        """Discard expired open sets; forget taken sets no longer needed.

        Args:
            subscription_id: The subscription whose committed offset says
                which taken events can no longer be handed over again.

        Returns:
            The numbers of events discarded from open sets and forgotten from taken ones.
        """
        async with self.pool.acquire() as conn:
            expired = await conn.fetch(
                Q["expire_start_sets"], self.clock.now(), self.retention_seconds
            )
            forgotten = await conn.fetch(
                Q["forget_taken_sets"], subscription_id, self.retention_seconds
            )
        return len(expired), len(forgotten)
