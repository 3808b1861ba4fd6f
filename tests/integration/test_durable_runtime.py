"""The durable runtime against a real PostgreSQL: runs, replay, waits, control."""

from __future__ import annotations

import asyncio

from tests.integration.durable_support import Calls, call_state, deploy, runtime, workflow

SEQ3 = workflow(
    "seq3",
    [call_state("A", "inc", "B"), call_state("B", "inc", "C"), call_state("C", "inc", None)],
)


async def test_runs_to_completion_with_journal_and_timeline(pool) -> None:
    calls = Calls()
    await deploy(pool, SEQ3)
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("seq3", {"n": 1})
        done = await rt.wait_for_completion(row.id, 10)
        journal = await rt.instances.journal(row.id, 1)
        timeline = await rt.instances.timeline(row.id)
    assert done.status == "completed"
    assert done.output == {"n": 4}
    assert [e["op"] for e in journal if e["op"] == "call"] == ["call"] * 3
    assert {e["op"] for e in journal} >= {"now", "new_id"}
    kinds = [t.kind for t in timeline]
    assert kinds.count("state.entered") == 3
    completed = [t for t in timeline if t.kind == "action.completed"]
    assert all("durationMs" in t.detail for t in completed)
    assert sorted(calls.by_key.values()) == [1, 1, 1]
    assert all(k.startswith(row.id + "/") for k in calls.by_key)
