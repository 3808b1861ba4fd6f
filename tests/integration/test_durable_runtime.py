"""The durable runtime against a real PostgreSQL: runs, replay, waits, control."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from tests.integration.durable_support import (
    Calls,
    approval_workflow,
    call_state,
    deploy,
    runtime,
    workflow,
)
from tideflow.runtime.hosts.durable import DurableRuntime

SEQ3 = workflow(
    "seq3",
    [call_state("A", "inc", "B"), call_state("B", "inc", "C"), call_state("C", "inc", None)],
)


async def test_runs_to_completion_with_journal_and_timeline(pool: asyncpg.Pool) -> None:
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
    assert kinds[:4] == ["state.entered", "action.started", "action.completed", "state.left"]
    assert kinds.count("state.entered") == 3
    assert [e["op"] for e in journal][:2] == ["new_id", "now"]  # in the order made
    completed = [t for t in timeline if t.kind == "action.completed"]
    assert all("durationMs" in t.detail for t in completed)
    assert sorted(calls.by_key.values()) == [1, 1, 1]
    assert all(k.startswith(row.id + "/") for k in calls.by_key)


async def _until(
    predicate: Callable[[], Awaitable[bool]], what: str, seconds: float = 10.0
) -> None:
    """Poll ``predicate`` (another process's progress, not a clock) until true."""
    async with asyncio.timeout(seconds):
        while not await predicate():  # noqa: ASYNC110 -- progress lives in the database
            await asyncio.sleep(0.02)


SLOW = workflow(
    "slow3",
    [call_state("A", "inc", "B"), call_state("B", "slow", "C"), call_state("C", "inc", None)],
)


async def test_replay_after_crash_does_not_call_completed_functions_again(
    pool: asyncpg.Pool,
) -> None:
    calls = Calls()
    calls.gate = asyncio.Event()
    await deploy(pool, SLOW)
    first = await _started_runtime(pool, calls, lease_seconds=0.5)
    row = await first.start_instance("slow3", {"n": 1})
    await _until(lambda: _called(calls, "B/"), "B called")
    await first.kill()  # a crash: B's call is in flight, nothing handed back
    calls.gate.set()
    async with runtime(pool, calls, lease_seconds=5) as second:
        done = await second.wait_for_completion(row.id, 10)
    assert done.status == "completed"
    assert done.output == {"n": 4}
    counts = {key.split("/")[1]: n for key, n in calls.by_key.items()}
    assert counts == {"A": 1, "B": 2, "C": 1}  # only B, in flight at the crash, twice


async def _started_runtime(pool: asyncpg.Pool, calls: Calls, **options: Any) -> DurableRuntime:
    from tideflow.runtime.hosts.durable import DurableRuntime, RuntimeOptions

    rt = DurableRuntime(pool, RuntimeOptions(functions=calls.functions(), **options))
    await rt.start()
    return rt


async def _called(calls: Calls, part: str) -> bool:
    return any(part in key for key in calls.by_key)


SLEEPY = workflow(
    "sleepy",
    [
        call_state("A", "inc", "Nap"),
        {"name": "Nap", "type": "sleep", "duration": "PT1S", "transition": "C"},
        call_state("C", "inc", None),
    ],
)


async def test_long_sleep_parks_the_instance_and_the_timer_wakes_it(pool: asyncpg.Pool) -> None:
    calls = Calls()
    await deploy(pool, SLEEPY)
    async with runtime(pool, calls, memory_sleep=0.0) as rt:
        row = await rt.start_instance("sleepy", {"n": 0})
        await _until(lambda: _parked(rt, row.id), "parked")  # nothing of it in memory
        done = await rt.wait_for_completion(row.id, 10)
        timeline = [t.kind for t in await rt.instances.timeline(row.id)]
    assert done.status == "completed"
    assert done.output == {"n": 2}
    assert "timer.started" in timeline
    assert timeline.count("state.entered") == 3  # the replay wrote no step twice
    assert sorted(calls.by_key.values()) == [1, 1]


async def _parked(rt: DurableRuntime, instance_id: str) -> bool:
    return rt.running == 0 and await _status(rt, instance_id, "waiting")


async def _status(rt: DurableRuntime, instance_id: str, status: str) -> bool:
    return (await rt.instances.get(instance_id)).status == status


APPROVAL = approval_workflow("approval")


async def test_waiting_instance_holds_no_memory_and_resumes_on_delivered_events(
    pool: asyncpg.Pool,
) -> None:
    calls = Calls()
    await deploy(pool, APPROVAL)
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("approval", {"n": 0})
        await _until(lambda: _parked(rt, row.id), "parked")
        waits = await rt.instances.waits(row.id)
        assert [w["event_types"] for w in waits] == [["approved"]]
        event = {
            "specversion": "1.0",
            "id": "e1",
            "source": "test",
            "type": "approved",
            "data": {"yes": True},
        }
        assert await rt.deliver_events(row.id, waits[0]["wait_key"], [event])
        assert not await rt.deliver_events(row.id, waits[0]["wait_key"], [event])
        done = await rt.wait_for_completion(row.id, 10)
    assert done.status == "completed"
    assert done.output["n"] == 2
    assert done.output["ok"] == {"yes": True}
    assert sorted(calls.by_key.values()) == [1, 1]


BOTH = workflow(
    "both",
    [
        {
            "name": "Both",
            "type": "event",
            "exclusive": False,
            "onEvents": [
                {"eventRefs": ["a", "b"], "eventDataFilter": {"toStateData": "${ .got }"}}
            ],
            "end": True,
        },
    ],
    events=[
        {"name": "a", "type": "a", "source": "test"},
        {"name": "b", "type": "b", "source": "test"},
    ],
)


async def test_a_wait_for_all_events_takes_them_one_at_a_time(pool: asyncpg.Pool) -> None:
    calls = Calls()
    await deploy(pool, BOTH)
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("both", {})
        await _until(lambda: _parked(rt, row.id), "parked")
        waits = await rt.instances.waits(row.id)
        assert [sorted(w["event_types"]) for w in waits] == [["a", "b"]]
        key = waits[0]["wait_key"]
        b = {"specversion": "1.0", "id": "2", "source": "test", "type": "b", "data": {"b": 2}}
        a = {"specversion": "1.0", "id": "1", "source": "test", "type": "a", "data": {"a": 1}}
        other = {**a, "source": "elsewhere"}
        assert await rt.deliver_events(row.id, key, [b])  # kept: "a" still missing
        assert await rt.deliver_events(row.id, key, [other])  # kept, but fits no listed event
        assert await _status(rt, row.id, "waiting")
        assert await rt.deliver_events(row.id, key, [a])
        done = await rt.wait_for_completion(row.id, 10)
        journal = await rt.instances.journal(row.id, 1)
    assert done.status == "completed"
    assert [e["result"] for e in journal if e["op"] == "wait"] == [[a, b]]  # listed order
