"""Many parked instances at once, copied from one the runtime parked (benchmarks, by hand).

``bench/scale.py`` measures an event's way to one waiting instance among up to a
million others, each waiting on its own correlation key. Parking them one by one
through the runtime (create, run to the event state, record the wait, park) costs
about a millisecond of this process's CPU each: a million takes hours on a shared
machine. :func:`seed_parked` instead copies, in SQL, the rows of one instance the
runtime parked for real -- its instance row, journal, timeline and event waits --
once per new input, and lets the database's own triggers derive the rest (the
correlation origin, the correlation keys of each wait), as they do for any insert.

A copy is the rows the runtime would have written for its input when the input
reaches the rows only as a JSON string value: the template's input holds
``marker``, each copy gets its own value where the template's rows had the
marker, its own id where they had the template's, and its own random seed
(the run's first ``new_id``) where they had the template's. Its clock
readings (the journaled ``now`` of its start, the times in its timeline) are
the template's: a copy looks as if it had started with the template. The test
(``tests/integration/test_seeded_instances.py``) compares a copy with an
instance parked for real on the same input, table by table, and resumes copies
with real events. Only instances parked on events alone can be copied: a
parked instance with a due time also has a wake-up timer, which is not copied.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import orjson

from tideflow import ids
from tideflow.db import acquired
from tideflow.errors import InstanceNotFound, InvalidArgument
from tideflow.runtime import gateway
from tideflow.runtime.status import InstanceStatus

__all__ = ["seed_parked"]

CHUNK = 10_000
"""Copies per transaction."""


async def seed_parked(
    pool: asyncpg.Pool,
    template_id: str,
    marker: str,
    values: Sequence[str],
    *,
    chunk: int = CHUNK,
) -> list[str]:
    """Copy the parked instance ``template_id`` once per value; returns the copies' ids.

    Args:
        pool: The runtime's database pool.
        template_id: An instance the runtime parked on events alone.
        marker: A string value in the template's input (e.g. its correlation key);
            every JSON string equal to it in the template's rows is replaced.
        values: One per copy: the string that replaces ``marker`` in its rows.
        chunk: Copies per transaction (each transaction commits whole copies).

    Raises:
        InstanceNotFound: No instance ``template_id``.
        InvalidArgument: The template is not parked on events alone, or its input
            holds no string ``marker``.
    """
    marker_json = orjson.dumps(marker).decode()
    async with acquired(pool, "seeding") as conn:
        template = await gateway.seed_template(conn, template_id)
    if template is None:
        raise InstanceNotFound(f"no instance {template_id!r} to copy")
    parked = (
        template["status"] == InstanceStatus.WAITING
        and template["lease_owner"] is None
        and template["wake_at"] is None
        and template["requested"] is None
        and not template["woken"]
        and not template["timed"]
    )
    if not parked:
        raise InvalidArgument(
            f"instance {template_id!r} is not parked on events alone (status "
            f"{template['status']!r}): only such an instance can be copied"
        )
    if marker_json not in (template["input"] or ""):
        raise InvalidArgument(f"the input of instance {template_id!r} holds no string {marker!r}")
    copies = [ids.new_sortable_id() for _ in values]
    texts = [orjson.dumps(value).decode() for value in values]
    seeds = [orjson.dumps(ids.new_id()).decode() for _ in values]  # as Effects.new_id() makes
    for first in range(0, len(copies), max(1, chunk)):
        last = first + max(1, chunk)
        async with acquired(pool, "seeding") as conn, conn.transaction():
            await gateway.seed_copies(
                conn,
                template_id,
                copies[first:last],
                marker_json,
                texts[first:last],
                (template["seed"] or "", seeds[first:last]),
            )
    return copies
