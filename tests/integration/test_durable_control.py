"""Durable runtime: continueAs, cancel/suspend/resume, and two runtimes sharing one database."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from tests.integration.durable_support import Calls, call_state, deploy, runtime, workflow
from tideflow.runtime.hosts.durable import DurableRuntime
from tideflow.runtime.wakeups import WAKE_KIND
from tideflow.timer.records import TimerState

LOOP = workflow(
    "loop",
    [
        call_state("Inc", "inc", "Check"),
        {
            "name": "Check",
            "type": "switch",
            "dataConditions": [
                {"condition": "${ .n >= 3 }", "end": True},
            ],
            "defaultCondition": {"end": {"continueAs": {"workflowId": "loop", "data": "${ . }"}}},
        },
    ],
)


async def _until(predicate: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    """Poll another task's progress (not a clock) until ``predicate`` holds."""
    async with asyncio.timeout(seconds):
        while not await predicate():  # noqa: ASYNC110 -- progress lives in the database
            await asyncio.sleep(0.02)


async def test_continue_as_starts_fresh_journals(pool: asyncpg.Pool) -> None:
    calls = Calls()
    await deploy(pool, LOOP)
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("loop", {"n": 0})
        done = await rt.wait_for_completion(row.id, 10)
        first = await rt.instances.journal(row.id, 1)
        last = await rt.instances.journal(row.id, 3)
    assert done.status == "completed"
    assert done.output == {"n": 3}
    assert done.run_no == 3
    assert first == []  # earlier runs' journals are dropped
    assert [e["op"] for e in last if e["op"] == "call"] == ["call"]
    assert len(calls.by_key) == 3


SLOW = workflow(
    "slow2",
    [call_state("B", "slow", "C"), call_state("C", "inc", None)],
)

WAITER = workflow(
    "waiter",
    [
        {"name": "Wait", "type": "event", "onEvents": [{"eventRefs": ["go"]}], "transition": "C"},
        call_state("C", "inc", None),
    ],
    events=[{"name": "go", "type": "go", "source": "test"}],
)


async def test_cancel_of_a_running_instance_applies_at_the_next_step(pool: asyncpg.Pool) -> None:
    calls = Calls()
    calls.gate = asyncio.Event()
    await deploy(pool, SLOW)
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("slow2", {"n": 0})
        await _until(lambda: _called(calls))
        asked = await rt.cancel(row.id)
        assert asked.requested == "cancel"
        calls.gate.set()
        done = await rt.wait_for_completion(row.id, 10)
        timeline = [t.kind for t in await rt.instances.timeline(row.id)]
    assert done.status == "cancelled"
    assert done.ended_at is not None
    assert len(calls.by_key) == 1  # C never ran
    assert "instance.cancelled" in timeline


async def _called(calls: Calls) -> bool:
    return bool(calls.by_key)


async def test_suspend_resume_and_cancel_a_waiting_instance(pool: asyncpg.Pool) -> None:
    calls = Calls()
    await deploy(pool, WAITER)
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("waiter", {"n": 5})
        await _until(lambda: _status(rt, row.id, "waiting"))
        suspended = await rt.suspend(row.id)
        assert suspended.status == "suspended"
        resumed = await rt.resume(row.id)
        assert resumed.status == "running"
        await _until(lambda: _status(rt, row.id, "waiting"))  # replayed, waits again
        assert len(await rt.instances.waits(row.id)) == 1
        cancelled = await rt.cancel(row.id)
        assert cancelled.status == "cancelled"
        assert await rt.instances.waits(row.id) == []
        final = await rt.wait_for_completion(row.id, 1)
    assert final.status == "cancelled"
    assert calls.by_key == Counter()


async def _status(rt: DurableRuntime, instance_id: str, status: str) -> bool:
    return (await rt.instances.get(instance_id)).status == status


SEQ3 = workflow(
    "seq3",
    [call_state("A", "inc", "B"), call_state("B", "inc", "C"), call_state("C", "inc", None)],
)


