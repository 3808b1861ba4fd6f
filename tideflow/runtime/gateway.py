"""The durable runtime's gateway: the only code that runs its named queries.

* :class:`PostgresRegistry` stores workflow definitions. Every deploy adds a
  version beside the old ones; the latest non-deleted version is what new
  instances get; running instances keep the version they started with. It
  announces every deploy and delete to the callbacks registered with
  :meth:`PostgresRegistry.on_change` (the workflow subscriber recompiles the
  workflow's event subscriptions): a process has one registry. Other
  processes hear of it on :data:`REGISTRY_CHANNEL`.
* :class:`PostgresInstances` reads and changes instances, their timelines and
  event waits. The runtime's hot path (journal, status changes) goes through
  :class:`tideflow.runtime.journal.JournalWriter`; this class is what the API
  and CLI use.

* Functions on a caller's connection for everything else the runtime runs:
  the journal writer's statements, the claimer's, wake-ups, the hosts' reads
  and answers, and the wait index behind :class:`tideflow.runtime.waits.EventWaits`.

Rows come back as frozen values built with ``from_row()``
(:mod:`tideflow.runtime.rows`). SQL lives in ``tideflow/runtime/sql/``:
``queries.sql``, ``deliver.sql`` (batched delivery), ``waits.sql`` (the wait index)
``history.sql`` (:class:`PostgresHistory`: deleting ended instances past their
retention) and ``seed.sql`` (copies of a parked instance, :mod:`tideflow.runtime.seeding`).
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from tideflow import ids
from tideflow.db import acquired, keeps_session_state, load_queries
from tideflow.errors import (
    AlreadyExists,
    InstanceNotFound,
    InvalidArgument,
    StoreError,
    WorkflowNotFound,
)
from tideflow.runtime._timeline import expand
from tideflow.runtime.rows import (
    Commit,
    CommittedRow,
    DeliveredRow,
    InstanceRow,
    KeptEvent,
    OpenWait,
    TimelineEntry,
    WaitMatch,
    WorkflowVersion,
    dumps,
    loads,
)
from tideflow.runtime.status import InstanceStatus

__all__ = [
    "NOTIFY_CHANNEL",
    "REGISTRY_CHANNEL",
    "Commit",
    "CommittedRow",
    "DeliveredRow",
    "InstanceRow",
    "KeptEvent",
    "OpenWait",
    "PostgresHistory",
    "PostgresInstances",
    "PostgresRegistry",
    "RegistryListener",
    "TimelineEntry",
    "WaitMatch",
    "WaitRef",
    "WorkflowVersion",
    "dumps",
    "loads",
]

_Q = load_queries("tideflow.runtime")
_W = load_queries("tideflow.runtime", "waits.sql")
_D = load_queries("tideflow.runtime", "deliver.sql")
_H = load_queries("tideflow.runtime", "history.sql")
_S = load_queries("tideflow.runtime", "seed.sql")

NOTIFY_CHANNEL = "tideflow_runtime"
"""LISTEN/NOTIFY channel: payload ``wake`` (instances runnable) or ``done:<id>``."""

REGISTRY_CHANNEL = "tideflow_registry"
"""LISTEN/NOTIFY channel: payload ``<workflow id>`` after a deploy or delete committed
(other processes' subscribers listen: their registries do not call them back)."""


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
        resolved: Mapping[str, Any] | None = None,
    ) -> WorkflowVersion:
        """Store a new version of ``workflow_id`` and make it the latest.

        Deploying a version that exists with the same source returns it (and
        makes it the latest again, its resolved document unchanged);
        ``version=None`` gets the deploy number. ``resolved`` is the document
        as validated (:attr:`WorkflowVersion.resolved`).

        Raises:
            AlreadyExists: The version exists with a different source.
            StoreError: The database failed.
        """
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.fetchrow(_Q["lock_workflow"], workflow_id)
                seq = await conn.fetchval(_Q["next_version_seq"], workflow_id)
                name = str(seq) if version is None else version
                row = await conn.fetchrow(_Q["get_version_row"], workflow_id, name)
                if row is not None and row["source_text"] != source_text:
                    raise AlreadyExists(
                        f"workflow {workflow_id!r} version {name!r} exists with another "
                        "definition; give the new definition another version"
                    )
                if row is None:
                    row = await conn.fetchrow(
                        _Q["insert_version"],
                        workflow_id,
                        name,
                        seq,
                        source_text,
                        content_type,
                        dumps(definition_json),
                        None if resolved is None else dumps(resolved),
                    )
                await conn.execute(_Q["set_latest"], workflow_id, name)
                await conn.execute(_Q["notify"], REGISTRY_CHANNEL, workflow_id)
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
                row = await conn.fetchrow(_Q["get_latest"], workflow_id)
            else:
                row = await conn.fetchrow(_Q["get_version_row"], workflow_id, version)
        if row is None:
            shown = workflow_id if version is None else f"{workflow_id} version {version}"
            raise WorkflowNotFound(f"workflow {shown!r} is not deployed")
        return WorkflowVersion.from_row(row)

    async def list(self) -> builtins.list[WorkflowVersion]:
        """The latest version of every workflow that is not deleted, by id."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_Q["list_workflows"])
        return [WorkflowVersion.from_row(r) for r in rows]

    async def fingerprint(self) -> str:
        """A value that changes with every deploy and delete, by any process."""
        async with self._pool.acquire() as conn:
            return str(await conn.fetchval(_Q["registry_fingerprint"]))

    async def heads(self) -> dict[str, str | None]:
        """Every workflow's latest version (``None``: deleted)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_Q["registry_heads"])
        return {row["id"]: row["version"] for row in rows}

    async def versions(self, workflow_id: str) -> builtins.list[WorkflowVersion]:
        """Every stored version of ``workflow_id`` in deploy order.

        Raises:
            WorkflowNotFound: The workflow was never deployed.
        """
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_Q["list_versions"], workflow_id)
        if not rows:
            raise WorkflowNotFound(f"workflow {workflow_id!r} is not deployed")
        return [WorkflowVersion.from_row(r) for r in rows]

    async def delete(self, workflow_id: str) -> None:
        """Stop new instances of ``workflow_id``; running ones finish on their version.

        Raises:
            WorkflowNotFound: No such (non-deleted) workflow.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            found = await conn.fetchval(_Q["delete_workflow"], workflow_id)
            if found is not None:
                await conn.execute(_Q["notify"], REGISTRY_CHANNEL, workflow_id)
        if found is None:
            raise WorkflowNotFound(f"workflow {workflow_id!r} is not deployed")
        await self._changed(workflow_id)


_LIST_QUERIES = {
    (False, False): "list_instances",
    (False, True): "list_instances_newest",
    (True, False): "list_instances_correlated",
    (True, True): "list_instances_correlated_newest",
}
"""The list query by (filtered by a correlation value, newest first)."""


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
        new = (instance_id or ids.new_sortable_id(), workflow_id, version, input, parent_id, None)
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await insert_instances(conn, [new], None, 0.0)
            if rows:
                await notify_wake(conn)
        if not rows:
            raise WorkflowNotFound(
                f"workflow {workflow_id!r} version {version!r} is not deployed (or is deleted)"
            )
        return rows[0]

    async def count_by_status(self) -> dict[InstanceStatus, int]:
        """How many instances have each status (those with none are left out)."""
        try:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(_Q["count_by_status"])
        except asyncpg.PostgresError as exc:
            raise StoreError(f"counting instances failed: {exc}") from exc
        return {InstanceStatus(r["status"]): int(r["n"]) for r in rows}

    async def get(self, instance_id: str) -> InstanceRow:
        """One instance.

        Raises:
            InstanceNotFound: No such instance.
        """
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(_Q["get_instance"], instance_id)
        if row is None:
            raise InstanceNotFound(f"instance {instance_id!r} does not exist")
        return InstanceRow.from_row(row)

    async def list(
        self,
        workflow: str | None = None,
        status: InstanceStatus | None = None,
        limit: int = 100,
        cursor: str | None = None,
        *,
        newest_first: bool = False,
        correlation: tuple[str, str] | None = None,
    ) -> tuple[builtins.list[InstanceRow], str | None]:
        """Instances in creation order (the newest first under ``newest_first``), and the
        cursor of the next page (``None`` at the end); a cursor pages in the order that
        returned it.

        ``correlation`` ``(key, value)``: only instances waiting for an event whose
        correlation attribute ``key`` is bound to ``value`` (the correlation index, which
        holds the open waits; compared as text, as the index keeps values).

        Raises:
            InvalidArgument: ``cursor`` is not one this method returned.
        """
        try:
            after = int(cursor) if cursor else None
        except ValueError:
            raise InvalidArgument(f"bad cursor {cursor!r}", argument="cursor") from None
        query = _Q[_LIST_QUERIES[correlation is not None, newest_first]]
        if not newest_first:
            after = after or 0
        args: tuple[object, ...] = (workflow, status, after, limit + 1)
        if correlation is not None:
            args += (dumps({correlation[0]: correlation[1]}),)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(query, *args)
        page = [InstanceRow.from_row(r) for r in rows[:limit]]
        more = len(rows) > limit
        return page, (str(page[-1].seq) if more and page else None)

    async def timeline(self, instance_id: str) -> builtins.list[TimelineEntry]:
        """The instance's timeline, oldest first.

        Raises:
            InstanceNotFound: No such instance.
        """
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_Q["get_timeline"], instance_id)
            if not rows and await conn.fetchrow(_Q["get_instance"], instance_id) is None:
                raise InstanceNotFound(f"instance {instance_id!r} does not exist")
        return [TimelineEntry(**e) for r in rows for e in expand(r, loads(r["detail"]))]

    async def timeline_page(
        self, instance_id: str, after: str | None, limit: int
    ) -> tuple[builtins.list[TimelineEntry], str | None]:
        """Up to ``limit`` timeline entries after the cursor ``after``, oldest first.

        Args:
            instance_id: The instance.
            after: ``next`` of the previous page (``None``: from the start).
            limit: Most entries returned.

        Returns:
            The entries and the cursor of the next page (``None`` at the end).

        Raises:
            InstanceNotFound: No such instance.
            InvalidArgument: ``after`` is not a cursor.
        """
        seq, skip = parse_timeline_cursor(after)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                _Q["get_timeline_page"], instance_id, seq if skip else seq + 1, limit + 1
            )
            if not rows and await conn.fetchrow(_Q["get_instance"], instance_id) is None:
                raise InstanceNotFound(f"instance {instance_id!r} does not exist")
        placed = [
            (r["seq"], i, len(expanded), e)
            for r in rows
            for expanded in [expand(r, loads(r["detail"]))]
            for i, e in enumerate(expanded)
            if not (skip and r["seq"] == seq and i < skip)
        ]
        entries = [TimelineEntry(**e) for _, _, _, e in placed[:limit]]
        if len(placed) <= limit:
            return entries, None
        last_seq, index, size, _ = placed[limit - 1]
        return entries, str(last_seq) if index + 1 == size else f"{last_seq}.{index + 1}"

    async def journal(self, instance_id: str, run_no: int) -> builtins.list[dict[str, Any]]:
        """The journal of one run: ``{"op", "key", ...entry}`` in commit order."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_Q["get_journal"], instance_id, run_no)
        return [{"op": r["op"], "key": r["step_key"], **loads(r["entry"])} for r in rows]

    async def waits(self, instance_id: str) -> builtins.list[dict[str, Any]]:
        """The open event waits of an instance (``wait_key``, ``events``, ``due_at``...)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_Q["list_waits"], instance_id)
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
            row = await conn.fetchrow(_Q["resume_instance"], instance_id)
            if row is not None:
                await notify_wake(conn)
                return InstanceRow.from_row(row)
        return await self.get(instance_id)

    async def request_retry(self, instance_id: str) -> InstanceRow | None:
        """Make a failed instance run again from its failed step (``None``: it is not failed).

        The failed state's errored steps are dropped from the journal of its current run,
        so a replay gives the instance every earlier result and runs that state again.

        Raises:
            InstanceNotFound: No such instance.
        """
        before = await self.get(instance_id)
        error = before.error if isinstance(before.error, dict) else {}
        state = str(error.get("state") or before.current_state or "")
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(_Q["retry_instance"], instance_id, state)
            if row is None:
                return None
            await notify_wake(conn)
            return InstanceRow.from_row(row)

    async def _stop(self, instance_id: str, what: str) -> InstanceRow:
        idle = "cancel_idle" if what == "cancel" else "suspend_idle"
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(_Q[idle], instance_id)
            if row is not None:
                if what == "cancel":
                    await conn.execute(_Q["delete_waits"], instance_id)
                    await notify_done(conn, [instance_id])
                return InstanceRow.from_row(row)
            row = await conn.fetchrow(_Q["request_stop"], instance_id, what)
        if row is not None:
            return InstanceRow.from_row(row)
        return await self.get(instance_id)

    async def find_waits(self, event_type: str, limit: int = 1000) -> Sequence[dict[str, Any]]:
        """Open event waits listing ``event_type`` (candidates for a correlation match)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_Q["find_waits"], event_type, limit)
        return [{**dict(r), "events": loads(r["events"])} for r in rows]


