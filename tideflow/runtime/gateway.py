"""Gateways of the durable runtime: the workflow registry and the instances.

* :class:`PostgresRegistry` stores workflow definitions. Every deploy adds a
  version beside the old ones; the latest non-deleted version is what new
  instances get; running instances keep the version they started with. It
  announces every deploy and delete to the callbacks registered with
  :meth:`PostgresRegistry.on_change` (the workflow subscriber recompiles the
  workflow's event subscriptions): a process has one registry.
* :class:`PostgresInstances` reads and changes instances, their timelines and
  event waits. The runtime's hot path (journal, status changes) goes through
  :class:`tideflow.runtime.journal.JournalWriter`; this class is what the API
  and CLI use.

Both return frozen row objects built with ``from_row()``. SQL lives in
``tideflow/runtime/sql/queries.sql``.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from tideflow import ids
from tideflow.db import load_queries
from tideflow.errors import (
    AlreadyExists,
    InstanceNotFound,
    InvalidArgument,
    StoreError,
    WorkflowNotFound,
)
from tideflow.isotime import format_timestamp
from tideflow.runtime._timeline import expand
from tideflow.runtime.status import InstanceStatus

__all__ = [
    "NOTIFY_CHANNEL",
    "InstanceRow",
    "PostgresInstances",
    "PostgresRegistry",
    "RegistryListener",
    "TimelineEntry",
    "WorkflowVersion",
    "dumps",
    "loads",
]

Q = load_queries("tideflow.runtime")
_W = load_queries("tideflow.runtime", "waits.sql")

NOTIFY_CHANNEL = "tideflow_runtime"
"""LISTEN/NOTIFY channel: payload ``wake`` (instances runnable) or ``done:<id>``."""


def dumps(value: Any) -> str:
    """JSON text for a ``jsonb`` parameter."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def loads(text: str | None) -> Any:
    """A ``jsonb`` column's value (``None`` for SQL NULL)."""
    return None if text is None else orjson.loads(text)


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

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> InstanceRow:
        """Build from a ``tideflow_instances`` row."""
        return cls(
            id=row["id"],
            workflow_id=row["workflow_id"],
            version=row["version"],
            run_no=row["run_no"],
            status=InstanceStatus(row["status"]),
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


RegistryListener = Callable[[str], Awaitable[None]]
"""Called with a workflow's id after a version of it was deployed or it was deleted."""


class PostgresRegistry:
    """Workflow definitions and their versions (see the module docs)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        """Args:
        pool: The database pool.
        """
        self._pool = pool
        self._listeners: builtins.list[RegistryListener] = []

    def on_change(self, listener: RegistryListener) -> Callable[[], None]:
        """Call ``listener`` after every deploy and delete, in registration order.

        Returns:
            A function that unregisters it.
        """
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def _changed(self, workflow_id: str) -> None:
        for listener in list(self._listeners):
            await listener(workflow_id)

    async def deploy(
        self,
        workflow_id: str,
        version: str | None,
        source_text: str,
        content_type: str,
        definition_json: Any,
    ) -> WorkflowVersion:
        """Store a new version of ``workflow_id`` and make it the latest.

        Deploying a version that exists with the same source returns it (and
        makes it the latest again); ``version=None`` gets the deploy number.

        Raises:
            AlreadyExists: The version exists with a different source.
            StoreError: The database failed.
        """
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.fetchrow(Q["lock_workflow"], workflow_id)
                seq = await conn.fetchval(Q["next_version_seq"], workflow_id)
                name = str(seq) if version is None else version
                row = await conn.fetchrow(Q["get_version_row"], workflow_id, name)
                if row is not None and row["source_text"] != source_text:
                    raise AlreadyExists(
                        f"workflow {workflow_id!r} version {name!r} exists with another "
                        "definition; give the new definition another version"
                    )
                if row is None:
                    row = await conn.fetchrow(
                        Q["insert_version"],
                        workflow_id,
                        name,
                        seq,
                        source_text,
                        content_type,
                        dumps(definition_json),
                    )
                await conn.execute(Q["set_latest"], workflow_id, name)
                stored = WorkflowVersion.from_row(row)
        except asyncpg.PostgresError as exc:
            raise StoreError(f"deploying workflow {workflow_id!r} failed: {exc}") from exc
        await self._changed(workflow_id)
        return stored

    async def get(self, workflow_id: str, version: str | None = None) -> WorkflowVersion:
        """``version`` of ``workflow_id`` (any stored one), or its latest non-deleted version.

        Raises:
            WorkflowNotFound: No such workflow or version (or, without a
                version, the workflow is deleted).
        """
        async with self._pool.acquire() as conn:
            if version is None:
                row = await conn.fetchrow(Q["get_latest"], workflow_id)
            else:
                row = await conn.fetchrow(Q["get_version_row"], workflow_id, version)
        if row is None:
            shown = workflow_id if version is None else f"{workflow_id} version {version}"
            raise WorkflowNotFound(f"workflow {shown!r} is not deployed")
        return WorkflowVersion.from_row(row)

    async def list(self) -> builtins.list[WorkflowVersion]:
        """The latest version of every workflow that is not deleted, by id."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(Q["list_workflows"])
        return [WorkflowVersion.from_row(r) for r in rows]

    async def versions(self, workflow_id: str) -> builtins.list[WorkflowVersion]:
        """Every stored version of ``workflow_id`` in deploy order.

        Raises:
            WorkflowNotFound: The workflow was never deployed.
        """
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(Q["list_versions"], workflow_id)
        if not rows:
            raise WorkflowNotFound(f"workflow {workflow_id!r} is not deployed")
        return [WorkflowVersion.from_row(r) for r in rows]

    async def delete(self, workflow_id: str) -> None:
        """Stop new instances of ``workflow_id``; running ones finish on their version.

        Raises:
            WorkflowNotFound: No such (non-deleted) workflow.
        """
        async with self._pool.acquire() as conn:
            found = await conn.fetchval(Q["delete_workflow"], workflow_id)
        if found is None:
            raise WorkflowNotFound(f"workflow {workflow_id!r} is not deployed")
        await self._changed(workflow_id)


class PostgresInstances:
    """Instances, timelines and event waits (see the module docs)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        """Args:
        pool: The database pool.
        """
        self._pool = pool

    async def create(
        self,
        workflow_id: str,
        version: str,
        input: Any,
        parent_id: str | None = None,
        *,
        instance_id: str | None = None,
    ) -> InstanceRow:
        """Insert a runnable instance (any runtime on the database may claim it).

        Raises:
            WorkflowNotFound: The workflow is deleted, or has no such version.

        Most callers want :meth:`DurableRuntime.start_instance`, which checks
        the workflow and runs the instance at once in its own process.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                Q["insert_instances"],
                [instance_id or ids.new_sortable_id()],
                [workflow_id],
                [version],
                [dumps(input)],
                [parent_id],
                [None],
                None,
                0.0,
            )
            if rows:
                await conn.execute(Q["notify"], NOTIFY_CHANNEL, "wake")
        if not rows:
            raise WorkflowNotFound(
                f"workflow {workflow_id!r} version {version!r} is not deployed (or is deleted)"
            )
        return InstanceRow.from_row(rows[0])

    async def count_by_status(self) -> dict[InstanceStatus, int]:
        """How many instances have each status (those with none are left out)."""
        try:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(Q["count_by_status"])
        except asyncpg.PostgresError as exc:
            raise StoreError(f"counting instances failed: {exc}") from exc
        return {InstanceStatus(r["status"]): int(r["n"]) for r in rows}

    async def get(self, instance_id: str) -> InstanceRow:
        """One instance.

        Raises:
            InstanceNotFound: No such instance.
        """
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(Q["get_instance"], instance_id)
        if row is None:
            raise InstanceNotFound(f"instance {instance_id!r} does not exist")
        return InstanceRow.from_row(row)

    async def list(
        self,
        workflow: str | None = None,
        status: InstanceStatus | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[builtins.list[InstanceRow], str | None]:
        """Instances in creation order, and the cursor of the next page (``None`` at the end).

        Raises:
            InvalidArgument: ``cursor`` is not one this method returned.
        """
        try:
            after = int(cursor) if cursor else 0
        except ValueError:
            raise InvalidArgument(f"bad cursor {cursor!r}", argument="cursor") from None
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(Q["list_instances"], workflow, status, after, limit + 1)
        page = [InstanceRow.from_row(r) for r in rows[:limit]]
        more = len(rows) > limit
        return page, (str(page[-1].seq) if more and page else None)

    async def timeline(self, instance_id: str) -> builtins.list[TimelineEntry]:
        """The instance's timeline, oldest first.

        Raises:
            InstanceNotFound: No such instance.
        """
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(Q["get_timeline"], instance_id)
            if not rows and await conn.fetchrow(Q["get_instance"], instance_id) is None:
                raise InstanceNotFound(f"instance {instance_id!r} does not exist")
        return [TimelineEntry(**e) for r in rows for e in expand(r, loads(r["detail"]))]

    async def journal(self, instance_id: str, run_no: int) -> builtins.list[dict[str, Any]]:
        """The journal of one run: ``{"op", "key", ...entry}`` in commit order."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(Q["get_journal"], instance_id, run_no)
        return [{"op": r["op"], "key": r["step_key"], **loads(r["entry"])} for r in rows]

    async def waits(self, instance_id: str) -> builtins.list[dict[str, Any]]:
        """The open event waits of an instance (``wait_key``, ``events``, ``due_at``...)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(Q["list_waits"], instance_id)
        return [{**dict(r), "events": loads(r["events"])} for r in rows]

    async def request_cancel(self, instance_id: str) -> InstanceRow:
        """Cancel at once when idle, else at the running instance's next step."""
        return await self._stop(instance_id, "cancel")

    async def request_suspend(self, instance_id: str) -> InstanceRow:
        """Suspend at once when idle, else at the running instance's next step."""
        return await self._stop(instance_id, "suspend")

    async def request_resume(self, instance_id: str) -> InstanceRow:
        """Make a suspended instance run again (a no-op for any other status).

        Raises:
            InstanceNotFound: No such instance.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(Q["resume_instance"], instance_id)
            if row is not None:
                await conn.execute(Q["notify"], NOTIFY_CHANNEL, "wake")
                return InstanceRow.from_row(row)
        return await self.get(instance_id)

    async def _stop(self, instance_id: str, what: str) -> InstanceRow:
        idle = "cancel_idle" if what == "cancel" else "suspend_idle"
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(Q[idle], instance_id)
            if row is not None:
                if what == "cancel":
                    await conn.execute(Q["delete_waits"], instance_id)
                    await conn.execute(Q["notify"], NOTIFY_CHANNEL, f"done:{instance_id}")
                return InstanceRow.from_row(row)
            row = await conn.fetchrow(Q["request_stop"], instance_id, what)
        if row is not None:
            return InstanceRow.from_row(row)
        return await self.get(instance_id)

    async def find_waits(self, event_type: str, limit: int = 1000) -> Sequence[dict[str, Any]]:
        """Open event waits listing ``event_type`` (candidates for a correlation match)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(Q["find_waits"], event_type, limit)
        return [{**dict(r), "events": loads(r["events"])} for r in rows]


# --- the wait index (sql/waits.sql): used by tideflow.runtime.waits ---------------------


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

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> WaitMatch:
        """Build from a ``match_waits`` row."""
        return cls(
            index=row["i"],
            instance_id=row["instance_id"],
            wait_key=row["wait_key"],
            name=row["name"],
            all_events=row["all_events"],
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
        )


WaitRef = tuple[str, str]
"""``(instance id, wait key)``."""


async def match_waits(
    conn: asyncpg.Connection, keys: Sequence[tuple[int, str, str, str]]
) -> builtins.list[WaitMatch]:
    """The open waits indexed under ``(event index, type, correlation key JSON, source)``."""
    columns = [list(c) for c in zip(*keys, strict=True)] if keys else [[], [], [], []]
    rows = await conn.fetch(_W["match_waits"], *columns)
    return [WaitMatch.from_row(r) for r in rows]


async def add_partial(
    conn: asyncpg.Connection, wait: WaitRef, name: str, event: dict[str, Any]
) -> tuple[builtins.list[str], dict[str, Any]] | None:
    """Keep one event of a wait for all of its events (in the caller's transaction).

    Returns:
        The wait's event names in order and the events kept so far by name,
        or ``None`` when the wait is gone.
    """
    await conn.execute(_W["add_partial"], *wait, name, dumps(event))
    row = await conn.fetchrow(_W["partial_set"], *wait)
    if row is None:
        return None
    return [spec["name"] for spec in loads(row["events"])], loads(row["kept"])


async def keep_events(
    conn: asyncpg.Connection, kept: Sequence[tuple[str, str, int, str, dict[str, Any]]]
) -> None:
    """Keep ``(type, correlation key JSON, offset, source, event)`` for later waits."""
    await conn.execute(
        _W["add_pending"],
        [k[0] for k in kept],
        [k[1] for k in kept],
        [k[2] for k in kept],
        [k[3] for k in kept],
        [dumps(k[4]) for k in kept],
    )


async def kept_for(conn: asyncpg.Connection, waits: Sequence[WaitRef]) -> builtins.list[KeptEvent]:
    """Kept events ``waits`` may take (arrived after each instance started), by offset."""
    rows = await conn.fetch(_W["pending_for_waits"], [w[0] for w in waits], [w[1] for w in waits])
    return [KeptEvent.from_row(r) for r in rows]


async def claim_kept(conn: asyncpg.Connection, offset: int) -> bool:
    """Take the kept event at ``offset`` (whoever deletes it delivers it)."""
    return bool(await conn.fetch(_W["claim_pending"], [offset]))


async def expire_kept(conn: asyncpg.Connection, seconds: float) -> None:
    """Forget kept events older than ``seconds``."""
    await conn.execute(_W["expire_pending"], seconds)


async def put_inbox(conn: asyncpg.Connection, wait: WaitRef, events: list[Any]) -> None:
    """Address ``events`` to a wait that does not exist yet (kept if some are already)."""
    await conn.execute(_W["put_inbox"], *wait, dumps(events))


async def inbox_of(
    conn: asyncpg.Connection, waits: Sequence[WaitRef]
) -> builtins.list[tuple[WaitRef, list[Any]]]:
    """The events addressed to ``waits``."""
    rows = await conn.fetch(_W["get_inbox"], [w[0] for w in waits], [w[1] for w in waits])
    return [((r["instance_id"], r["wait_key"]), loads(r["events"])) for r in rows]


async def drop_inbox(conn: asyncpg.Connection, wait: WaitRef) -> None:
    """Forget the events addressed to ``wait`` (delivered)."""
    await conn.execute(_W["delete_inbox"], *wait)


async def waits_with_events(conn: asyncpg.Connection) -> builtins.list[WaitRef]:
    """Open waits that events already wait for: an inbox, or kept events under their keys."""
    return [(r["instance_id"], r["wait_key"]) for r in await conn.fetch(_W["open_waits"])]


async def existing_instances(conn: asyncpg.Connection, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` are instances."""
    return {r["id"] for r in await conn.fetch(_W["existing_instances"], list(ids))}