async def test_two_runtimes_share_a_thousand_instances_and_run_none_twice(
    pool: asyncpg.Pool,
) -> None:
    calls = Calls()
    await deploy(pool, SEQ3)
    from tideflow.runtime.gateway import PostgresInstances

    instances = PostgresInstances(pool)
    ids = [(await instances.create("seq3", "1", {"n": i})).id for i in range(1000)]
    async with runtime(pool, calls) as one, runtime(pool, calls) as two:
        await _until(lambda: _all_done(pool), seconds=60)
        claimed = (one.worker.claimed, two.worker.claimed)
    async with pool.acquire() as conn:
        dupes = await conn.fetchval(
            "SELECT count(*) FROM (SELECT instance_id, step_key FROM tideflow_journal"
            " WHERE op = 'call' GROUP BY 1, 2 HAVING count(*) > 1) d"
        )
        calls_in_journal = await conn.fetchval(
            "SELECT count(*) FROM tideflow_journal WHERE op = 'call'"
        )
        outputs = dict(await conn.fetch("SELECT id, output FROM tideflow_instances"))
    assert dupes == 0
    assert calls_in_journal == 3000
    assert set(calls.by_key.values()) == {1}
    assert len(calls.by_key) == 3000
    assert all(c > 0 for c in claimed), claimed  # both did a share
    assert sum(claimed) == 1000
    assert {outputs[i] for i in ids[:3]} == {'{"n": 3}', '{"n": 4}', '{"n": 5}'}


async def _all_done(pool: asyncpg.Pool) -> bool:
    async with pool.acquire() as conn:
        left = await conn.fetchval(
            "SELECT count(*) FROM tideflow_instances WHERE status <> 'completed'"
        )
    return bool(left == 0)


CHILD = workflow("child", [call_state("Only", "inc", None)])
PARENT = workflow(
    "parent",
    [
        {
            "name": "Call",
            "type": "operation",
            "actions": [
                {
                    "subFlowRef": {"workflowId": "child", "version": "1"},
                    "actionDataFilter": {"results": "${ .n }", "toStateData": "${ .n }"},
                }
            ],
            "transition": "After",
        },
        call_state("After", "inc", None),
    ],
)


async def test_sync_subflow_parks_the_parent_until_the_child_ends(pool: asyncpg.Pool) -> None:
    calls = Calls()
    await deploy(pool, CHILD)
    await deploy(pool, PARENT)
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("parent", {"n": 10})
        done = await rt.wait_for_completion(row.id, 10)
        children, _ = await rt.instances.list(workflow="child")
    assert done.status == "completed"
    assert done.output == {"n": 12}
    assert [c.parent_id for c in children] == [row.id]
    assert children[0].output == {"n": 11}
    assert len(calls.by_key) == 2


TIMED = workflow(
    "timed",
    [
        call_state("B", "inc", "Wait"),  # a start event state ignores eventTimeout
        {
            "name": "Wait",
            "type": "event",
            "onEvents": [{"eventRefs": ["go"]}],
            "timeouts": {"eventTimeout": "PT0.5S"},
            "transition": "C",
        },
        call_state("C", "inc", None),
    ],
    events=[{"name": "go", "type": "go", "source": "test"}],
)


TIMED_THEN_WAIT = workflow(
    "timed2",
    [
        call_state("B", "inc", "Wait"),
        {
            "name": "Wait",
            "type": "event",
            "onEvents": [{"eventRefs": ["go"]}],
            "timeouts": {"eventTimeout": "PT0.3S"},
            "transition": "Again",
        },
        {"name": "Again", "type": "event", "onEvents": [{"eventRefs": ["go"]}], "end": True},
    ],
    events=[{"name": "go", "type": "go", "source": "test"}],
)