class PostgresHistory:
    """Deletes ended instances past their retention (:mod:`tideflow.runtime.history`)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        """Args:
        pool: The database pool.
        """
        self._pool = pool

    async def workflow_ids(self) -> builtins.list[str]:
        """Every workflow id that may have instances, deleted workflows too."""
        async with acquired(self._pool, "history") as conn:
            return [r["id"] for r in await conn.fetch(_H["history_workflows"])]

    async def purge(
        self, workflow_ids: Sequence[str], cutoffs: Sequence[datetime], limit: int
    ) -> builtins.list[str]:
        """Delete at most ``limit`` completed, failed or cancelled instances of
        ``workflow_ids`` that ended before their workflow's cutoff, with everything
        kept for them; their ids. One transaction.

        Raises:
            StoreError: The database failed (nothing was deleted).
        """
        async with acquired(self._pool, "history") as conn:
            rows = await conn.fetch(_H["purge_history"], workflow_ids, cutoffs, limit)
        return [r["id"] for r in rows]


# --- the wait index (sql/waits.sql): used by tideflow.runtime.waits ---------------------


WaitRef = tuple[str, str]
"""``(instance id, wait key)``."""


async def plan_once(conn: asyncpg.Connection) -> None:
    """Make ``conn`` (held by a wait session) plan its statements once (``sql/waits.sql``);
    the pool resets the setting when ``conn`` is given back."""
    keeps_session_state(conn)
    await conn.execute(_W["plan_once"])


async def plan_again(conn: asyncpg.Connection) -> None:
    """Drop the plans ``conn`` keeps (its statements are planned again at their next call)."""
    await conn.execute(_W["plan_again"])


async def match_waits(
    conn: asyncpg.Connection, keys: Sequence[tuple[int, str, str, str]]
) -> builtins.list[WaitMatch]:
    """The open waits indexed under ``(event index, type, correlation key JSON, source)``."""
    columns = [list(c) for c in zip(*keys, strict=True)] if keys else [[], [], [], []]
    rows = await conn.fetch(_W["match_waits"], *columns)
    return [WaitMatch.from_row(r) for r in rows]


async def addressed_waits(
    conn: asyncpg.Connection, asks: Sequence[tuple[int, str, str]]
) -> builtins.list[tuple[int, str, WaitMatch | None]]:
    """For each ``(event index, instance id, type)`` whose instance exists: its workflow id
    and each of its open waits for the type (``None`` when it has none)."""
    columns = [list(c) for c in zip(*asks, strict=True)] if asks else [[], [], []]
    rows = await conn.fetch(_W["addressed_waits"], *columns)
    return [
        (r["i"], r["workflow_id"], None if r["wait_key"] is None else WaitMatch.from_row(r))
        for r in rows
    ]


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


async def put_inbox(
    conn: asyncpg.Connection, wait: WaitRef, events: list[Any], origin: int
) -> None:
    """Address ``events`` to a wait that does not exist yet (kept if some are already).

    The instance consumes the events after ``origin`` (see :func:`put_origin`).
    """
    await conn.execute(_W["put_inbox"], *wait, dumps(events), origin)


async def put_inboxes(
    conn: asyncpg.Connection, inboxes: Sequence[tuple[WaitRef, list[Any], int]]
) -> None:
    """:func:`put_inbox` for many ``(wait, events, origin)`` in one statement."""
    await conn.execute(
        _W["put_inboxes"],
        [w[0] for w, _, _ in inboxes],
        [w[1] for w, _, _ in inboxes],
        [dumps(events) for _, events, _ in inboxes],
        [origin for _, _, origin in inboxes],
    )


async def put_origin(conn: asyncpg.Connection, instance_id: str, origin: int) -> None:
    """Make an instance not created yet consume the events after offset ``origin``.

    Without it an instance consumes those after the bus head at its creation,
    which an event committed right after its start event may already be behind.
    """
    await conn.execute(_W["put_origin"], instance_id, origin)


async def inbox_of(
    conn: asyncpg.Connection, waits: Sequence[WaitRef]
) -> builtins.list[tuple[WaitRef, list[Any]]]:
    """The events addressed to ``waits``."""
    rows = await conn.fetch(_W["get_inbox"], [w[0] for w in waits], [w[1] for w in waits])
    return [((r["instance_id"], r["wait_key"]), loads(r["events"])) for r in rows]


async def drop_inbox(conn: asyncpg.Connection, wait: WaitRef) -> None:
    """Forget the events addressed to ``wait`` (delivered)."""
    await conn.execute(_W["delete_inbox"], *wait)


async def drop_inboxes(conn: asyncpg.Connection, waits: Sequence[WaitRef]) -> None:
    """Forget the events addressed to ``waits`` (delivered), in one statement."""
    await conn.execute(_W["delete_inboxes"], [w[0] for w in waits], [w[1] for w in waits])


async def waits_with_events(conn: asyncpg.Connection) -> builtins.list[WaitRef]:
    """Open waits that events already wait for: an inbox, or kept events under their keys."""
    return [(r["instance_id"], r["wait_key"]) for r in await conn.fetch(_W["open_waits"])]


async def existing_instances(conn: asyncpg.Connection, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` are instances."""
    return {r["id"] for r in await conn.fetch(_W["existing_instances"], list(ids))}


