"""Timeouts: workflowExecTimeout (interrupt, runBefore), state, action, branch, event."""

from __future__ import annotations

from datetime import timedelta

from tests.unit.interp_support import call, fn, kinds, op_state, run, workflow
from tideflow.runtime.effects import EventWait, FunctionCall
from tideflow.runtime.fake import ScriptedEffects
from tideflow.runtime.result import Completed, Failed, Terminated
from tideflow.workflow.model import Workflow


def _sleepy(**top: object) -> Workflow:
    states = [
        {"name": "A", "type": "inject", "data": {"a": 1}, "transition": "Nap"},
        {"name": "Nap", "type": "sleep", "duration": "PT20S", "transition": "B"},
        {"name": "B", "type": "inject", "data": {"b": 1}, "end": True},
        {"name": "Cleanup", "type": "inject", "data": {"cleaned": True}, "end": True},
    ]
    return workflow(states, **top)


async def test_workflow_exec_timeout_interrupts_and_runs_run_before() -> None:
    wf = _sleepy(timeouts={"workflowExecTimeout": {"duration": "PT10S", "runBefore": "Cleanup"}})
    effects = ScriptedEffects(expire=["workflow/timeout:workflow"])
    result = await run(wf, {}, effects)
    assert isinstance(result, Terminated)
    assert result.reason == "timeout"
    assert result.output == {"cleaned": True}
    assert effects.log[0] == ("deadline", "workflow/timeout:workflow", 10.0)


async def test_workflow_exec_timeout_without_interrupt_lets_the_state_finish() -> None:
    wf = _sleepy(timeouts={"workflowExecTimeout": {"duration": "PT10S", "interrupt": False}})
    effects = ScriptedEffects()
    result = await run(wf, {}, effects)
    assert isinstance(result, Terminated)
    assert result.output == {"a": 1}  # Nap finished, B never ran
    assert [k for k, _, _ in effects.log] == ["sleep"]


async def test_workflow_exec_timeout_not_reached_completes() -> None:
    wf = _sleepy(timeouts={"workflowExecTimeout": "PT1H"})
    result = await run(wf, {}, ScriptedEffects())
    assert isinstance(result, Completed)
    assert result.output == {"a": 1, "b": 1}


async def test_state_exec_timeout_is_a_handleable_timeout() -> None:
    state = op_state(
        "S",
        [call("f")],
        timeouts={"stateExecTimeout": "PT5S"},
        onErrors=[{"errorRef": "Timeout", "transition": "Late"}],
        transition="Late",
    )
    late = {"name": "Late", "type": "inject", "data": {"late": True}, "end": True}
    wf = workflow(
        [state, late], functions=[fn("f")], errors=[{"name": "Timeout", "code": "TIMEOUT"}]
    )
    effects = ScriptedEffects({"f": {"r": 1}}, expire=["S/timeout:state"])
    result = await run(wf, {}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"late": True}
    assert effects.log == [("deadline", "S/timeout:state", 5.0)]


async def test_action_exec_timeout_and_single_reach_the_host() -> None:
    state = op_state(
        "S",
        [call("f")],
        timeouts={
            "actionExecTimeout": "PT30S",
            "stateExecTimeout": {"total": "PT1M", "single": "PT10S"},
        },
    )
    effects = ScriptedEffects({"f": 1})
    await run(workflow([state], functions=[fn("f")]), {}, effects)
    [function_call] = [r for r in effects.requests if isinstance(r, FunctionCall)]
    assert function_call.timeout_seconds == 10.0


async def test_top_level_action_exec_timeout_is_inherited() -> None:
    wf = workflow(
        [op_state("S", [call("f")])], functions=[fn("f")], timeouts={"actionExecTimeout": "PT7S"}
    )
    effects = ScriptedEffects({"f": 1})
    await run(wf, {}, effects)
    assert effects.requests[0].timeout_seconds == 7.0


async def test_host_timeout_of_a_call_fails_with_timeout() -> None:
    wf = workflow(
        [op_state("S", [call("f")], timeouts={"actionExecTimeout": "PT1S"})], functions=[fn("f")]
    )
    result = await run(wf, {}, ScriptedEffects({"f": 1}, expire=["S/action:0/attempt:1"]))
    assert isinstance(result, Failed)
    assert (result.error.name, result.error.code, result.error.state) == ("timeout", "TIMEOUT", "S")


