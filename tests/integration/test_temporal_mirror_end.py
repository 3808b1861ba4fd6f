"""The mirror's end of a Temporal instance: one statement, and a retried record adds nothing.

``PostgresMirror.finish`` ends the row, writes the run's last timeline entries, drops
the instance's event waits and notifies ``done`` in one statement. A worker lost after
that commit has its last record run again: the instance is found ended, and neither
its timeline nor anything else changes.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from tests.integration.test_temporal_begin import DEFINITION  # one inject state
from tideflow import ids
from tideflow.deploy import deploy_definition
from tideflow.runtime.gateway import NOTIFY_CHANNEL, PostgresRegistry
from tideflow.runtime.hosts.temporal.gateway import PostgresMirror

WORKFLOW = str(DEFINITION["id"])


async def test_an_end_is_written_once_with_its_timeline_waits_and_notification(
    pool: Any,
) -> None:
    await deploy_definition(PostgresRegistry(pool), json.dumps(DEFINITION), "application/json")
    mirror = PostgresMirror(pool)
    instance_id = ids.new_id()
    await mirror.create([(instance_id, WORKFLOW, None, {"n": 1}, None)])
    wait = {"key": "w", "all": False, "events": [], "types": ["go"]}
    await mirror.record(instance_id, run_no=1, workflow_id=WORKFLOW, version="1",
                        status="waiting", state="Done", steps=[], at=datetime.now(UTC),
                        wait=wait)  # fmt: skip
    heard: asyncio.Queue[str] = asyncio.Queue()

    def on_notify(*args: Any) -> None:
        heard.put_nowait(args[3])

    steps = [("state.exited", "s1", "Done", {}), ("completed", "s2", "Done", {"n": 2})]
    async with pool.acquire() as listening:
        await listening.add_listener(NOTIFY_CHANNEL, on_notify)
        try:
            ended = await mirror.finish(instance_id, "completed", output={"ok": True}, data=None,
                                        steps=steps, at=datetime.now(UTC))  # fmt: skip
            async with asyncio.timeout(10):
                notified = await heard.get()
            again = await mirror.finish(instance_id, "completed", output={"ok": False},
                                        data=None, steps=steps, at=datetime.now(UTC))  # fmt: skip
        finally:
            await listening.remove_listener(NOTIFY_CHANNEL, on_notify)
    assert notified == f"done:{instance_id}"
    assert ended is not None
    assert (ended.id, ended.status, ended.output) == (instance_id, "completed", {"ok": True})
    assert again is None  # ended already: unchanged
    row = await pool.fetchrow("SELECT status, output FROM tideflow_instances WHERE id = $1",
                              instance_id)  # fmt: skip
    assert (row["status"], json.loads(row["output"])) == ("completed", {"ok": True})
    timeline = await pool.fetch(
        "SELECT kind, detail FROM tideflow_timeline WHERE instance_id = $1", instance_id
    )
    assert len(timeline) == 1  # the two entries folded in one row, written once
    assert [entry[0] for entry in json.loads(timeline[0]["detail"])] == [
        "state.exited",
        "completed",
    ]
    waits = await pool.fetchval(
        "SELECT count(*) FROM tideflow_event_waits WHERE instance_id = $1", instance_id
    )
    assert waits == 0