async def test_a_timed_out_wait_takes_no_late_events(pool: asyncpg.Pool) -> None:
    calls = Calls()
    await deploy(pool, TIMED_THEN_WAIT)
    event = {"specversion": "1.0", "id": "1", "source": "test", "type": "go"}
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("timed2", {"n": 1})
        await _until(lambda: _waits_on(rt, row.id, "Again"))
        first = [e for e in await rt.instances.journal(row.id, 1) if e["op"] == "wait"]
        assert [e["result"] for e in first] == [None]  # Wait timed out
        assert not await rt.deliver_events(row.id, first[0]["key"], [event])  # too late
        (again,) = await rt.instances.waits(row.id)
        assert await rt.deliver_events(row.id, again["wait_key"], [event])
        done = await rt.wait_for_completion(row.id, 10)
    assert done.status == "completed"


async def _waits_on(rt: DurableRuntime, instance_id: str, state: str) -> bool:
    waits = await rt.instances.waits(instance_id)
    return [w["wait_key"].split("/")[0] for w in waits] == [state]


async def test_event_timeout_wakes_a_parked_instance(pool: asyncpg.Pool) -> None:
    calls = Calls()
    await deploy(pool, TIMED)
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("timed", {"n": 1})
        await _until(lambda: _status(rt, row.id, "waiting"))
        (timer,) = await rt.timers.list_timers(kind=WAKE_KIND, state=TimerState.PENDING)
        assert timer.idempotency_key is not None
        assert timer.idempotency_key.startswith(f"{row.id}/1/Wait")  # the timeout's due time
        assert (await rt.instances.get(row.id)).wake_at is None  # the timer wakes it
        done = await rt.wait_for_completion(row.id, 10)
        journal = await rt.instances.journal(row.id, 1)
    assert done.status == "completed"
    assert done.output == {"n": 3}
    assert [e.get("result") for e in journal if e["op"] == "wait"] == [None]


async def test_deleted_workflows_get_no_new_instances_nor_subflows(pool: asyncpg.Pool) -> None:
    from tideflow.errors import WorkflowNotFound
    from tideflow.runtime.gateway import PostgresRegistry

    calls = Calls()
    await deploy(pool, CHILD)
    await deploy(pool, PARENT)
    await PostgresRegistry(pool).delete("child")
    async with runtime(pool, calls) as rt:
        with pytest.raises(WorkflowNotFound, match="child"):
            await rt.start_instance("child", {"n": 1})
        with pytest.raises(WorkflowNotFound, match="deleted"):
            await rt.start_instance("child", {"n": 1}, version="1")
        with pytest.raises(WorkflowNotFound, match="nope"):
            await rt.start_instance("parent", {"n": 1}, version="nope")
        row = await rt.start_instance("parent", {"n": 1})
        done = await rt.wait_for_completion(row.id, 10)
    assert done.status == "failed"
    assert done.error is not None
    assert done.error["code"] == "SubflowNotFound"
    assert calls.by_key == Counter()


STATE_LIMIT = workflow(
    "limited",
    [
        call_state("B", "inc", "Wait"),
        {
            "name": "Wait",
            "type": "event",
            "onEvents": [{"eventRefs": ["go"]}],
            "timeouts": {"stateExecTimeout": "PT0.3S"},
            "end": True,
        },
    ],
    events=[{"name": "go", "type": "go", "source": "test"}],
)


async def test_a_state_deadline_wakes_a_parked_instance_and_times_it_out(
    pool: asyncpg.Pool,
) -> None:
    calls = Calls()
    await deploy(pool, STATE_LIMIT)
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("limited", {"n": 1})
        await _until(lambda: _status(rt, row.id, "waiting"))
        (timer,) = await rt.timers.list_timers(kind=WAKE_KIND, state=TimerState.PENDING)
        assert timer.idempotency_key == f"{row.id}/1/Wait/timeout:state"  # the deadline's
        done = await rt.wait_for_completion(row.id, 10)
        journal = await rt.instances.journal(row.id, 1)
    assert done.status == "failed"
    assert done.error is not None
    assert done.error["code"] == "TIMEOUT"
    assert [e["key"] for e in journal if e["op"] == "deadline"] == ["Wait/timeout:state"]


