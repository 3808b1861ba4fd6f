"""The triggers' gateway to PostgreSQL: the only code that uses ``triggers/sql/queries.sql``."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from tideflow.db import acquired, load_queries
from tideflow.errors import AlreadyExists, BusNotFound, StoreError, SubscriptionNotFound
from tideflow.supervise import TaskSet
from tideflow.triggers.subscriptions import (
    Subscription,
    SubscriptionKind,
    SubscriptionSpec,
    SubscriptionState,
)

_Q = load_queries("tideflow.triggers")


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """What one subscription achieved since its last commit.

    Attributes:
        subscription_id: The subscription.
        committed_offset: The new committed offset (never moves back here).
        delivered: Events delivered since the last commit.
        failed: Failed attempts since the last commit.
        dead_lettered: Events dead-lettered since the last commit.
        version: The subscription's version when it started running; the commit is
            ignored if it changed since (a reset made meanwhile wins).
        unit: The cluster unit whose lease the worker ran under (``None``: not fenced).
        token: That lease's fencing token; the commit is ignored if the unit was
            acquired again since (another process runs it now).
    """

    subscription_id: str
    committed_offset: int
    delivered: int = 0
    failed: int = 0
    dead_lettered: int = 0
    version: int = 1
    unit: str | None = None
    token: int | None = None


def _row(row: Mapping[str, Any]) -> Subscription:
    values = dict(row)
    if isinstance(values["spec"], str):
        values["spec"] = json.loads(values["spec"])
    return Subscription.from_row(values)


class _Notes:
    """The calls of :meth:`PostgresSubscriptions.begin_attempts` gathered for one statement."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: list[tuple[str, list[int], asyncio.Future[bool]]] = []

    def columns(self) -> tuple[list[str], list[int]]:
        """The statement's arguments: subscription ids and offsets, pair by pair."""
        ids = [subscription for subscription, offsets, _ in self._calls for _ in offsets]
        return ids, [offset for _, offsets, _ in self._calls for offset in offsets]

    async def add(self, subscription_id: str, offsets: Sequence[int]) -> bool:
        """Join the statement; whether it noted every one of ``offsets`` for the subscription.

        Each call waits on a future of its own: one cancelled (its worker closed) leaves
        the others waiting for the statement.
        """
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._calls.append((subscription_id, list(dict.fromkeys(offsets)), answer))
        return await answer

    def settle(self, noted: set[tuple[str, int]]) -> None:
        """Answer each call from the pairs the statement noted, in the order of the calls
        (a pair two calls gave is the first's: as if they had run one after the other)."""
        for subscription_id, offsets, answer in self._calls:
            mine = {(subscription_id, offset) for offset in offsets}
            if not answer.done():
                answer.set_result(mine <= noted)
            noted -= mine

    def fail(self, exc: BaseException) -> None:
        """The statement failed: every call raises ``exc`` (a cancellation: a StoreError)."""
        if isinstance(exc, asyncio.CancelledError):
            exc = StoreError("noting attempts: cancelled before it was written")
        for _, _, answer in self._calls:
            if not answer.done():
                answer.set_exception(exc)