# --- the runtime's own statements: journal writer, claimer, wake-ups, hosts --------------
# Each runs on the caller's connection (inside its transaction where it has one).


def _columns(rows: Sequence[Sequence[Any]], width: int) -> builtins.list[builtins.list[Any]]:
    return [[row[i] for row in rows] for i in range(width)]


async def notify_wake(conn: asyncpg.Connection) -> None:
    """Tell every runtime on the database that instances are runnable."""
    await conn.execute(_Q["notify"], NOTIFY_CHANNEL, "wake")


async def notify_done(conn: asyncpg.Connection, instance_ids: Sequence[str]) -> None:
    """Tell every runtime that ``instance_ids`` ended (keep the payload under 8,000 bytes)."""
    await conn.execute(_Q["notify"], NOTIFY_CHANNEL, "done:" + ",".join(instance_ids))


async def insert_instances(
    conn: asyncpg.Connection,
    news: Sequence[tuple[str, str, str | None, Any, str | None, str | None]],
    owner: str | None,
    lease_seconds: float,
    headers: Sequence[Mapping[str, str] | None] = (),
) -> builtins.list[InstanceRow]:
    """Insert ``(id, workflow, version, input, parent id, parent key)`` of deployed versions.

    ``headers``: each new instance's start request headers, already filtered
    (:mod:`tideflow.api.start_headers`); ``None`` or missing: not started over HTTP.

    Returns:
        The rows inserted (none for an existing id or a deleted version),
        held by ``owner`` when one is given, else runnable by any runtime.
    """
    columns = _columns(news, 6)
    columns[3] = [dumps(value) for value in columns[3]]
    stored = [None if h is None else dumps(dict(h)) for h in headers]
    stored += [None] * (len(news) - len(stored))
    rows = await conn.fetch(_Q["insert_instances"], *columns, owner, lease_seconds, stored)
    return [InstanceRow.from_row(r) for r in rows]


