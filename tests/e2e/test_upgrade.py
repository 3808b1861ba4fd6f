"""Upgrading: this code's ``tideflow serve`` on a database the previous release made while
its instances waited, and they complete.

The database is ``tests/golden/upgrade/previous_release.sql``: made by the previous
release's own ``tideflow serve`` (its code, its migrations 0001-0014), killed with
SIGKILL while one instance slept in memory (leased to the dead process), one slept
parked on a wake-up timer, a 0.8 event state and a DSL 1.0 ``listen`` waited for
their events (``tests/support/upgrade_fixture.py`` says how it was made, and makes
it again for the next release). Restored into an empty database, it is what an
operator's database holds when they stop the old release and start the new one:
the new server applies the migrations after 0014 at start, then every instance
goes on from the journal the old code wrote.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import with_database
from tests.support.served import serve_process
from tideflow.db import list_migrations

FIXTURE = Path(__file__).resolve().parents[1] / "golden" / "upgrade" / "previous_release.sql"
PREVIOUS_LEVEL = 14


def _instances() -> dict[str, str]:
    """workflow id -> instance id, from the fixture's header."""
    header = FIXTURE.read_text("utf-8").split("\n\n", 1)[0]
    return dict(re.findall(r"^--   (\S+): (\S+)$", header, flags=re.MULTILINE))


@pytest.fixture
async def previous_db(pg_server_url: str, pg_url: str) -> AsyncIterator[str]:
    """A database holding exactly what the previous release left (no migration of ours)."""
    name = pg_url.rsplit("/", 1)[1].split("?")[0] + "_previous"
    admin = await asyncpg.connect(pg_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        url = with_database(pg_server_url, name)
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(FIXTURE.read_text("utf-8"))
        finally:
            await conn.close()
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _fetch(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


async def test_the_current_server_finishes_what_the_previous_release_left_waiting(
    previous_db: str, tmp_path: Path
) -> None:
    made = _instances()
    assert len(made) == 4
    before = await _fetch(previous_db, "SELECT max(version) AS v FROM tideflow_migrations")
    assert before[0]["v"] == PREVIOUS_LEVEL
    statuses = await _fetch(previous_db, "SELECT id, status FROM tideflow_instances")
    assert sorted(r["status"] for r in statuses) == ["running", "waiting", "waiting", "waiting"]

    with serve_process(previous_db, tmp_path, "--insecure-local") as server:
        after = await _fetch(previous_db, "SELECT version FROM tideflow_migrations")
        assert sorted(r["version"] for r in after) == [m.version for m in list_migrations()]
        async with server.async_client(timeout=90) as client:
            for event in (
                {"type": "com.example.upgrade.go", "data": {"by": "upgrade"}},
                {"type": "com.example.upgrade.dsl1", "data": {"word": "hello"}},
            ):
                reply = await client.post(
                    "/events",
                    json={"specversion": "1.0", "id": event["type"], "source": "/upgrade", **event},
                    headers={"content-type": "application/cloudevents+json"},
                )
                assert reply.status_code == 202, reply.text
            outputs = {}
            for workflow_id, instance_id in made.items():
                reply = await client.get(f"/instances/{instance_id}", params={"wait": 60})
                body = reply.json()
                assert body["status"] == "completed", (workflow_id, body, server.output()[-3000:])
                outputs[workflow_id] = body["output"]
    assert outputs == {
        "upgrade.short-sleep": {"n": 1, "woke": "short"},
        "upgrade.long-sleep": {"n": 1, "woke": "long"},
        "upgrade.event-wait": {"n": 1, "go": {"by": "upgrade"}},
        "upgrade.listen": {"heard": "hello"},
    }
