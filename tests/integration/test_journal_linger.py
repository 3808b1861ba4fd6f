"""Timeline rows and progress nobody waits for go with the next commit somebody waits for.

On the event path a resumed run writes its steps' rows, then ends: one commit, not a
commit of the rows followed by a second for the end (an fsync each). Rows with nothing
after them are committed alone once the writer has lingered for a write to go with.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from tests.integration.durable_support import Calls, deploy, runtime, workflow
from tideflow.runtime.journal import JournalWriter

WAIT_THEN_END = workflow(
    "wait_then_end",
    [
        {"name": "Begin", "type": "inject", "data": {}, "transition": "Wait"},
        {
            "name": "Wait",
            "type": "event",
            "onEvents": [{"eventRefs": ["go"], "eventDataFilter": {"toStateData": "${ .got }"}}],
            "end": True,
        },
    ],
    events=[{"name": "go", "type": "go", "source": "test"}],
)


async def _until(predicate: Any) -> None:
    async with asyncio.timeout(10):
        while not await predicate():  # noqa: ASYNC110 -- progress lives in the database
            await asyncio.sleep(0.02)


async def test_a_resumed_run_that_ends_is_one_commit(pool: asyncpg.Pool) -> None:
    await deploy(pool, WAIT_THEN_END)
    async with runtime(pool, Calls()) as rt:
        row = await rt.start_instance("wait_then_end", {})

        async def parked() -> bool:
            return rt.running == 0 and (await rt.instances.get(row.id)).status == "waiting"

        await _until(parked)
        rt.writer.linger = 3600.0  # the rows cannot go alone: only with the end (no race)
        [wait] = await rt.instances.waits(row.id)
        before = rt.writer.commits, rt.writer.staged_commits
        event = {"specversion": "1.0", "id": "e1", "source": "test", "type": "go", "data": {}}
        assert await rt.deliver_many([(row.id, wait["wait_key"], [event])]) == [True]
        done = await rt.wait_for_completion(row.id, 10)
        commits = rt.writer.commits - before[0], rt.writer.staged_commits - before[1]
    assert done.status == "completed"
    # the resumed steps' rows went with the end, in the delivery's commit
    # (test_deliver_and_end.py): no group commit of their own
    assert commits == (0, 1)
    rows = await pool.fetch("SELECT detail FROM tideflow_timeline WHERE instance_id = $1", row.id)
    assert '"state.left", "Wait"' in " ".join(r["detail"] for r in rows)  # the resumed rows


async def test_rows_nobody_waits_for_are_committed_alone_when_nothing_follows(
    pool: asyncpg.Pool,
) -> None:
    await deploy(pool, WAIT_THEN_END)
    async with runtime(pool, Calls()) as rt:
        row = await rt.start_instance("wait_then_end", {})
    writer = JournalWriter(pool, owner="me", lease_seconds=30)
    await pool.execute(
        "UPDATE tideflow_instances SET lease_owner = 'me', status = 'running' WHERE id = $1",
        row.id,
    )
    writer.linger = 0.001
    task = asyncio.create_task(writer.run())
    try:
        writer.note(row.id, 1, "custom.kind", "k", None, {"n": 1})

        async def written() -> bool:
            return bool(
                await pool.fetchval(
                    "SELECT count(*) FROM tideflow_timeline"
                    " WHERE instance_id = $1 AND kind = 'custom.kind'",
                    row.id,
                )
            )

        await _until(written)
        assert writer.commits == 1
    finally:
        writer.close()
        await task
