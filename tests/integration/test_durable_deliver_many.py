"""``DurableRuntime.deliver_many`` on real PostgreSQL: batched answers, in-process claims."""

from __future__ import annotations

import asyncio
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
from tideflow.runtime import gateway
from tideflow.runtime.gateway import NOTIFY_CHANNEL, put_inbox
from tideflow.runtime.waits import EventWaits
from tideflow.runtime.wakeups import WAKE_KIND
from tideflow.timer.records import TimerState

APPROVAL = approval_workflow("approval_many")

BOTH = workflow(
    "both_many",
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


async def _until(predicate: Any, seconds: float = 10.0) -> None:
    """Poll ``predicate`` (progress lives in the database) until true."""
    async with asyncio.timeout(seconds):
        while not await predicate():  # noqa: ASYNC110 -- progress lives in the database
            await asyncio.sleep(0.02)


def _event(n: int, kind: str = "approved") -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"e{n}", "source": "test", "type": kind, "data": {"n": n}}


async def _parked(rt: Any, ids: list[str]) -> list[str]:
    """The wait keys of ``ids`` once every one is parked (no runner in memory)."""

    async def all_parked() -> bool:
        rows = [await rt.instances.get(i) for i in ids]
        return rt.running == 0 and all(r.status == "waiting" for r in rows)

    await _until(all_parked)
    return [(await rt.instances.waits(i))[0]["wait_key"] for i in ids]


async def test_one_batch_resumes_exactly_its_instances_in_this_process(pool: asyncpg.Pool) -> None:
    calls = Calls()
    await deploy(pool, APPROVAL)
    async with runtime(pool, calls) as rt:
        rows = [await rt.start_instance("approval_many", {"n": i * 10}) for i in range(4)]
        ids = [r.id for r in rows]
        keys = await _parked(rt, ids)
        claimed = rt.worker.claimed
        answers = [(ids[i], keys[i], [_event(i)]) for i in range(3)]
        answers.append((ids[0], keys[0], [_event(9)]))  # the wait is answered already
        answers.append((ids[1], "Nope/events", [_event(8)]))  # no such wait
        taken = await rt.deliver_many(answers)
        assert taken == [True, True, True, False, False]
        done = [await rt.wait_for_completion(i, 10) for i in ids[:3]]
        assert rt.worker.claimed == claimed + 3  # claimed by the delivery, not the worker
        assert (await rt.instances.get(ids[3])).status == "waiting"
        journals = [await rt.instances.journal(i, 1) for i in ids[:3]]
    assert [d.status for d in done] == ["completed"] * 3
    assert [d.output["ok"] for d in done] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert [d.output["n"] for d in done] == [2, 12, 22]
    assert [[e["result"] for e in j if e["op"] == "wait"] for j in journals] == [
        [[_event(i)]] for i in range(3)
    ]
    assert all(v == 1 for v in calls.by_key.values())  # no step ran twice


async def test_an_instance_leased_elsewhere_is_woken_for_its_holder_not_claimed(
    pool: asyncpg.Pool,
) -> None:
    calls = Calls()
    await deploy(pool, APPROVAL)
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("approval_many", {"n": 0})
        [key] = await _parked(rt, [row.id])
        await pool.execute(
            "UPDATE tideflow_instances SET lease_owner = 'other', "
            "lease_until = now() + interval '30 seconds' WHERE id = $1",
            row.id,
        )
        assert await rt.deliver_many([(row.id, key, [_event(1)])]) == [True]
        held = await pool.fetchrow(
            "SELECT lease_owner, woken, status FROM tideflow_instances WHERE id = $1", row.id
        )
        assert dict(held) == {"lease_owner": "other", "woken": True, "status": "waiting"}
        # The holder lets it go (as its park would): any worker claims and resumes it.
        await pool.execute(
            "UPDATE tideflow_instances SET lease_owner = NULL, lease_until = NULL, "
            "wake_at = now(), woken = false WHERE id = $1",
            row.id,
        )
        rt.worker.poke()
        done = await rt.wait_for_completion(row.id, 10)
    assert done.status == "completed"
    assert done.output["ok"] == {"n": 1}


