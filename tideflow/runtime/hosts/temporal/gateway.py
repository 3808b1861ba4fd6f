"""The Temporal engine's mirror of its instances in Tideflow's instance tables.

Under ``--engine temporal`` an instance runs as a Temporal workflow, and
Tideflow keeps a *mirror* of it in the same ``tideflow_instances`` and
``tideflow_timeline`` tables the PostgreSQL engine writes: created when the
instance starts, moved on (status, state, timeline rows) when the workflow
records progress, ended with its output or error. So ``GET /instances``
with its filters and cursors, ``GET /instances/{id}`` and the timeline read
one table whichever engine ran the instance (``docs/temporal.md`` says why a
mirror rather than the Temporal history).

A mirrored row names the lease owner :data:`OWNER` with a lease that never
runs out while it runs, so a PostgreSQL-engine process sharing the database
never claims it. Only this class runs the queries of ``sql/queries.sql``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from tideflow.db import acquired, load_queries
from tideflow.runtime._timeline import Row, fold
from tideflow.runtime.gateway import (
    NOTIFY_CHANNEL,
    drop_wait,
    insert_instances,
    insert_timeline,
    insert_wait,
)
from tideflow.runtime.rows import InstanceRow, dumps

__all__ = ["OWNER", "PostgresMirror"]

_Q = load_queries("tideflow.runtime.hosts.temporal")

OWNER = "temporal"
"""The lease owner of every instance running on Temporal."""
_LEASE_SECONDS = 100 * 365 * 86400.0


class PostgresMirror:
    """Creates, moves on and ends the mirrored rows of Temporal instances."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        """Args:
        pool: The database pool.
        """
        self._pool = pool

    async def create(
        self,
        news: Sequence[tuple[str, str, str | None, Any, str | None]],
    ) -> list[InstanceRow]:
        """Insert ``(id, workflow, version or None for the latest, input, parent id)`` rows.

        Returns:
            The rows inserted, in order: none for an existing id, or for a workflow or
            version that is not deployed (or is deleted).
        """
        rows = [(*new, None) for new in news]
        async with acquired(self._pool, "instances") as conn:  # one statement: all or none
            inserted = await insert_instances(conn, rows, OWNER, _LEASE_SECONDS)
        return inserted

    async def record(
        self,
        instance_id: str,
        *,
        run_no: int,
        workflow_id: str,
        version: str,
        status: str,
        state: str | None,
        steps: Sequence[tuple[str, str, str | None, dict[str, Any]]],
        at: datetime,
        wait: dict[str, Any] | None = None,
        waited: str | None = None,
    ) -> None:
        """Move an instance on: its timeline ``(kind, key, state, detail)`` and its status.

        ``wait`` opens an event wait (a row of ``tideflow_event_waits``, indexed for the
        trigger side, see :mod:`tideflow.runtime.waits`); ``waited`` closes one (its key).
        """
        rows: list[Row] = [
            (instance_id, run_no, kind, key, state_name, dumps(detail), at)
            for kind, key, state_name, detail in steps
        ]
        async with acquired(self._pool, "instances") as conn, conn.transaction():
            if rows:
                await insert_timeline(conn, fold(rows))
            moved = await conn.fetchval(
                _Q["mirror_progress"], instance_id, status, state, run_no, workflow_id, version
            )
            if waited is not None:
                await drop_wait(conn, instance_id, waited)
            if wait is not None and moved is not None:  # never for an ended instance
                row = {**wait, "run_no": run_no, "due_at": None}  # Temporal times it out
                await insert_wait(conn, instance_id, row)

    async def finish(
        self,
        instance_id: str,
        status: str,
        *,
        output: Any = None,
        error: Any = None,
        data: Any,
        steps: Sequence[tuple[str, str, str | None, dict[str, Any]]] = (),
        run_no: int = 1,
        at: datetime | None = None,
    ) -> InstanceRow | None:
        """End an instance (``None`` when it had ended already) and announce it (``done``).

        ``steps`` are the run's last timeline entries (``(kind, key, state, detail)`` of run
        ``run_no``, stamped ``at``), written by the same statement when it ends the instance
        (a record retried after its commit adds no second copy); the instance's event waits
        go, and ``done`` is notified, in the same commit.
        """
        row: Row | None = None
        if steps:
            if at is None:
                raise TypeError("timeline entries need their time (at)")
            rows: list[Row] = [
                (instance_id, run_no, kind, key, state_name, dumps(detail), at)
                for kind, key, state_name, detail in steps
            ]
            (row,) = fold(rows)  # one instance and run: one row
        timeline = (None,) * 5 if row is None else row[2:]
        async with acquired(self._pool, "instances") as conn:  # one statement: no transaction
            ended = await conn.fetchrow(
                _Q["mirror_finish"],
                instance_id,
                status,
                dumps(output),
                None if error is None else dumps(error),
                None if data is None else dumps(data),
                NOTIFY_CHANNEL,
                *timeline,
                run_no,
            )
        return None if ended is None else InstanceRow.from_row(ended)
