"""Durable runtime time through the timer service: parked sleeps and timeouts are timers."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg

from tests.integration.durable_support import Calls, call_state, deploy, runtime, workflow
from tideflow.runtime.gateway import PostgresRegistry
from tideflow.runtime.hosts.durable import DurableRuntime, RuntimeOptions
from tideflow.runtime.wakeups import WAKE_KIND
from tideflow.timer.records import TimerState
from tideflow.timer.service import TimerService

SLEEPY = workflow(
    "sleepy",
    [
        call_state("A", "inc", "Nap"),
        {"name": "Nap", "type": "sleep", "duration": "PT1S", "transition": "C"},
        call_state("C", "inc", None),
    ],
)

PATIENT = workflow(
    "patient",
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


async def _until(predicate: Any, seconds: float = 15.0) -> None:
    """Poll another task's progress (not a clock) until ``predicate`` holds."""
    async with asyncio.timeout(seconds):
        while not await predicate():  # noqa: ASYNC110 -- progress lives in the database
            await asyncio.sleep(0.02)


async def _wake_timers(rt: DurableRuntime, state: TimerState | None = None) -> list[Any]:
    return await rt.timers.list_timers(kind=WAKE_KIND, state=state, limit=1000)


async def _parked(rt: DurableRuntime, instance_id: str) -> bool:
    row = await rt.instances.get(instance_id)
    return rt.running == 0 and row.status == "waiting"


async def test_a_parked_sleep_is_a_pending_timer_that_fires_and_resumes_it(
    pool: asyncpg.Pool,
) -> None:
    calls = Calls()
    await deploy(pool, SLEEPY)
    async with runtime(pool, calls, memory_sleep=0.0) as rt:
        row = await rt.start_instance("sleepy", {"n": 0})
        await _until(lambda: _parked(rt, row.id))
        (timer,) = await _wake_timers(rt)
        journal = await rt.instances.journal(row.id, 1)
        ((key, due),) = [(e["key"], e["result"]) for e in journal if e["op"] == "timer"]
        assert key.startswith("Nap/")
        assert timer.state is TimerState.PENDING
        assert timer.idempotency_key == f"{row.id}/1/{key}"
        assert timer.payload == {"instance": row.id, "run": 1, "key": key}
        assert timer.due_at.isoformat() == due  # the journaled due time
        assert (await rt.instances.get(row.id)).wake_at is None  # only the timer wakes it
        done = await rt.wait_for_completion(row.id, 10)
        (fired,) = await _wake_timers(rt)
    assert done.status == "completed"
    assert done.output == {"n": 2}
    assert fired.state is TimerState.FIRED
    assert fired.attempts == 1
    assert fired.fired_at is not None
    assert fired.fired_at >= fired.due_at
    assert sorted(calls.by_key.values()) == [1, 1]


async def test_a_sleep_survives_a_crash_of_the_runtime(pool: asyncpg.Pool) -> None:
    calls = Calls()
    await deploy(pool, SLEEPY)
    first = DurableRuntime(pool, RuntimeOptions(functions=calls.functions(), memory_sleep=0.0))
    await first.start()
    row = await first.start_instance("sleepy", {"n": 0})
    await _until(lambda: _parked(first, row.id))
    await first.kill()  # its timer service dies with it, the timer stays pending
    (timer,) = await _wake_timers(first, TimerState.PENDING)
    async with runtime(pool, calls, memory_sleep=0.0) as second:
        done = await second.wait_for_completion(row.id, 10)
        (fired,) = await _wake_timers(second)
    assert done.status == "completed"
    assert done.output == {"n": 2}
    assert fired.id == timer.id
    assert fired.state is TimerState.FIRED
    assert sorted(calls.by_key.values()) == [1, 1]  # no step ran twice


async def test_events_before_the_timeout_cancel_its_timer(pool: asyncpg.Pool) -> None:
    calls = Calls()
    await deploy(pool, PATIENT)
    event = {"specversion": "1.0", "id": "e1", "source": "test", "type": "go"}
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("patient", {"n": 0})
        await _until(lambda: _parked(rt, row.id))
        (wait,) = await rt.instances.waits(row.id)
        (timer,) = await _wake_timers(rt, TimerState.PENDING)
        assert timer.idempotency_key == f"{row.id}/1/{wait['wait_key']}"
        assert timer.due_at - timer.created_at > timedelta(seconds=25)
        assert await rt.deliver_events(row.id, wait["wait_key"], [event])
        done = await rt.wait_for_completion(row.id, 10)
        after = await rt.timers.get(timer.id)
    assert done.status == "completed"
    assert done.output == {"n": 2}
    assert after is not None
    assert after.state is TimerState.CANCELLED