class PostgresSubscriptions:
    """Subscriptions and their offsets in ``tideflow_subscriptions``.

    Args:
        pool: The asyncpg pool (migrations applied).
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._notes: _Notes | None = None  # gathering the notes of this turn's calls
        self._noting = TaskSet("noting attempts", awaited=True)  # each fails its callers

    def _conn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return acquired(self.pool, "subscriptions")

    async def create(
        self,
        subscription_id: str,
        spec: SubscriptionSpec,
        *,
        kind: SubscriptionKind = SubscriptionKind.HTTP,
        committed_offset: int,
        now: datetime,
    ) -> Subscription:
        """Store a new subscription.

        Raises:
            AlreadyExists: The id is taken.
        """
        args = (
            subscription_id,
            kind.value,
            spec.bus,
            json.dumps(spec.to_json()),
            SubscriptionState.ACTIVE.value,
            committed_offset,
            now,
        )
        async with self._conn() as conn:
            row = await conn.fetchrow(_Q["insert_subscription"], *args)
        if row is None:
            raise AlreadyExists(f"a subscription with id {subscription_id!r} exists")
        return _row(row)

    async def get(self, subscription_id: str) -> Subscription:
        """One subscription.

        Raises:
            SubscriptionNotFound: No such subscription.
        """
        async with self._conn() as conn:
            row = await conn.fetchrow(_Q["get_subscription"], subscription_id)
        if row is None:
            raise SubscriptionNotFound(f"no subscription with id {subscription_id!r}")
        return _row(row)

    async def find(self, subscription_id: str) -> Subscription | None:
        """One subscription, or ``None``."""
        try:
            return await self.get(subscription_id)
        except SubscriptionNotFound:
            return None

    async def list(self, kind: SubscriptionKind | None = None) -> list[Subscription]:
        """Every subscription (of one kind), oldest first."""
        async with self._conn() as conn:
            rows = await conn.fetch(_Q["list_subscriptions"], kind.value if kind else None)
        return [_row(row) for row in rows]

    async def delete(self, subscription_id: str) -> None:
        """Delete a subscription.

        Raises:
            SubscriptionNotFound: No such subscription.
        """
        async with self._conn() as conn:
            row = await conn.fetchrow(_Q["delete_subscription"], subscription_id)
        if row is None:
            raise SubscriptionNotFound(f"no subscription with id {subscription_id!r}")

    async def set_state(
        self, subscription_id: str, state: SubscriptionState, now: datetime
    ) -> Subscription:
        """Pause or resume.

        Raises:
            SubscriptionNotFound: No such subscription.
        """
        async with self._conn() as conn:
            row = await conn.fetchrow(_Q["set_state"], subscription_id, state.value, now)
        if row is None:
            raise SubscriptionNotFound(f"no subscription with id {subscription_id!r}")
        return _row(row)

    async def set_offset(self, subscription_id: str, offset: int, now: datetime) -> Subscription:
        """Move the committed offset anywhere (replay or skip).

        Raises:
            SubscriptionNotFound: No such subscription.
        """
        async with self._conn() as conn:
            row = await conn.fetchrow(_Q["set_offset"], subscription_id, offset, now)
        if row is None:
            raise SubscriptionNotFound(f"no subscription with id {subscription_id!r}")
        return _row(row)

    async def commit(self, progress: Sequence[Progress], now: datetime) -> None:
        """Move committed offsets forward and add to the counters, in one statement."""
        if not progress:
            return
        columns = (
            [p.subscription_id for p in progress],
            [p.committed_offset for p in progress],
            [p.delivered for p in progress],
            [p.failed for p in progress],
            [p.dead_lettered for p in progress],
            [p.version for p in progress],
            [p.unit for p in progress],
            [p.token for p in progress],
        )
        async with self._conn() as conn:
            await conn.execute(_Q["commit_offsets"], *columns[:6], now, *columns[6:])

    async def versions(self) -> dict[str, tuple[SubscriptionKind, SubscriptionState, int]]:
        """Every subscription's kind, state and version (what a running dispatcher compares)."""
        async with self._conn() as conn:
            rows = await conn.fetch(_Q["list_versions"])
        return {
            row["id"]: (
                SubscriptionKind(row["kind"]),
                SubscriptionState(row["state"]),
                row["version"],
            )
            for row in rows
        }

    async def head(self, bus: str) -> int:
        """The newest offset of ``bus`` (0 when empty).

        Raises:
            BusNotFound: No such bus.
        """
        async with self._conn() as conn:
            head = await conn.fetchval(_Q["bus_head"], bus)
        if head is None:
            raise BusNotFound(f"no bus named {bus!r}")
        return int(head)

    async def heads(self, buses: Sequence[str]) -> dict[str, int]:
        """The newest offset of each bus that exists."""
        async with self._conn() as conn:
            rows = await conn.fetch(_Q["bus_heads"], list(set(buses)))
        return {row["name"]: int(row["head"]) for row in rows}

    async def offset_before(self, bus: str, moment: datetime) -> int:
        """The last offset of ``bus`` stored before ``moment`` (0 if none)."""
        async with self._conn() as conn:
            return int(await conn.fetchval(_Q["offset_at_time"], bus, moment))

    async def begin_attempts(self, subscription_id: str, offsets: Sequence[int]) -> bool:
        """Note events as handed to a consumer (migration ``0018_consumer_attempts``).

        The notes of the calls made in the same turn of the event loop go in one
        statement: a bus's reader hands the same events to every consumer of the bus at
        once (the workflow subscriber's partitions: four), and each consumer waits for
        its note before it runs -- one round trip for all of them, not one each on a
        pool connection of its own. Each call returns once the statement holding its
        notes committed, as before.

        Returns:
            Whether none was noted already: ``False`` when an attempt before, by this
            process or one that died, never finished with one of them.
        """
        notes = self._notes
        if notes is None:  # the first call of this turn: the others join it until it runs
            notes = self._notes = _Notes()
            self._noting.spawn(self._note(notes))
        return await notes.add(subscription_id, offsets)

    async def _note(self, notes: _Notes) -> None:
        """Write the notes the calls of one turn gathered (see :meth:`begin_attempts`)."""
        self._notes = None  # later calls start the next statement
        try:
            async with self._conn() as conn:
                rows = await conn.fetch(_Q["begin_attempts"], *notes.columns())
        except BaseException as exc:
            notes.fail(exc)
            raise
        notes.settle({(row["subscription_id"], row["event_offset"]) for row in rows})

    async def begin_attempt(self, subscription_id: str, offset: int) -> int:
        """Note one event as handed to a consumer; how many attempts before never finished."""
        async with self._conn() as conn:
            return int(await conn.fetchval(_Q["begin_attempt"], subscription_id, offset))

    async def end_attempts(self, subscription_id: str, offsets: Sequence[int]) -> None:
        """Forget events a consumer finished with (consumed or dead-lettered)."""
        async with self._conn() as conn:
            await conn.execute(_Q["end_attempts"], subscription_id, list(offsets))


