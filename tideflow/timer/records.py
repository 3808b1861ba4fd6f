"""The timer service's values: timers and schedules as stored (pure: no I/O)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from tideflow.isotime import format_timestamp


class TimerState(StrEnum):
    """Where a timer is in its life."""

    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"


def _json(value: Any) -> Any:
    """asyncpg hands jsonb back as text unless a codec is set; accept both."""
    return json.loads(value) if isinstance(value, str) else value


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerRecord:
    """One durable timer."""

    id: str
    """Unique id; for a schedule's tick, ``<schedule id>@<tick>``."""
    kind: str
    """Which handler fires it (``tideflow.delayed_event``, a runtime kind, ...)."""
    due_at: datetime
    """When it is due (aware, UTC)."""
    payload: Any
    """JSON value handed to the handler."""
    state: TimerState = TimerState.PENDING
    """pending, fired or cancelled."""
    idempotency_key: str | None = None
    """Caller's key: adding twice with one key adds once."""
    schedule_id: str | None = None
    """The schedule that started it, if any."""
    attempts: int = 0
    """Firing attempts so far (failed ones and the one that succeeded)."""
    last_error: str | None = None
    """The last handler failure, if any."""
    created_at: datetime | None = None
    """When it was added."""
    fired_at: datetime | None = None
    """When it fired."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TimerRecord:
        """Build from a ``tideflow_timers`` row."""
        return cls(
            id=row["id"],
            kind=row["kind"],
            due_at=row["due_at"],
            payload=_json(row["payload"]),
            state=TimerState(row["state"]),
            idempotency_key=row["idempotency_key"],
            schedule_id=row["schedule_id"],
            attempts=row["attempts"],
            last_error=row["last_error"],
            created_at=row["created_at"],
            fired_at=row["fired_at"],
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping (timestamps in RFC 3339)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "dueAt": format_timestamp(self.due_at),
            "state": self.state.value,
            "payload": self.payload,
            "idempotencyKey": self.idempotency_key,
            "scheduleId": self.schedule_id,
            "attempts": self.attempts,
            "lastError": self.last_error,
            "createdAt": format_timestamp(self.created_at) if self.created_at else None,
            "firedAt": format_timestamp(self.fired_at) if self.fired_at else None,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleRecord:
    """One recurring schedule."""

    id: str
    """Unique id (the runtime uses the workflow id and version)."""
    kind: str
    """Kind of the timer started at each tick."""
    spec: Mapping[str, Any]
    """The schedule in serverless-workflow form (see ``schedules.parse_schedule``)."""
    payload: Any
    """Payload of each tick's timer."""
    catch_up: str
    """``skip``, ``latest`` or ``all`` (see ``schedules.CatchUp``)."""
    next_tick: datetime | None
    """The first tick not yet started; ``None`` once ended or cancelled."""
    state: str
    """active, ended or cancelled."""
    created_at: datetime | None = None
    """When it was created."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ScheduleRecord:
        """Build from a ``tideflow_schedules`` row."""
        return cls(
            id=row["id"],
            kind=row["kind"],
            spec=_json(row["spec"]),
            payload=_json(row["payload"]),
            catch_up=row["catch_up"],
            next_tick=row["next_tick"],
            state=row["state"],
            created_at=row["created_at"],
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "id": self.id,
            "kind": self.kind,
            "schedule": dict(self.spec),
            "payload": self.payload,
            "catchUp": self.catch_up,
            "nextTick": format_timestamp(self.next_tick) if self.next_tick else None,
            "state": self.state,
        }