async def touch_instances(
    conn: asyncpg.Connection,
    owner: str,
    lease_seconds: float,
    ids: Sequence[str],
    progress: Sequence[tuple[str | None, str | None, bool]],
) -> dict[str, str | None]:
    """Renew ``owner``'s leases of ``ids`` and save their progress (state, data JSON, touched).

    Returns:
        The instances still held, with the control requested of each (or ``None``).
    """
    rows = await conn.fetch(
        _Q["touch_instances"], owner, lease_seconds, list(ids), *_columns(progress, 3)
    )
    return {r["id"]: r["requested"] for r in rows}


async def insert_journal(
    conn: asyncpg.Connection, entries: Sequence[tuple[str, int, str, str, str]]
) -> None:
    """Journal ``(instance, run, op, step key, entry JSON)``."""
    await conn.execute(_Q["insert_journal"], *_columns(entries, 5))


async def insert_wait(conn: asyncpg.Connection, instance_id: str, wait: Mapping[str, Any]) -> None:
    """Open an event wait (``key``, ``run_no``, ``all``, ``events``, ``types``, ``due_at``)."""
    await conn.execute(
        _Q["insert_wait"],
        instance_id,
        wait["key"],
        wait["run_no"],
        wait["all"],
        dumps(wait["events"]),
        wait["types"],
        wait["due_at"],
    )