async def test_a_wait_for_all_events_goes_through_the_one_by_one_path(pool: asyncpg.Pool) -> None:
    calls = Calls()
    await deploy(pool, BOTH)
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("both_many", {})
        [key] = await _parked(rt, [row.id])
        a, b = _event(1, "a"), _event(2, "b")
        assert await rt.deliver_many([(row.id, key, [b])]) == [True]  # kept: "a" missing
        assert (await rt.instances.get(row.id)).status == "waiting"
        assert await rt.deliver_many([(row.id, key, [a])]) == [True]
        done = await rt.wait_for_completion(row.id, 10)
        journal = await rt.instances.journal(row.id, 1)
    assert done.status == "completed"
    assert [e["result"] for e in journal if e["op"] == "wait"] == [[a, b]]  # listed order


PATIENT = workflow(
    "patient_many",
    [
        call_state("B", "inc", "Wait"),
        {
            "name": "Wait",
            "type": "event",
            "onEvents": [{"eventRefs": ["go"]}],
            "timeouts": {"eventTimeout": "PT30S"},
            "transition": "C",
        },
        call_state("C", "inc", None),
    ],
    events=[{"name": "go", "type": "go", "source": "test"}],
)


async def test_a_batched_answer_cancels_the_waits_timeout_timer(pool: asyncpg.Pool) -> None:
    calls = Calls()
    await deploy(pool, PATIENT)
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("patient_many", {"n": 0})
        [key] = await _parked(rt, [row.id])
        (pending,) = await rt.timers.list_timers(kind=WAKE_KIND, limit=10)
        assert pending.state is TimerState.PENDING
        assert await rt.deliver_many([(row.id, key, [_event(1, "go")])]) == [True]
        done = await rt.wait_for_completion(row.id, 10)
        (timer,) = await rt.timers.list_timers(kind=WAKE_KIND, limit=10)
    assert done.status == "completed"
    assert done.output == {"n": 2}
    assert timer.id == pending.id
    assert timer.state is TimerState.CANCELLED


async def test_a_started_instances_inbox_is_answered_by_a_claim_here_not_a_wake(
    pool: asyncpg.Pool,
) -> None:
    """The starting events waiting in an inbox answer the wait in the statement that claims
    the parked instance for this process: no other process's claimer is woken for it."""
    calls = Calls()
    await deploy(pool, APPROVAL)
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("approval_many", {"n": 5})
        [key] = await _parked(rt, [row.id])
        async with pool.acquire() as conn:
            await put_inbox(conn, (row.id, key), [_event(3)], 0)
        heard: list[str] = []

        def hear(*args: Any) -> None:
            heard.append(args[3])

        listener = await pool.acquire()
        await listener.add_listener(NOTIFY_CHANNEL, hear)
        try:
            waits = EventWaits(pool, rt.delivery)
            found = await waits.inbox_of([(row.id, key)])
            assert await waits.answer_inboxes(found) == [True]
            held = await pool.fetchrow(
                "SELECT lease_owner, status FROM tideflow_instances WHERE id = $1", row.id
            )
            await listener.fetchval("SELECT 1")  # what committed before is heard by now
            await asyncio.sleep(0)
        finally:
            await listener.remove_listener(NOTIFY_CHANNEL, hear)
            await pool.release(listener)
        done = await rt.wait_for_completion(row.id, 10)
        assert await waits.inbox_of([(row.id, key)]) == []
        left = await pool.fetchval("SELECT count(*) FROM tideflow_correlation_inbox")
    # claimed here by the delivery (or run to its end already)
    assert held["status"] == "completed" or tuple(held) == (rt.options.owner, "running")
    assert "wake" not in heard
    assert left == 0
    assert done.status == "completed"
    assert done.output["ok"] == {"n": 3}


async def test_a_claimed_instance_comes_with_its_timeline_steps_in_the_same_statement(
    pool: asyncpg.Pool,
) -> None:
    # The step count a runner replays from is read by deliver_claim itself (one round trip
    # fewer on the event path): the same count a claim's load of the run finds.
    calls = Calls()
    await deploy(pool, APPROVAL)
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("approval_many", {"n": 0})
        [key] = await _parked(rt, [row.id])
    async with pool.acquire() as conn:
        _, expected = await gateway.load_run(conn, row.id, 1)
        [delivered] = await gateway.deliver_claim(
            conn, [(row.id, key, [_event(1)])], "test-owner", 30, [True]
        )
    assert delivered.claimed
    assert expected > 0
    assert delivered.steps == expected
