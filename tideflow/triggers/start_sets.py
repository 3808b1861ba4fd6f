"""Non-exclusive start sets: correlated events collected until a set is complete.

A start state with ``exclusive: false`` creates an instance once all its
events have arrived with the same correlation values. Each event of such a set
is one row of ``tideflow_correlation_starts`` (migrations ``0006_correlation``
and ``0008_correlation_starts``):

- **Crash-safe.** The event that completes a set *takes* it: in one
  transaction the set's rows are marked with the instance id (derived from
  the workflow, its version and the set's last offset) and the events are
  addressed to the instance's inbox (a transaction of the runtime's wait
  index, :class:`~tideflow.runtime.waits.WaitTransaction`, that the start
  sets' gateway joins). The instance is started after the
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
- **Bounded per start.** The sweep also keeps at most ``open_events`` open
  events (:data:`OPEN_EVENTS`) per workflow version: the sets holding older
  ones are discarded. A start whose sets never complete -- a DSL 1.0
  ``schedule.on: all`` on a key that varies with every event, say -- costs
  only its own oldest sets, never another workflow's.

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
from tideflow.isotime import parse_timestamp
from tideflow.runtime.gateway import dumps
from tideflow.runtime.waits import EventWaits
from tideflow.triggers.gateway import PostgresStartSets, StartPart
from tideflow.triggers.workflow_events import StartSpec

__all__ = [
    "DEFAULT_RETENTION",
    "OPEN_EVENTS",
    "StartSets",
    "Taken",
    "event_time",
    "set_instance_id",
]

DEFAULT_RETENTION: Final = 7 * 24 * 3600.0
"""Seconds an incomplete set without ``eventTimeout`` is kept (and a taken set at most)."""
OPEN_EVENTS: Final = 10_000
"""Most events a workflow version's open sets hold after a sweep."""


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
        waits: The runtime's wait index (inboxes; which instances exist).
        clock: Gives the arrival time of events without a ``time`` attribute.
        retention_seconds: How long an incomplete set without ``eventTimeout`` is kept.
        open_events: Most events one workflow version's open sets keep (the sweep
            discards the sets holding older ones).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        waits: EventWaits,
        *,
        clock: Clock = SYSTEM_CLOCK,
        retention_seconds: float = DEFAULT_RETENTION,
        open_events: int = OPEN_EVENTS,
    ) -> None:
        self.waits = waits
        self.clock = clock
        self.retention_seconds = retention_seconds
        self.open_events = open_events
        self._store = PostgresStartSets(pool)

    async def add(self, spec: StartSpec, offset: int, event: Mapping[str, Any]) -> Taken | None:
        """Add ``event`` to its open set; take the set when it is complete.

        Returns:
            The instance to start: the set this event completed (taken and
            addressed to the instance's inbox in this call's transaction), or
            the one a redelivered event's set was taken for; else ``None``.
        """
        match = next(m for m in spec.events if m.matches(event))
        now = self.clock.now()
        when = event_time(event, now)
        part = StartPart(
            workflow_id=spec.workflow_id,
            version=spec.version,
            corr=dumps(spec.group_key(event)),
            name=match.name,
            event=dict(event),
            offset=offset,
            time=when,
            expires_at=self._expiry(spec, when, now),
        )
        async with self.waits.transaction() as tx:
            taken = await self._store.add(
                tx.connection,
                part,
                names=[m.name for m in spec.events],
                event_timeout=spec.event_timeout,
                instance_id_for=lambda last: set_instance_id(spec, last),
            )
            if taken is not None and taken.events is not None:
                await tx.put_inbox((taken.instance_id, spec.wait_key), taken.events, offset)
        if taken is None:
            return None
        return Taken(
            instance_id=taken.instance_id, workflow_id=spec.workflow_id, version=spec.version
        )

    def _expiry(self, spec: StartSpec, when: datetime, now: datetime) -> datetime:
        if spec.event_timeout is None:
            return now + timedelta(seconds=self.retention_seconds)
        return max(when, now) + timedelta(seconds=spec.event_timeout)

    async def unstarted(self) -> list[Taken]:
        """The taken sets whose instance does not exist (a crash came between)."""
        sets = await self._store.taken()
        started = await self.waits.existing([s.instance_id for s in sets])
        return [
            Taken(instance_id=s.instance_id, workflow_id=s.workflow_id, version=s.version)
            for s in sets
            if s.instance_id not in started
        ]

    async def sweep(self, subscription_id: str) -> tuple[int, int]:
        """Discard expired open sets and those past ``open_events``; forget taken sets no
        longer needed.

        Args:
            subscription_id: The subscription whose committed offset says
                which taken events can no longer be handed over again.

        Returns:
            The numbers of events discarded from open sets and forgotten from taken ones.
        """
        started = await self.waits.existing(await self._store.taken_up_to(subscription_id))
        return await self._store.sweep(
            self.clock.now(), self.retention_seconds, subscription_id, sorted(started),
            self.open_events,
        )
