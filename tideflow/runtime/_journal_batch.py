"""The one-statement form of a journal commit (see :mod:`tideflow.runtime.journal`).

Most batches hold only new instances, effect results, timeline rows,
progress, parks on events alone and plain finishes. Those are written by one SQL statement
(``commit_batch``: data-modifying CTEs, autocommitted) -- one round trip and
one commit instead of a transaction of eight or nine statements. Batches
with anything else (cancel/suspend/shutdown releases, ``continueAs``, a
sub-flow ending, which must answer its parent in the same transaction) take
the transaction path; so do parks with a due time, whose wake-up timers
(:mod:`tideflow.runtime.wakeups`) are added there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import asyncpg

from tideflow.runtime import _timeline, gateway
from tideflow.runtime.gateway import Commit, InstanceRow, dumps

if TYPE_CHECKING:
    from tideflow.runtime.journal import Finish, _Batch

MAX_FINISHES = 150  # the done:<ids> notification must stay under 8,000 bytes


def fits(batch: _Batch) -> bool:
    """Whether ``batch`` can be written by the one-statement form."""
    from tideflow.runtime.journal import Finish, Park

    finishes = 0
    for _, change in batch.transitions:
        if isinstance(change, Finish):
            if change.has_parent:
                return False
            finishes += 1
        elif not isinstance(change, Park) or change.wake_at is not None:
            return False  # a timed park adds its wake-up timer in the transaction path
    return finishes <= MAX_FINISHES


async def commit(
    conn: asyncpg.Connection, owner: str, lease: float, batch: _Batch
) -> tuple[dict[str, str | None], dict[str, InstanceRow | None], dict[str, InstanceRow]]:
    """Write ``batch``; return the held instances (with requests), finished rows, created rows."""
    from tideflow.runtime.journal import Finish

    changes = dict(batch.transitions)
    ids = sorted(
        {e[0] for e in batch.entries}
        | {t[0] for t in batch.timeline}
        | set(batch.progress)
        | set(changes)
        | {i for i, _ in batch.waiters}
    )
    created_ids = {n.id for n, _ in batch.creates}
    ids = [i for i in ids if i not in created_ids]
    updates = [_update(batch.progress.get(i), changes.get(i), Finish) for i in ids]
    news = [n for n, _ in batch.creates]
    waits = batch.waits
    rows = await gateway.commit_batch(
        conn,
        [
            owner,
            lease,
            [n.id for n in news],
            [n.workflow_id for n in news],
            [n.version for n in news],
            [dumps(n.input) for n in news],
            [n.parent_id for n in news],
            [n.parent_key for n in news],
            ids,
            *_columns(updates, 8),
            *_columns(batch.entries, 5),
            *_columns(_timeline.fold(batch.timeline), 7),
            [i for i, _ in waits],
            [w["key"] for _, w in waits],
            [w["run_no"] for _, w in waits],
            [w["all"] for _, w in waits],
            [dumps(w["events"]) for _, w in waits],
            [dumps(w["types"]) for _, w in waits],
            [w["due_at"] for _, w in waits],
            [None if n.headers is None else dumps(dict(n.headers)) for n in news],
        ],
    )
    held: dict[str, str | None] = {}
    finished: dict[str, InstanceRow | None] = {}
    created: dict[str, InstanceRow] = {}
    for row in rows:
        held[row.id] = row.requested
        if row.instance is None:
            continue
        if row.action == Commit.CREATED:
            created[row.id] = row.instance
        elif row.action == Commit.FINISHED:
            finished[row.id] = row.instance
    return held, finished, created


def _update(progress: Any, change: Any, finish_type: type[Finish]) -> tuple[Any, ...]:
    state, data, touched = progress or (None, None, False)
    if change is None:
        return (state, data, touched, Commit.RENEWED, None, None, None, None)
    if isinstance(change, finish_type):
        error = None if change.error is None else dumps(change.error)
        final_data = data if change.data is None else dumps(change.data)
        return (
            state,
            final_data,
            touched,
            Commit.FINISHED,
            change.status,
            dumps(change.output),
            error,
            None,
        )
    return (state, data, touched, Commit.PARKED, None, None, None, change.wake_at)


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [[row[i] for row in rows] for i in range(width)]
