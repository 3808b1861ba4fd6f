"""The timer service's gateway to PostgreSQL: the only code that uses its queries."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from tideflow.db import load_queries
from tideflow.errors import StoreError
from tideflow.timer.records import ScheduleRecord, TimerRecord, TimerState

_Q = load_queries("tideflow.timer")

Dispatch = Callable[[list[TimerRecord], asyncpg.Connection], Awaitable[None]]
"""Runs handlers for claimed timers inside the transaction that records their firing."""


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"timer payload is not JSON: {exc}") from exc


class TimerStore:
    """Timers and schedules in ``tideflow_timers`` and ``tideflow_schedules``.

    Args:
        pool: The asyncpg pool.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def insert(
        self,
        *,
        timer_id: str,
        kind: str,
        due_at: datetime,
        payload: Any,
        idempotency_key: str | None = None,
        schedule_id: str | None = None,
        conn: asyncpg.Connection | None = None,
    ) -> tuple[TimerRecord, bool]:
        """Add a pending timer.

        Returns:
            The timer and True, or -- when its id or idempotency key exists --
            the existing timer and False.
        """
        args = (timer_id, kind, due_at, _dumps(payload), idempotency_key, schedule_id)
        try:
            if conn is None:
                async with self.pool.acquire() as own:
                    return await self._insert(own, args, idempotency_key)
            return await self._insert(conn, args, idempotency_key)
        except asyncpg.PostgresError as exc:
            raise StoreError(f"cannot add timer {timer_id!r}: {exc}") from exc

    async def _insert(
        self, conn: asyncpg.Connection, args: tuple[Any, ...], key: str | None
    ) -> tuple[TimerRecord, bool]:
        row = await conn.fetchrow(_Q["insert_timer"], *args)
        if row is not None:
            return TimerRecord.from_row(row), True
        existing = await conn.fetchrow(_Q["get_timer_by_key"], key) if key else None
        existing = existing or await conn.fetchrow(_Q["get_timer"], args[0])
        if existing is None:  # pragma: no cover - the conflicting row vanished
            raise StoreError(f"timer {args[0]!r} conflicts with a timer that no longer exists")
        return TimerRecord.from_row(existing), False

    async def insert_many(
        self, kind: str, timers: Sequence[tuple[str, datetime, Any, str | None]]
    ) -> list[TimerRecord]:
        """Add many pending timers of one kind: (id, due_at, payload, idempotency key).

        Returns:
            One timer per entry, in order: the new one, or the existing one
            with the same idempotency key (or id).
        """
        ids = [t[0] for t in timers]
        args = (ids, [kind] * len(ids), [t[1] for t in timers])
        payloads = [_dumps(t[2]) for t in timers]
        keys = [t[3] for t in timers]
        try:
            async with self.pool.acquire() as conn:
                rows = await conn.fetch(_Q["insert_timers"], *args, payloads, keys)
                found = {r["id"]: TimerRecord.from_row(r) for r in rows}
                by_key = {t.idempotency_key: t for t in found.values() if t.idempotency_key}
                missing = [k for i, k in zip(ids, keys, strict=True) if i not in found and k]
                if missing:
                    for row in await conn.fetch(_Q["get_timers_by_keys"], missing):
                        by_key[row["idempotency_key"]] = TimerRecord.from_row(row)
        except asyncpg.PostgresError as exc:
            raise StoreError(f"cannot add {len(ids)} timers: {exc}") from exc
        return [by_key[k] if k in by_key else found[i] for i, k in zip(ids, keys, strict=True)]

    async def get(self, timer_id: str) -> TimerRecord | None:
        """One timer, or ``None``."""
        row = await self._fetchrow("get_timer", timer_id)
        return TimerRecord.from_row(row) if row else None

    async def cancel(self, timer_id: str) -> TimerRecord | None:
        """Cancel a pending timer; ``None`` if it was not pending."""
        row = await self._fetchrow("cancel_timer", timer_id)
        return TimerRecord.from_row(row) if row else None

    async def list_timers(
        self, *, state: TimerState | None = None, kind: str | None = None, limit: int = 100
    ) -> list[TimerRecord]:
        """Timers in due order, filtered by state and kind."""
        rows = await self._fetch("list_timers", state.value if state else None, kind, limit)
        return [TimerRecord.from_row(r) for r in rows]

    async def list_delayed(self, kind: str, bus: str, limit: int) -> list[TimerRecord]:
        """Pending timers of ``kind`` whose payload's ``bus`` is ``bus``, in due order."""
        rows = await self._fetch("list_delayed", kind, bus, limit)
        return [TimerRecord.from_row(r) for r in rows]

    async def due_soon(self, horizon: datetime, limit: int) -> list[tuple[str, str, datetime]]:
        """(id, kind, due_at) of pending timers due by ``horizon``, earliest first."""
        rows = await self._fetch("due_soon", horizon, limit)
        return [(r["id"], r["kind"], r["due_at"]) for r in rows]

    async def due_soon_since(
        self, horizon: datetime, after_due: datetime, touched_since: datetime, limit: int
    ) -> list[tuple[str, str, datetime]]:
        """Like :meth:`due_soon`, only rows due after ``after_due`` or touched since then."""
        rows = await self._fetch("due_soon_since", horizon, after_due, touched_since, limit)
        return [(r["id"], r["kind"], r["due_at"]) for r in rows]

    async def db_now(self) -> datetime:
        """The database's current time (``touched_at`` is in it)."""
        row = await self._fetchrow("db_now")
        assert row is not None
        moment: datetime = row["db_now"]
        return moment

    async def fire(
        self, ids: Sequence[str], now: datetime, dispatch: Dispatch
    ) -> list[TimerRecord]:
        """Claim the still-pending ``ids``, run ``dispatch`` on them and record the firing.

        All in one transaction: rows another process is firing are skipped, and
        if ``dispatch`` raises nothing is recorded (the timers stay pending).

        Returns:
            The timers fired, in due order.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_Q["lock_due"], list(ids))
            if not rows:
                return []
            timers = [TimerRecord.from_row(r) for r in rows]
            await dispatch(timers, conn)
            await conn.execute(_Q["mark_fired"], [t.id for t in timers], now)
            return timers

    async def purge_ended(self, before: datetime, limit: int) -> int:
        """Delete at most ``limit`` fired or cancelled timers that ended before ``before``."""
        row = await self._fetchrow("purge_ended", before, limit)
        return int(row["n"]) if row else 0

    async def retry_later(self, timer_id: str, error: str, due_at: datetime) -> int | None:
        """Count a failed attempt and move the timer to ``due_at``; the attempts so far."""
        row = await self._fetchrow("retry_later", timer_id, error[:2000], due_at)
        return int(row["attempts"]) if row else None

    # -- schedules ----------------------------------------------------------

    async def upsert_schedule(
        self,
        conn: asyncpg.Connection,
        *,
        schedule_id: str,
        kind: str,
        spec: dict[str, Any],
        payload: Any,
        catch_up: str,
        next_tick: datetime | None,
    ) -> ScheduleRecord:
        """Create or replace a schedule (in the caller's transaction)."""
        row = await conn.fetchrow(
            _Q["upsert_schedule"],
            schedule_id,
            kind,
            _dumps(spec),
            _dumps(payload),
            catch_up,
            next_tick,
        )
        return ScheduleRecord.from_row(row)

    async def lock_schedule(
        self, conn: asyncpg.Connection, schedule_id: str
    ) -> ScheduleRecord | None:
        """A schedule, locked until the caller's transaction ends."""
        row = await conn.fetchrow(_Q["lock_schedule"], schedule_id)
        return ScheduleRecord.from_row(row) if row else None

    async def advance_schedule(
        self, conn: asyncpg.Connection, schedule_id: str, next_tick: datetime | None
    ) -> None:
        """Store a schedule's next tick (``None`` ends it)."""
        await conn.execute(_Q["advance_schedule"], schedule_id, next_tick)

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        """One schedule, or ``None``."""
        row = await self._fetchrow("get_schedule", schedule_id)
        return ScheduleRecord.from_row(row) if row else None

    async def list_schedules(self, kind: str | None = None) -> list[ScheduleRecord]:
        """Schedules, by id."""
        return [ScheduleRecord.from_row(r) for r in await self._fetch("list_schedules", kind)]

    async def cancel_schedule(self, schedule_id: str) -> bool:
        """Stop an active schedule; False if it was not active."""
        return await self._fetchrow("cancel_schedule", schedule_id) is not None

    # -- plumbing -------------------------------------------------------------

    async def _fetch(self, name: str, *args: Any) -> list[asyncpg.Record]:
        try:
            async with self.pool.acquire() as conn:
                return list(await conn.fetch(_Q[name], *args))
        except asyncpg.PostgresError as exc:
            raise StoreError(f"timer store: {name} failed: {exc}") from exc

    async def _fetchrow(self, name: str, *args: Any) -> asyncpg.Record | None:
        try:
            async with self.pool.acquire() as conn:
                return await conn.fetchrow(_Q[name], *args)
        except asyncpg.PostgresError as exc:
            raise StoreError(f"timer store: {name} failed: {exc}") from exc