# --- non-exclusive start sets (sql/start_sets.sql): used by tideflow.triggers.start_sets ---

_S = load_queries("tideflow.triggers", "start_sets.sql")


@dataclass(frozen=True, slots=True, kw_only=True)
class StartPart:
    """One event of a non-exclusive start set, as stored."""

    workflow_id: str
    """The workflow it may start."""
    version: str
    """Its version."""
    corr: str
    """The set's correlation values (JSON text)."""
    name: str
    """The event definition it matched."""
    event: dict[str, Any]
    """The event."""
    offset: int
    """Its offset on the bus."""
    time: datetime
    """Its time (the ``time`` attribute, else its arrival)."""
    expires_at: datetime
    """When its open set is discarded."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TakenSet:
    """A taken set: the instance to start."""

    instance_id: str
    """The instance (its id derived from the set)."""
    workflow_id: str
    """The workflow."""
    version: str
    """Its version."""
    events: list[dict[str, Any]] | None = None
    """The set's events in the listed order, when this call took it (else ``None``)."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TakenSet:
        """Build from a ``taken_sets`` row."""
        return cls(
            instance_id=row["instance_id"], workflow_id=row["workflow_id"], version=row["version"]
        )


class PostgresStartSets:
    """Open and taken start sets in ``tideflow_correlation_starts``.

    Args:
        pool: The asyncpg pool (migrations applied).
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add(
        self,
        conn: asyncpg.Connection,
        part: StartPart,
        *,
        names: Sequence[str],
        event_timeout: float | None,
        instance_id_for: Callable[[int], str],
    ) -> TakenSet | None:
        """Add ``part`` to its open set in the caller's transaction; take the set if complete.

        Args:
            conn: The transaction's connection (the wait index's, see
                :class:`tideflow.runtime.waits.WaitTransaction`).
            part: The event.
            names: The set's event names in their listed order.
            event_timeout: Seconds an event may be apart from the others of
                its set; a set with one further away is discarded first.
            instance_id_for: The instance id of a set from its last offset.

        Returns:
            The set this event completed (with its events), the one a
            redelivered event's set was taken for (without), or ``None``.
        """
        key = (part.workflow_id, part.version)
        taken = await conn.fetchval(_S["taken_by"], *key, part.offset)
        if taken is not None:  # handed over again
            return TakenSet(instance_id=taken, workflow_id=key[0], version=key[1])
        if event_timeout is not None:
            await conn.execute(_S["discard_gapped_set"], *key, part.corr, part.time, event_timeout)
        await conn.execute(
            _S["add_start_part"],
            *key,
            part.corr,
            part.name,
            json.dumps(part.event),
            part.offset,
            part.time,
            part.expires_at,
        )
        kept = {r["name"]: r for r in await conn.fetch(_S["open_start_set"], *key, part.corr)}
        if any(n not in kept for n in names):
            return None
        instance_id = instance_id_for(max(r["event_offset"] for r in kept.values()))
        await conn.execute(_S["take_start_set"], *key, part.corr, instance_id)
        events = [json.loads(kept[n]["event"]) for n in names]
        return TakenSet(instance_id=instance_id, workflow_id=key[0], version=key[1], events=events)

    async def taken(self) -> list[TakenSet]:
        """Every taken set not forgotten yet (without events)."""
        async with self._pool.acquire() as conn:
            return [TakenSet.from_row(r) for r in await conn.fetch(_S["taken_sets"])]

    async def taken_up_to(self, subscription_id: str) -> list[str]:
        """The instances of the taken sets ``subscription_id`` committed past."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_S["taken_up_to"], subscription_id)
        return [r["instance_id"] for r in rows]

    async def sweep(
        self,
        now: datetime,
        retention_seconds: float,
        subscription_id: str,
        started: Sequence[str],
        open_events: int,
    ) -> tuple[int, int]:
        """Discard expired open sets, and the oldest ones of a workflow version with more
        than ``open_events`` open events; forget taken sets whose instance is in ``started``.

        Returns:
            The numbers of events discarded from open sets and forgotten from taken ones.
        """
        async with self._pool.acquire() as conn:
            expired = await conn.fetch(_S["expire_start_sets"], now, retention_seconds)
            expired += await conn.fetch(_S["trim_start_sets"], open_events)
            forgotten = await conn.fetch(
                _S["forget_taken_sets"], subscription_id, retention_seconds, list(started)
            )
        return len(expired), len(forgotten)
