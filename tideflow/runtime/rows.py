"""The rows the runtime's gateway returns: frozen values built with ``from_row()``.

Also the JSON codec of the runtime's ``jsonb`` columns (:func:`dumps`,
:func:`loads`). No I/O here: :mod:`tideflow.runtime.gateway` reads and writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any

import orjson

from tideflow import jsontext
from tideflow.isotime import format_timestamp
from tideflow.runtime.status import InstanceStatus

__all__ = [
    "Commit",
    "CommittedRow",
    "DeliveredRow",
    "InstanceRow",
    "KeptEvent",
    "OpenWait",
    "TimelineEntry",
    "WaitMatch",
    "WorkflowVersion",
    "dumps",
    "loads",
]


def dumps(value: Any) -> str:
    """JSON text for a ``jsonb`` parameter."""
    try:  # the usual case, without two calls more (a workflow step writes several)
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return jsontext.dumps(value, orjson.OPT_NON_STR_KEYS)  # big integers stay exact


def loads(text: str | None) -> Any:
    """A ``jsonb`` column's value (``None`` for SQL NULL)."""
    return None if text is None else jsontext.loads(text)


def _ts(value: datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowVersion:
    """One stored version of a workflow definition."""

    workflow_id: str
    """The workflow's ``id``."""
    version: str
    """The version (the definition's ``version``, or the deploy number)."""
    seq: int
    """Deploy order within the workflow, from 1."""
    source_text: str
    """The definition exactly as submitted."""
    content_type: str
    """Its media type (``application/yaml`` or ``application/json``)."""
    definition: Any
    """The parsed document."""
    created_at: datetime
    """When it was deployed."""
    resolved: dict[str, Any] | None = None
    """The document as validated, external documents inlined: what instances
    run (``None`` for versions deployed before it was kept)."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> WorkflowVersion:
        """Build from a ``tideflow_workflow_versions`` row."""
        return cls(
            workflow_id=row["workflow_id"],
            version=row["version"],
            seq=row["seq"],
            source_text=row["source_text"],
            content_type=row["content_type"],
            definition=loads(row["definition"]),
            created_at=row["created_at"],
            resolved=loads(row["resolved"]),
        )

    def to_json(self) -> dict[str, Any]:
        """``{id, version, contentType, createdAt}`` (no source)."""
        return {
            "id": self.workflow_id,
            "version": self.version,
            "contentType": self.content_type,
            "createdAt": _ts(self.created_at),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceRow:
    """A workflow instance as stored."""

    id: str
    """The instance's id."""
    workflow_id: str
    """Its workflow (changes when ``continueAs`` names another one)."""
    version: str
    """The workflow version it runs."""
    run_no: int
    """1, then 2, 3, ... after each ``continueAs``."""
    status: InstanceStatus
    """Where the instance is in its life."""
    current_state: str | None
    """The state being run, ``None`` once ended."""
    input: Any
    """The input of the current run."""
    data: Any
    """State data at the last state boundary."""
    output: Any
    """The workflow output once completed."""
    error: dict[str, Any] | None
    """``{name, code, message, state}`` once failed."""
    parent_id: str | None
    """The instance that started this one as a sub-flow."""
    requested: str | None
    """``cancel`` or ``suspend`` asked and not yet applied."""
    wake_at: datetime | None
    """Since when the instance is runnable (``None``: it is not, it waits).

    The worker's claim index: whatever makes a parked instance runnable sets
    it to ``now()`` -- events delivered, a child's end, a resume, a release,
    and the firing of its wake-up timer (due times of sleeps and timeouts
    live in the timer service, :mod:`tideflow.runtime.wakeups`). Rows
    parked by older versions may still hold a future due time, which the
    worker honours.
    """
    lease_owner: str | None
    """The runtime process holding it."""
    started_at: datetime
    """Creation time."""
    updated_at: datetime
    """Last change."""
    ended_at: datetime | None
    """When it reached a final status."""
    seq: int
    """Creation order (the listing cursor)."""
    crashes: int = 0
    """How often in a row it was claimed after a runner that never released it (a crash)
    at the same journal position: past ``TIDEFLOW_QUARANTINE_AFTER`` it is quarantined."""
    parent_key: str | None = None
    """The parent's step that waits for this sub-flow (``None`` when nothing waits)."""
    headers: dict[str, str] | None = None
    """The filtered HTTP headers of the request that started it (``$WORKFLOW.headers``),
    ``None`` when it was not started over HTTP; never in :meth:`to_json`."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> InstanceRow:
        """Build from a ``tideflow_instances`` row."""
        return cls(
            id=row["id"],
            workflow_id=row["workflow_id"],
            version=row["version"],
            run_no=row["run_no"],
            status=_STATUSES.get(row["status"]) or InstanceStatus(row["status"]),
            current_state=row["current_state"],
            input=loads(row["input"]),
            data=loads(row["data"]),
            output=loads(row["output"]),
            error=loads(row["error"]),
            parent_id=row["parent_id"],
            requested=row["requested"],
            wake_at=row["wake_at"],
            lease_owner=row["lease_owner"],
            started_at=row["started_at"],
            updated_at=row["updated_at"],
            ended_at=row["ended_at"],
            seq=row["seq"],
            crashes=row.get("crashes") or 0,
            parent_key=row.get("parent_key"),
            headers=loads(row.get("headers")),
        )

    @property
    def final(self) -> bool:
        """Whether the instance has ended (completed, failed or cancelled)."""
        return self.status.final

    def to_json(self) -> dict[str, Any]:
        """The status API's view of the instance."""
        return {
            "id": self.id,
            "workflowId": self.workflow_id,
            "version": self.version,
            "status": self.status,
            "currentState": self.current_state,
            "input": self.input,
            "data": self.data,
            "output": self.output,
            "error": self.error,
            "startedAt": _ts(self.started_at),
            "updatedAt": _ts(self.updated_at),
            "endedAt": _ts(self.ended_at),
            "parentId": self.parent_id,
        }


class Commit(IntEnum):
    """What a journal commit did to an instance (``commit_batch``'s ``action`` column)."""

    CREATED = -1
    RENEWED = 0
    PARKED = 1
    FINISHED = 2


_COMMITS = {c.value: c for c in Commit}
_STATUSES = {s.value: s for s in InstanceStatus}  # by value without the enum's call (per row)


@dataclass(frozen=True, slots=True, kw_only=True)
class CommittedRow:
    """One instance a journal commit wrote (``commit_batch``)."""

    id: str
    """The instance's id."""
    action: Commit
    """What the commit did to it."""
    requested: str | None
    """``cancel`` or ``suspend`` asked of it meanwhile, else ``None``."""
    instance: InstanceRow | None
    """Its row when the commit created or finished it (others are only renewed)."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CommittedRow:
        """Build from a ``commit_batch`` row."""
        action = _COMMITS.get(row["action"])
        if action is None:
            action = Commit(row["action"])  # raises ValueError
        whole = action in (Commit.CREATED, Commit.FINISHED)
        return cls(
            id=row["id"],
            action=action,
            requested=row["requested"],
            instance=InstanceRow.from_row(row) if whole else None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveredRow:
    """One instance a batched delivery woke (``deliver_claim``)."""

    id: str
    """The instance's id."""
    answered_key: str
    """The wait the delivery answered."""
    claimed: bool
    """Whether the delivery claimed it for the delivering process."""
    instance: InstanceRow | None
    """Its row, when claimed."""
    journal: list[dict[str, Any]] | None
    """Its run's journal with the answer just added, when claimed."""
    steps: int = 0
    """The interpreter steps in its run's timeline (a replay does not repeat them), when
    claimed."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> DeliveredRow:
        """Build from a ``deliver_claim`` row."""
        claimed = bool(row["claimed"])
        return cls(
            id=row["id"],
            answered_key=row["answered_key"],
            claimed=claimed,
            instance=InstanceRow.from_row(row) if claimed else None,
            journal=loads(row["journal"]) if claimed else None,
            steps=int(row["steps"] or 0) if claimed else 0,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineEntry:
    """One timeline row (see :class:`tideflow.runtime.result.Step` for kinds)."""

    seq: int
    """Order within the instance."""
    run_no: int
    """The run it belongs to."""
    kind: str
    """``state.entered``, ``action.completed``, ``timer.fired``, ``instance.suspended``..."""
    step_key: str
    """The step key."""
    state: str | None
    """The state's name."""
    detail: dict[str, Any]
    """Extra facts: action, attempt, durationMs, error, event type..."""
    at: datetime
    """When it was recorded."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TimelineEntry:
        """Build from a ``tideflow_timeline`` row."""
        return cls(
            seq=row["seq"],
            run_no=row["run_no"],
            kind=row["kind"],
            step_key=row["step_key"],
            state=row["state"],
            detail=loads(row["detail"]) or {},
            at=row["at"],
        )

    def to_json(self) -> dict[str, Any]:
        """``{kind, key, state, at, run, ...detail}``."""
        return {
            "kind": self.kind,
            "key": self.step_key,
            "state": self.state,
            "at": _ts(self.at),
            "run": self.run_no,
            **self.detail,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitMatch:
    """An open wait one event may answer."""

    index: int
    """The event's position in the looked-up batch."""
    instance_id: str
    """The waiting instance."""
    wait_key: str
    """Its wait."""
    name: str
    """The event definition's name within the wait."""
    all_events: bool
    """The wait ends only once all of its events have arrived."""
    behind: bool = False
    """A wait for any of its events that kept events may answer (they arrived before
    the looked-up event: it is to take them first)."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> WaitMatch:
        """Build from a ``match_waits`` row."""
        return cls(
            index=row["i"],
            instance_id=row["instance_id"],
            wait_key=row["wait_key"],
            name=row["name"],
            all_events=row["all_events"],
            behind=bool(row["behind"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class KeptEvent:
    """A consumed event kept for a wait that began after it arrived."""

    instance_id: str
    """The waiting instance."""
    wait_key: str
    """Its wait."""
    name: str
    """The event definition's name within the wait."""
    all_events: bool
    """The wait ends only once all of its events have arrived."""
    offset: int
    """The event's offset on its bus."""
    event: dict[str, Any]
    """The event."""
    indexed_type: str
    """The type it was kept under (its own, or ``""`` for waits of any type)."""
    key: dict[str, str]
    """The correlation key it was kept under (to keep it again)."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> KeptEvent:
        """Build from a ``pending_for_waits`` row."""
        return cls(
            instance_id=row["instance_id"],
            wait_key=row["wait_key"],
            name=row["name"],
            all_events=row["all_events"],
            offset=row["event_offset"],
            event=loads(row["event"]),
            indexed_type=row["event_type"],
            key=loads(row["corr"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenWait:
    """An open event wait, locked by the transaction that read it."""

    run_no: int
    """The run that waits."""
    all_events: bool
    """The wait ends only once all of its events have arrived."""
    events: list[dict[str, Any]]
    """Its event specs, in the listed order."""
    received: list[dict[str, Any]]
    """The events received so far (a wait on all of them)."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OpenWait:
        """Build from a ``tideflow_event_waits`` row."""
        return cls(
            run_no=row["run_no"],
            all_events=row["all_events"],
            events=loads(row["events"]) or [],
            received=loads(row["received"]) or [],
        )