def parse_timeline_cursor(after: str | None) -> tuple[int, int]:
    """``after`` of a timeline page as (row seq, entries of that row already read; 0: all).

    Raises:
        InvalidArgument: Not ``SEQ`` or ``SEQ.N`` (non-negative integers).
    """
    if after is None:
        return 0, 0
    seq, dot, skip = after.partition(".")
    valid = seq.isdecimal() and (skip.isdecimal() if dot else True) and len(after) <= 24
    if not valid or int(seq) >= 2**62 or int(skip or 0) >= 2**31:
        raise InvalidArgument(
            f"after must be the next cursor of a timeline page (SEQ or SEQ.N), got {after[:40]!r}",
            argument="after",
        )
    return int(seq), int(skip or 0)


async def insert_timeline(conn: asyncpg.Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Add folded timeline rows (see :mod:`tideflow.runtime._timeline`)."""
    await conn.execute(_Q["insert_timeline"], *_columns(rows, 7))


async def commit_batch(
    conn: asyncpg.Connection, params: Sequence[Any]
) -> builtins.list[CommittedRow]:
    """Run the one-statement journal commit (:mod:`tideflow.runtime._journal_batch`)."""
    return [CommittedRow.from_row(r) for r in await conn.fetch(_Q["commit_batch"], *params)]


async def stop_instance(
    conn: asyncpg.Connection, instance_id: str, status: InstanceStatus | None, owner: str
) -> None:
    """Release ``owner``'s instance, suspended or cancelled (``None``: shutdown)."""
    await conn.execute(_Q["stop_instance"], instance_id, status, owner)
    if status == InstanceStatus.CANCELLED:
        await conn.execute(_Q["delete_waits"], instance_id)


async def continue_instance(
    conn: asyncpg.Connection,
    instance_id: str,
    workflow_id: str,
    version: str,
    input: Any,
    owner: str,
) -> None:
    """Start the instance's next run (``continueAs``) with a fresh journal."""
    run_no = await conn.fetchval(
        _Q["continue_instance"], instance_id, workflow_id, version, dumps(input), owner
    )
    await conn.execute(_Q["drop_journal"], instance_id, run_no)


async def park_instances(conn: asyncpg.Connection, ids: Sequence[str], owner: str) -> None:
    """Release ``owner``'s instances that wait (runnable again only when woken)."""
    await conn.execute(_Q["park_instances"], list(ids), [None] * len(ids), owner)


async def finish_instances(
    conn: asyncpg.Connection,
    finishes: Sequence[tuple[str, InstanceStatus, Any, Any, Any]],
    owner: str,
) -> builtins.list[InstanceRow]:
    """End ``(instance, status, output, error, data)`` held by ``owner``; drop their waits.

    Returns:
        The final rows of the instances ended.
    """
    rows = await conn.fetch(
        _Q["finish_instances"],
        [f[0] for f in finishes],
        [f[1] for f in finishes],
        [dumps(f[2]) for f in finishes],
        [None if f[3] is None else dumps(f[3]) for f in finishes],
        [None if f[4] is None else dumps(f[4]) for f in finishes],
        owner,
    )
    await conn.execute(_Q["delete_waits_of"], [r["id"] for r in rows])
    return [InstanceRow.from_row(r) for r in rows]


async def answer_parent(
    conn: asyncpg.Connection, parent_id: str, parent_key: str, entry: Any
) -> None:
    """Journal a sub-flow's end as its parent's step result and wake the parent."""
    await conn.execute(_Q["answer_parent"], parent_id, parent_key, dumps(entry))
    await notify_wake(conn)


async def claim_instances(
    conn: asyncpg.Connection, owner: str, lease_seconds: float, limit: int
) -> builtins.list[InstanceRow]:
    """Claim up to ``limit`` runnable instances for ``owner``."""
    rows = await conn.fetch(_Q["claim_instances"], owner, lease_seconds, limit)
    return [InstanceRow.from_row(r) for r in rows]


async def next_wake(conn: asyncpg.Connection) -> datetime | None:
    """When the next parked instance becomes runnable (rows of older versions)."""
    found: datetime | None = await conn.fetchval(_Q["next_wake"])
    return found


async def renew_leases(
    conn: asyncpg.Connection, owner: str, ids: Sequence[str], lease_seconds: float
) -> set[str]:
    """Renew ``owner``'s leases of ``ids``; the ones still held."""
    return {r["id"] for r in await conn.fetch(_Q["renew_leases"], owner, list(ids), lease_seconds)}


async def release_instances(conn: asyncpg.Connection, owner: str, ids: Sequence[str]) -> None:
    """Hand back ``ids`` that ``owner`` holds (runnable at once, here or elsewhere)."""
    await conn.execute(_Q["release_instances"], owner, list(ids))


async def reclaim_leases(conn: asyncpg.Connection, owner: str) -> int:
    """End the leases ``owner`` holds from a previous life (claimable at once, counted as
    a crash by the claim); how many."""
    reclaimed = await conn.fetch(_Q["reclaim_leases"], owner)
    if reclaimed:
        await notify_wake(conn)
    return len(reclaimed)


async def release_all(conn: asyncpg.Connection, owner: str) -> None:
    """Shutdown: hand back every instance ``owner`` holds, and say so."""
    await conn.execute(_Q["release_all"], owner)
    await notify_wake(conn)


async def insert_wake_timers(
    conn: asyncpg.Connection, kind: str, timers: Sequence[tuple[datetime, Any, str]]
) -> None:
    """Add timers ``(due, payload, idempotency key)`` of ``kind`` (existing keys are kept)."""
    await conn.execute(
        _Q["insert_wake_timers"],
        [ids.new_sortable_id() for _ in timers],
        [kind] * len(timers),
        [t[0] for t in timers],
        [dumps(t[1]) for t in timers],
        [t[2] for t in timers],
    )


async def cancel_wake_timer(conn: asyncpg.Connection, key: str) -> None:
    """Cancel the pending timer with idempotency key ``key``."""
    await conn.execute(_Q["cancel_wake_timer"], key)


async def wake_instances(
    conn: asyncpg.Connection, instances: Sequence[str], runs: Sequence[int]
) -> int:
    """Make the parked runs ``(instance, run)`` runnable; how many were."""
    return len(await conn.fetch(_Q["wake_instances"], list(instances), list(runs)))


async def lock_wait(conn: asyncpg.Connection, instance_id: str, wait_key: str) -> OpenWait | None:
    """The open wait, locked until the transaction ends (waits for a delivery holding it)."""
    row = await conn.fetchrow(_Q["lock_wait"], instance_id, wait_key)
    return None if row is None else OpenWait.from_row(row)


async def add_received(
    conn: asyncpg.Connection, instance_id: str, wait_key: str, received: list[dict[str, Any]]
) -> None:
    """Keep the events received so far by a wait on all of its events."""
    await conn.execute(_Q["add_received"], instance_id, wait_key, dumps(received))


async def deliver_events(
    conn: asyncpg.Connection, instance_id: str, wait_key: str, result: list[dict[str, Any]]
) -> bool:
    """Journal ``result`` as the wait's result, drop the wait, mark the instance woken."""
    found = await conn.fetchval(
        _Q["deliver_events"], instance_id, wait_key, dumps({"result": result})
    )
    return found is not None


async def deliver_claim(
    conn: asyncpg.Connection,
    answers: Sequence[tuple[str, str, list[dict[str, Any]]]],
    owner: str,
    lease_seconds: float,
    claimable: Sequence[bool],
    generic_after: bool = False,
) -> builtins.list[DeliveredRow]:
    """Answer waits for one of their events in one statement (``sql/deliver.sql``);
    ``generic_after``: the rest of the transaction plans its statements once (generic plans).

    Returns:
        One row per instance woken (claimed for ``owner`` or not).
    """
    rows = await conn.fetch(
        _D["deliver_claim"],
        [a[0] for a in answers],
        [a[1] for a in answers],
        [dumps({"result": a[2]}) for a in answers],
        owner,
        lease_seconds,
        list(claimable),
        generic_after,
    )
    return [DeliveredRow.from_row(r) for r in rows]


def _entry(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"op": row["op"], "key": row["step_key"], **loads(row["entry"])}


async def load_run(
    conn: asyncpg.Connection, instance_id: str, run_no: int
) -> tuple[builtins.list[dict[str, Any]], int]:
    """A run's journal (``{"op", "key", ...entry}`` in commit order) and its timeline steps."""
    rows = await conn.fetch(_Q["get_journal"], instance_id, run_no)
    steps = await conn.fetchval(_Q["count_timeline"], instance_id, run_no)
    return [_entry(r) for r in rows], int(steps or 0)


async def load_runs(
    conn: asyncpg.Connection, ids: Sequence[str], runs: Sequence[int]
) -> dict[str, tuple[builtins.list[dict[str, Any]], int]]:
    """:func:`load_run` for many instances' current runs at once."""
    journals: dict[str, builtins.list[dict[str, Any]]] = {i: [] for i in ids}
    for r in await conn.fetch(_Q["get_journals"], list(ids), list(runs)):
        journals[r["instance_id"]].append(_entry(r))
    steps = await count_steps(conn, ids, runs)
    return {i: (journals[i], steps.get(i, 0)) for i in ids}


async def count_steps(
    conn: asyncpg.Connection, ids: Sequence[str], runs: Sequence[int]
) -> dict[str, int]:
    """Timeline steps of many instances' current runs (those with none are left out)."""
    return dict(await conn.fetch(_Q["count_timelines"], list(ids), list(runs)))


async def journal_entry(
    conn: asyncpg.Connection, instance_id: str, run_no: int, op: str, key: str
) -> Any:
    """The first journal entry of one step of a run (``None``: none yet)."""
    found = await conn.fetchval(_Q["journal_entry"], instance_id, run_no, op, key)
    return None if found is None else loads(found)


async def time_out_wait(
    conn: asyncpg.Connection, instance_id: str, wait_key: str, run_no: int
) -> None:
    """Journal a wait's timeout and drop the wait."""
    await conn.execute(_Q["time_out_wait"], instance_id, wait_key, run_no)


async def lock_instance(conn: asyncpg.Connection, instance_id: str) -> None:
    """Lock the instance's row until the transaction ends."""
    await conn.execute(_Q["lock_instance"], instance_id)


async def insert_entry(
    conn: asyncpg.Connection, instance_id: str, run_no: int, op: str, key: str, entry: Any
) -> None:
    """Journal one entry."""
    await conn.execute(_Q["insert_entry"], instance_id, run_no, op, key, dumps(entry))


async def drop_wait(conn: asyncpg.Connection, instance_id: str, wait_key: str) -> None:
    """Drop one open wait (its index entries go with it)."""
    await conn.execute(_W["drop_wait"], instance_id, wait_key)


async def drop_single_waits(
    conn: asyncpg.Connection, waits: Sequence[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Drop the open ``(instance id, wait key)`` waits that end with one event, in one
    statement (those for all of their events stay); the ones dropped."""
    rows = await conn.fetch(_W["drop_single_waits"], [w[0] for w in waits], [w[1] for w in waits])
    return {(str(row["instance_id"]), str(row["wait_key"])) for row in rows}


async def delete_waits(conn: asyncpg.Connection, instance_id: str) -> None:
    """Drop every open wait of an instance."""
    await conn.execute(_Q["delete_waits"], instance_id)


async def drop_waits_under(conn: asyncpg.Connection, instance_id: str, prefix: str | None) -> None:
    """Drop the instance's waits whose key starts with ``prefix`` (all with ``None``)."""
    await conn.execute(_Q["drop_waits_under"], instance_id, prefix)


async def seed_template(conn: asyncpg.Connection, instance_id: str) -> Mapping[str, Any] | None:
    """The instance :func:`seed_copies` would copy (``timed``: a wait has a due time)."""
    row: Mapping[str, Any] | None = await conn.fetchrow(_S["seed_template"], instance_id)
    return row


async def seed_copies(
    conn: asyncpg.Connection,
    template_id: str,
    new_ids: Sequence[str],
    marker: str,
    values: Sequence[str],
    seeds: tuple[str, Sequence[str]],
) -> None:
    """Copy the instance, journal, timeline and event-wait rows of ``template_id`` once per
    new id, with ``marker`` (JSON text) replaced by the copy's ``values[i]`` (JSON text) and
    the template's random seed ``seeds[0]`` (JSON text, ``""``: none) by ``seeds[1][i]``."""
    args = (template_id, list(new_ids), marker, list(values), seeds[0], list(seeds[1]))
    for name in ("seed_instances", "seed_journal", "seed_timeline", "seed_waits"):
        await conn.execute(_S[name], *args)