async def test_branch_exec_timeout_branch_overrides_state() -> None:
    state = {
        "name": "P",
        "type": "parallel",
        "timeouts": {"branchExecTimeout": "PT1M"},
        "branches": [
            {"name": "a", "actions": [call("f")], "timeouts": {"branchExecTimeout": "PT5S"}},
            {"name": "b", "actions": [call("f")]},
        ],
        "end": True,
    }
    effects = ScriptedEffects({"f": {}}, expire=["P/branch:b/timeout:branch"])
    result = await run(workflow([state], functions=[fn("f")]), {}, effects)
    deadlines = {key: v for k, key, v in effects.log if k == "deadline"}
    assert deadlines == {"P/branch:a/timeout:branch": 5.0, "P/branch:b/timeout:branch": 60.0}
    assert isinstance(result, Failed)
    assert result.error.code == "TIMEOUT"


async def test_event_timeout_reaches_the_host_and_start_exclusive_ignores_it() -> None:
    events = [{"name": "Go", "type": "go", "source": "s"}]
    event_state = {
        "name": "E",
        "type": "event",
        "onEvents": [{"eventRefs": ["Go"]}],
        "timeouts": {"eventTimeout": "PT3S"},
        "end": True,
    }
    go = {"specversion": "1.0", "id": "1", "source": "s", "type": "go", "data": {"go": 1}}
    effects = ScriptedEffects(events=[go])
    result = await run(workflow([event_state], events=events), {}, effects)
    assert isinstance(result, Completed)
    assert effects.requests[0].timeout_seconds is None
    first = {"name": "First", "type": "inject", "data": {}, "transition": "E"}
    effects = ScriptedEffects(events=[go])
    await run(workflow([first, event_state], events=events), {}, effects)
    [wait] = [r for r in effects.requests if isinstance(r, EventWait)]
    assert wait.timeout_seconds == 3.0


async def test_keep_active_waits_until_workflow_timeout() -> None:
    wf = workflow(
        [{"name": "A", "type": "inject", "data": {"a": 1}, "end": True}],
        keep_active=True,
        timeouts={"workflowExecTimeout": "PT1H"},
    )
    effects = ScriptedEffects()
    result = await run(wf, {}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"a": 1}
    assert effects.log == [
        ("deadline", "workflow/timeout:workflow", 3600.0),
        ("sleep", "keepActive", float("inf")),
    ]
    # the endless sleep lasted until the workflow's deadline fired, an hour later
    assert effects.now() - effects.start == timedelta(hours=1)
    assert kinds(result)[-2:] == ["keep_active", "workflow.timeout"]


async def test_keep_active_ends_at_the_workflow_timeout_even_while_asleep() -> None:
    states = [
        {"name": "A", "type": "inject", "data": {"a": 1}, "transition": "Nap"},
        {"name": "Nap", "type": "sleep", "duration": "PT2H", "end": True},
    ]
    wf = workflow(states, keep_active=True, timeouts={"workflowExecTimeout": "PT1H"})
    effects = ScriptedEffects()
    result = await run(wf, {}, effects)
    assert isinstance(result, Completed)  # keepActive: a timeout completes the instance
    assert result.output == {"a": 1}
    assert effects.now() - effects.start == timedelta(hours=1)
    assert "keep_active" not in kinds(result)  # the timeout came first


async def test_keep_active_ends_at_terminate() -> None:
    wf = workflow(
        [{"name": "A", "type": "inject", "data": {"a": 1}, "end": {"terminate": True}}],
        keep_active=True,
    )
    effects = ScriptedEffects()
    result = await run(wf, {}, effects)
    assert isinstance(result, Terminated)
    assert effects.log == []


async def test_keep_active_without_interrupt_sleeps_the_remaining_time() -> None:
    states = [
        {"name": "Nap", "type": "sleep", "duration": "PT20S", "transition": "A"},
        {"name": "A", "type": "inject", "data": {"a": 1}, "end": True},
    ]
    wf = workflow(
        states,
        keep_active=True,
        timeouts={"workflowExecTimeout": {"duration": "PT1M", "interrupt": False}},
    )
    effects = ScriptedEffects()
    result = await run(wf, {}, effects)
    assert isinstance(result, Completed)
    assert effects.log[-1] == ("sleep", "keepActive", 40.0)