async def test_two_runtimes_fire_each_wake_up_once(pool: asyncpg.Pool) -> None:
    calls = Calls()
    await deploy(pool, SLEEPY)
    async with (
        runtime(pool, calls, memory_sleep=0.0) as one,
        runtime(pool, calls, memory_sleep=0.0) as two,
    ):
        rows = [await (one, two)[i % 2].start_instance("sleepy", {"n": i}) for i in range(40)]
        done = [await one.wait_for_completion(r.id, 20) for r in rows]
        timers = await _wake_timers(one)
    assert [d.status for d in done] == ["completed"] * 40
    assert [d.output["n"] for d in done] == [i + 2 for i in range(40)]
    assert len(timers) == 40
    assert {(t.state, t.attempts) for t in timers} == {(TimerState.FIRED, 1)}
    assert set(calls.by_key.values()) == {1}  # no instance was woken and run twice
    assert len(calls.by_key) == 80


async def test_a_shared_timer_service_fires_the_runtime_wake_ups(pool: asyncpg.Pool) -> None:
    calls = Calls()
    await deploy(pool, SLEEPY)
    timers = TimerService(pool)
    rt = DurableRuntime(
        pool, RuntimeOptions(functions=calls.functions(), memory_sleep=0.0), timers=timers
    )
    await timers.start()
    await rt.start()
    try:
        row = await rt.start_instance("sleepy", {"n": 5})
        done = await rt.wait_for_completion(row.id, 10)
    finally:
        await timers.stop()
        await rt.stop()
    (fired,) = await timers.list_timers(kind=WAKE_KIND)
    assert done.output == {"n": 7}
    assert fired.state is TimerState.FIRED


async def test_instances_are_counted_by_status(pool: asyncpg.Pool) -> None:
    calls = Calls()
    await deploy(pool, SLEEPY)
    await deploy(pool, PATIENT)
    async with runtime(pool, calls, memory_sleep=0.0) as rt:
        waiting = await rt.start_instance("patient", {"n": 0})
        await _until(lambda: _parked(rt, waiting.id))
        sleeper = await rt.start_instance("sleepy", {"n": 0})
        await rt.wait_for_completion(sleeper.id, 10)
        counts = await rt.instances.count_by_status()
    assert counts == {"waiting": 1, "completed": 1}


async def test_journal_commits_are_timed_and_completed_events_carry_the_output(
    pool: asyncpg.Pool,
) -> None:
    calls = Calls()
    await deploy(pool, SLEEPY)
    events: list[Any] = []
    durations: list[float] = []
    rt = DurableRuntime(
        pool, RuntimeOptions(functions=calls.functions()), on_lifecycle=events.append
    )
    rt.writer.on_commit = durations.append
    async with rt:
        row = await rt.start_instance("sleepy", {"n": 1})
        await rt.wait_for_completion(row.id, 10)
    (completed,) = [e for e in events if e.kind == "completed"]
    assert completed.detail["output"] == {"n": 3}
    assert completed.to_cloudevent("x", "t")["data"]["output"] == {"n": 3}
    assert durations
    assert len(durations) == rt.writer.commits
    assert all(d >= 0 for d in durations)


def _deploy_as(pool: Any, source: str, content_type: str) -> Any:
    doc = json.loads(source)
    registry = PostgresRegistry(pool)
    return registry.deploy(doc["id"], doc["version"], source, content_type, doc)


def _bare_call(wf_id: str) -> str:
    # No arguments: under SonataFlow's dialect the function gets the state data.
    action = {"functionRef": "inc", "actionDataFilter": {"toStateData": "${ .n }"}}
    return workflow(wf_id, [{"name": "A", "type": "operation", "actions": [action], "end": True}])


