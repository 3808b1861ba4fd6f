"""Copies of a parked instance (``tideflow.runtime.seeding``) on real PostgreSQL.

A copy must be exactly the rows the runtime writes when it parks an instance on the
copy's input, and real events must resume copies through the whole chain (event
store, dispatcher, workflow subscriber, durable runtime), as ``tideflow serve``
composes it.
"""

from __future__ import annotations

import json
import re

import asyncpg
import pytest

from tests.integration.test_correlation import (
    COMPLETED,
    keyed_event,
    keyed_workflow,
    outputs,
    running,
)
from tideflow.errors import InstanceNotFound, InvalidArgument
from tideflow.eventstore.store import DEFAULT_BUS
from tideflow.runtime.seeding import seed_parked

PARKED = "SELECT count(*) FROM tideflow_instances WHERE status = 'waiting' AND lease_owner IS NULL"
_VOLATILE = {"seq", "id", "instance_id", "started_at", "updated_at", "created_at", "at"}
"""Columns that differ between any two instances: ids, sequence numbers, times."""
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00")


async def rows_of(pool: asyncpg.Pool, instance_id: str) -> dict[str, list[str]]:
    """Every row of the instance in every table with an ``instance_id`` column (and its
    ``tideflow_instances`` row), without ids and times; in JSON values its id, its random
    seed and clock readings masked (they differ between any two instances)."""
    seed = await seed_of(pool, instance_id)
    async with pool.acquire() as conn:
        tables = [
            r[0]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.columns"
                " WHERE column_name = 'instance_id' AND table_schema = current_schema()"
                " ORDER BY 1"
            )
        ]
        found: dict[str, list[str]] = {}
        for table, column in [("tideflow_instances", "id"), *((t, "instance_id") for t in tables)]:
            rows = await conn.fetch(
                f"SELECT * FROM {table} WHERE {column} = $1",  # noqa: S608 -- names from the catalog
                instance_id,
            )
            found[table] = sorted(
                _TIME.sub(
                    "<time>",
                    json.dumps(
                        {k: v for k, v in dict(row).items() if k not in _VOLATILE}, default=str
                    )
                    .replace(instance_id, "<id>")
                    .replace(seed, "<seed>"),
                )
                for row in rows
            )
    return found


async def seed_of(pool: asyncpg.Pool, instance_id: str) -> str:
    """The instance's random seed: its first journaled ``new_id``."""
    return str(
        await pool.fetchval(
            "SELECT entry->>'result' FROM tideflow_journal WHERE instance_id = $1"
            " AND op = 'new_id' ORDER BY seq LIMIT 1",
            instance_id,
        )
    )


async def test_a_copy_is_a_real_park_and_real_events_resume_copies(pg_url: str) -> None:
    async with running(pg_url) as system:
        await system.deploy(keyed_workflow())
        template = await system.runtime.start_instance("keyed", {"key": "tpl"})
        real = await system.runtime.start_instance("keyed", {"key": "same"})
        assert await system.until(PARKED, 2) == 2
        copies = await seed_parked(system.pool, template.id, "tpl", ["same", "c1", "c2"], chunk=2)
        assert len(set(copies)) == 3
        copy_rows = await rows_of(system.pool, copies[0])
        assert copy_rows == await rows_of(system.pool, real.id)
        assert copy_rows["tideflow_event_waits"]  # the comparison covered the wait ...
        assert copy_rows["tideflow_correlation_keys"]  # ... and its index entry
        assert copy_rows["tideflow_journal"] or copy_rows["tideflow_timeline"]
        seeds = {await seed_of(system.pool, i) for i in [template.id, *copies]}
        assert len(seeds) == 4  # each copy has a random seed of its own

        await system.store.append(
            DEFAULT_BUS, [keyed_event("c1"), keyed_event("c2"), keyed_event("same")]
        )
        assert await system.until(COMPLETED, 4) == 4
        results = await outputs(system)
        for instance_id, key in [(copies[1], "c1"), (copies[2], "c2"), (copies[0], "same")]:
            assert results[instance_id] == (
                "completed",
                {"key": key, "got": {"key": key, "n": 0}},
            )
        assert results[real.id][0] == "completed"
        assert results[template.id][0] == "waiting"  # "tpl" has had no event


async def test_only_an_instance_parked_on_events_with_the_marker_is_copied(pg_url: str) -> None:
    async with running(pg_url) as system:
        await system.deploy(keyed_workflow())
        template = await system.runtime.start_instance("keyed", {"key": "tpl"})
        assert await system.until(PARKED, 1) == 1
        with pytest.raises(InvalidArgument, match="holds no string 'other'"):
            await seed_parked(system.pool, template.id, "other", ["x"])
        with pytest.raises(InstanceNotFound):
            await seed_parked(system.pool, "no-such-instance", "tpl", ["x"])
        await system.store.append(DEFAULT_BUS, [keyed_event("tpl")])
        assert await system.until(COMPLETED, 1) == 1
        with pytest.raises(InvalidArgument, match="not parked on events alone"):
            await seed_parked(system.pool, template.id, "tpl", ["x"])
        assert await system.count("SELECT count(*) FROM tideflow_instances") == 1
