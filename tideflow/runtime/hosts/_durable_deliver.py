"""Batched event delivery: many waits answered in one statement, the woken instances run here.

:meth:`DurableRuntime.deliver_events` answers one wait per transaction and
leaves the instance to the worker: a NOTIFY, a claim query, a journal load,
then the replay. For the waits a batch of events answers,
:func:`deliver_batch` does it in one statement (``deliver_claim`` in
``sql/deliver.sql``): it drops the waits, journals their results, cancels
their wake-up timers and claims the parked instances for this process, and
returns their journals (with the results just added): runners start at once. An
instance that is held (running here or elsewhere) is marked woken as before;
a NOTIFY tells the workers only then. Waits on *all* of their events, and a
second wait of an instance already in the batch, go through
:meth:`DurableRuntime.deliver_events` one by one.

The guarantees are those of ``deliver_events``: the result is committed
before anyone sees it, a wait is answered at most once (the row is deleted
under its lock), and a claimed instance's lease is a lease like any other
(if no runner starts, it runs out and any process claims the instance).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import asyncpg

from tideflow.db import load_queries
from tideflow.errors import StoreError
from tideflow.runtime.gateway import InstanceRow, Q, dumps, loads

if TYPE_CHECKING:
    from tideflow.runtime.hosts.durable import DurableRuntime

__all__ = ["Answer", "deliver_batch"]

log = logging.getLogger("tideflow.runtime")

DQ = load_queries("tideflow.runtime", "deliver.sql")

Answer = tuple[str, str, list[dict[str, Any]]]
"""``(instance id, wait key, events)``: the events answering one wait."""


def _split(answers: Sequence[Answer]) -> tuple[list[int], list[int]]:
    """Indexes for the batch (one per instance) and those left for one-by-one delivery."""
    batch: list[int] = []
    rest: list[int] = []
    seen: set[str] = set()
    for i, (instance_id, _, _) in enumerate(answers):
        if instance_id in seen:
            rest.append(i)
        else:
            seen.add(instance_id)
            batch.append(i)
    return batch, rest


async def deliver_batch(
    runtime: DurableRuntime, answers: Sequence[Answer], conn: asyncpg.Connection | None = None
) -> list[bool]:
    """Answer many event waits at once (see the module docs).

    Args:
        runtime: The runtime that resumes the instances.
        answers: The waits and their events.
        conn: A connection the caller holds (one from the pool by default).

    Returns:
        For each answer, whether its wait was open and took the events.

    Raises:
        StoreError: The database failed (nothing of the batch was delivered;
            the one-by-one part may have been).
    """
    batch, rest = _split(answers)
    rows = await _deliver_rows(runtime, [answers[i] for i in batch], conn) if batch else {}
    taken = [False] * len(answers)
    for i in batch:
        if answers[i][0] in rows:
            taken[i] = True
        else:  # an all-events wait, a second wait, or gone: the one-by-one path decides
            rest.append(i)
    for i in sorted(rest):
        instance_id, wait_key, events = answers[i]
        taken[i] = await runtime.deliver_events(instance_id, wait_key, events)
    return taken


async def _deliver_rows(
    runtime: DurableRuntime, answers: Sequence[Answer], held: asyncpg.Connection | None
) -> dict[str, asyncpg.Record]:
    """Run ``deliver_claim``; start runners for the claimed; hand the rest to parked runners."""
    room = runtime.options.max_running - runtime.running
    claimable = []
    for instance_id, _, _ in answers:
        ok = room > 0 and not runtime.holds(instance_id)
        claimable.append(ok)
        room -= ok
    try:
        lease = contextlib.nullcontext(held) if held is not None else runtime.pool.acquire()
        async with lease as conn:
            rows = await conn.fetch(  # one statement: atomic without a transaction block
                DQ["deliver_claim"],
                [a[0] for a in answers],
                [a[1] for a in answers],
                [dumps({"result": a[2]}) for a in answers],
                runtime.options.owner,
                runtime.options.lease_seconds,
                claimable,
            )
            claimed = [r for r in rows if r["claimed"]]
            steps = await _steps(conn, claimed)
    except asyncpg.PostgresError as exc:
        raise StoreError(f"delivering events to {len(answers)} waits failed: {exc}") from exc
    events = {a[0]: a[2] for a in answers}
    for row in rows:
        if not row["claimed"]:
            runtime.hand_over(row["id"], row["answered_key"], events[row["id"]])
        elif steps is not None:
            runtime.resume_claimed(
                InstanceRow.from_row(row), (loads(row["journal"]), steps.get(row["id"], 0))
            )
    return {row["id"]: row for row in rows}


async def _steps(
    conn: asyncpg.Connection, claimed: Sequence[asyncpg.Record]
) -> dict[str, int] | None:
    """Timeline step counts of the claimed runs (``None``: unreadable, their leases run out).

    The results are committed already: a failure here must not have the batch
    delivered again, so the claimed instances are left to another claim.
    """
    if not claimed:
        return {}
    try:
        ids = [r["id"] for r in claimed]
        runs = [r["run_no"] for r in claimed]
        return dict(await conn.fetch(Q["count_timelines"], ids, runs))
    except (asyncpg.PostgresError, OSError) as exc:
        log.warning(
            "%d instances woken by events wait for their lease to run out: %s", len(ids), exc
        )
        return None