async def test_a_version_runs_with_the_dialect_it_was_deployed_with(pool: asyncpg.Pool) -> None:
    calls = Calls()
    await _deploy_as(pool, _bare_call("sf"), "application/json; dialect=sonataflow")
    await _deploy_as(pool, _bare_call("plain"), "application/json")
    async with runtime(pool, calls) as rt:
        lenient = await rt.start_instance("sf", {"n": 4})
        strict = await rt.start_instance("plain", {"n": 4})
        lenient_done = await rt.wait_for_completion(lenient.id, 10)
        strict_done = await rt.wait_for_completion(strict.id, 10)
    assert lenient_done.status == "completed"
    assert lenient_done.output == {"n": 5}
    assert strict_done.status == "failed"  # inc got no "n"


async def test_python_modules_are_found_in_every_workflow_folder(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    from tideflow.runtime.functions.policy import PythonPolicy

    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (second / "tf_second_folder_fns.py").write_text(
        "def triple(args):\n    return args['n'] * 3\n", encoding="utf-8"
    )
    source = workflow(
        "folders",
        [call_state("A", "triple", None)],
        functions=[
            {"name": "triple", "type": "custom", "operation": "python:tf_second_folder_fns:triple"}
        ],
    )
    await deploy(pool, source)
    options = RuntimeOptions(
        base_dir=first,
        module_dirs=(second,),
        python_policy=PythonPolicy.for_server(folders=[first, second]),
    )
    async with DurableRuntime(pool, options) as rt:
        row = await rt.start_instance("folders", {"n": 2})
        done = await rt.wait_for_completion(row.id, 10)
        assert rt.base_dir_for("python:tf_second_folder_fns:triple") == second
        assert rt.base_dir_for("python:elsewhere:f") == first
    assert done.status == "completed", done.error
    assert done.output == {"n": 6}


def _flaky_workflow() -> str:
    action = {
        "functionRef": {"refName": "flaky", "arguments": {"n": "${ .n }"}},
        "actionDataFilter": {"toStateData": "${ .n }"},
        "retryRef": "again",
    }
    return workflow(
        "flaky",
        [{"name": "Try", "type": "operation", "actions": [action], "end": True}],
        functions=[{"name": "flaky", "type": "custom", "operation": "python:unused:flaky"}],
        retries=[{"name": "again", "delay": "PT0.2S", "maxAttempts": 3}],
        autoRetries=True,
    )


async def test_a_parked_retry_back_off_is_a_timer(pool: asyncpg.Pool) -> None:
    attempts: list[int] = []

    def flaky(args: dict[str, Any]) -> int:
        attempts.append(args["n"])
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")
        return int(args["n"]) + 1

    await deploy(pool, _flaky_workflow())
    options = RuntimeOptions(functions={"flaky": flaky}, memory_sleep=0.0)
    async with DurableRuntime(pool, options) as rt:
        row = await rt.start_instance("flaky", {"n": 1})
        done = await rt.wait_for_completion(row.id, 10)
        (timer,) = await _wake_timers(rt)
    assert done.status == "completed", done.error
    assert done.output == {"n": 2}
    assert attempts == [1, 1]
    assert timer.idempotency_key.startswith(f"{row.id}/1/Try/")
    assert timer.idempotency_key.endswith("/backoff")
    assert timer.state is TimerState.FIRED


def _guarded_parent() -> str:
    action = {
        "subFlowRef": {"workflowId": "slowchild", "version": "1"},
        "actionDataFilter": {"results": "${ .n }", "toStateData": "${ .n }"},
    }
    state = {
        "name": "Call",
        "type": "operation",
        "actions": [action],
        "timeouts": {"actionExecTimeout": "PT30S"},
        "end": True,
    }
    return workflow("guarded", [state])


async def test_a_child_ending_first_cancels_the_parent_timeout_timer(pool: asyncpg.Pool) -> None:
    calls = Calls()
    calls.gate = asyncio.Event()
    await deploy(pool, workflow("slowchild", [call_state("Only", "slow", None)]))
    await deploy(pool, _guarded_parent())
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("guarded", {"n": 1})
        await _until(lambda: _status_is(rt, row.id, "waiting"))
        (timer,) = await _wake_timers(rt, TimerState.PENDING)
        assert timer.idempotency_key.startswith(f"{row.id}/1/Call/")
        calls.gate.set()
        done = await rt.wait_for_completion(row.id, 10)
        after = await rt.timers.get(timer.id)
    assert done.status == "completed", done.error
    assert done.output == {"n": 2}
    assert after is not None
    assert after.state is TimerState.CANCELLED


async def _status_is(rt: DurableRuntime, instance_id: str, status: str) -> bool:
    return (await rt.instances.get(instance_id)).status == status