async def test_a_process_that_lost_the_lease_cannot_write_the_journal(pool: asyncpg.Pool) -> None:
    calls = Calls()
    calls.gate = asyncio.Event()
    await deploy(pool, SLOW)
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("slow2", {"n": 0})
        await _until(lambda: _called(calls))
        async with pool.acquire() as conn:  # another process took the instance over
            await conn.execute(
                "UPDATE tideflow_instances SET lease_owner = 'other', lease_until = now()"
                " + interval '1 minute' WHERE id = $1",
                row.id,
            )
        calls.gate.set()
        await _until(lambda: _gone(rt))  # the runner noticed at its commit and stopped
        journal = await rt.instances.journal(row.id, 1)
        held = await rt.instances.get(row.id)
    assert [e for e in journal if e["op"] == "call"] == []  # its result was fenced off
    assert held.lease_owner == "other"
    assert held.status == "running"


async def _gone(rt: DurableRuntime) -> bool:
    return rt.running == 0


WAITING_CHILD = workflow(
    "waiting-child",
    [{"name": "Wait", "type": "event", "onEvents": [{"eventRefs": ["go"]}], "end": True}],
    events=[{"name": "go", "type": "go", "source": "test"}],
)


def _async_parent(wf_id: str, on_parent_complete: str) -> str:
    ref = {"workflowId": "waiting-child", "invoke": "async", "onParentComplete": on_parent_complete}
    return workflow(
        wf_id,
        [{"name": "Start", "type": "operation", "actions": [{"subFlowRef": ref}], "end": True}],
    )


async def test_async_subflows_end_with_their_parent_only_when_asked(pool: asyncpg.Pool) -> None:
    calls = Calls()
    await deploy(pool, WAITING_CHILD)
    await deploy(pool, _async_parent("ends-children", "terminate"))
    await deploy(pool, _async_parent("leaves-children", "continue"))
    async with runtime(pool, calls) as rt:
        ended = await rt.start_instance("ends-children", {})
        left = await rt.start_instance("leaves-children", {})
        assert (await rt.wait_for_completion(ended.id, 10)).status == "completed"
        assert (await rt.wait_for_completion(left.id, 10)).status == "completed"
        children = {c.parent_id: c for c in (await rt.instances.list(workflow="waiting-child"))[0]}
        await _until(lambda: _status(rt, children[left.id].id, "waiting"))
        assert (await rt.wait_for_completion(children[ended.id].id, 10)).status == "cancelled"
    assert (await rt.instances.get(children[left.id].id)).status == "waiting"


SLOW_CHILD_PARENT = workflow(
    "impatient",
    [
        {
            "name": "Call",
            "type": "operation",
            "timeouts": {"actionExecTimeout": "PT0.3S"},
            "actions": [{"subFlowRef": {"workflowId": "waiting-child"}}],
            "end": True,
        }
    ],
)


async def test_a_sync_subflow_past_its_action_timeout_times_the_parent_out(
    pool: asyncpg.Pool,
) -> None:
    calls = Calls()
    await deploy(pool, WAITING_CHILD)
    await deploy(pool, SLOW_CHILD_PARENT)
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("impatient", {})
        done = await rt.wait_for_completion(row.id, 10)
        (child,), _ = await rt.instances.list(workflow="waiting-child")
        child_id = child.id
        await rt.deliver_events(child_id, (await rt.instances.waits(child_id))[0]["wait_key"], [])
        await rt.wait_for_completion(child_id, 10)  # ends late: its answer changes nothing
        journal = await rt.instances.journal(row.id, 1)
    assert done.status == "failed"
    assert done.error is not None
    assert done.error["code"] == "TIMEOUT"
    answers = [e for e in journal if e["op"] == "subflow"]
    assert [a["error"]["type"] for a in answers] == ["StepTimeout"]
