"""Every state type of Serverless Workflow 0.8, run on scripted effects."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.interp_support import call, calls, fn, kinds, op_state, run, workflow
from tideflow.runtime.fake import ScriptedEffects
from tideflow.runtime.result import Completed, Failed


async def test_inject_merges_data_into_input() -> None:
    wf = workflow([{"name": "I", "type": "inject", "data": {"a": {"b": 1}}, "end": True}])
    result = await run(wf, {"a": {"c": 2}, "x": 1})
    assert result == Completed(output={"a": {"c": 2, "b": 1}, "x": 1}, timeline=result.timeline)


async def test_operation_sequential_actions_see_earlier_results() -> None:
    wf = workflow(
        [
            op_state(
                "Op",
                [
                    call("one", actionDataFilter={"toStateData": "${ .first }"}),
                    call("two", arguments={"v": "${ .first }"}),
                ],
            )
        ],
        functions=[fn("one"), fn("two")],
    )
    effects = ScriptedEffects({"one": 5, "two": lambda a: {"second": a["v"] + 1}})
    result = await run(wf, {}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"first": 5, "second": 6}
    assert calls(effects) == ["Op/action:0/attempt:1", "Op/action:1/attempt:1"]


async def test_operation_parallel_merges_in_definition_order() -> None:
    wf = workflow(
        [op_state("Op", [call("slow"), call("fast")], actionMode="parallel")],
        functions=[fn("slow"), fn("fast")],
    )
    import asyncio

    async def slow(_: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        return {"v": "slow", "s": 1}

    effects = ScriptedEffects({"slow": slow, "fast": {"v": "fast", "f": 1}})
    result = await run(wf, {}, effects)
    assert isinstance(result, Completed)
    # fast finished first, but merge order is definition order: fast's value wins last
    assert result.output == {"v": "fast", "s": 1, "f": 1}


async def test_sleep_state_asks_host_to_sleep() -> None:
    wf = workflow([{"name": "S", "type": "sleep", "duration": "PT1M30S", "end": True}])
    effects = ScriptedEffects()
    result = await run(wf, {"k": 1}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"k": 1}
    assert effects.log == [("sleep", "S/sleep", 90.0)]


@pytest.mark.parametrize(
    ("value", "target"),
    [(1, "One"), (2, "Two"), (3, "Other")],
)
async def test_switch_data_conditions_first_true_wins(value: int, target: str) -> None:
    states = [
        {
            "name": "Sw",
            "type": "switch",
            "dataConditions": [
                {"condition": "${ .v == 1 }", "transition": "One"},
                {"condition": "${ .v <= 2 }", "transition": "Two"},
                {"condition": "${ .v <= 2 }", "transition": "Other"},
            ],
            "defaultCondition": {"transition": "Other"},
        },
        {"name": "One", "type": "inject", "data": {"to": "One"}, "end": True},
        {"name": "Two", "type": "inject", "data": {"to": "Two"}, "end": True},
        {"name": "Other", "type": "inject", "data": {"to": "Other"}, "end": True},
    ]
    result = await run(workflow(states), {"v": value})
    assert isinstance(result, Completed)
    assert result.output["to"] == target


async def test_switch_condition_may_end() -> None:
    states = [
        {
            "name": "Sw",
            "type": "switch",
            "dataConditions": [{"condition": "${ true }", "end": True}],
            "defaultCondition": {"transition": "X"},
        },
        {"name": "X", "type": "inject", "data": {"x": 1}, "end": True},
    ]
    result = await run(workflow(states), {"a": 1})
    assert isinstance(result, Completed)
    assert result.output == {"a": 1}


def _event_defs() -> list[dict[str, Any]]:
    return [
        {"name": "Approved", "type": "approved", "source": "bank"},
        {"name": "Denied", "type": "denied", "source": "bank"},
        {"name": "Req", "type": "req", "source": "app", "kind": "produced"},
    ]


def _ce(kind: str, data: dict[str, Any], **attrs: str) -> dict[str, Any]:
    return {"specversion": "1.0", "id": kind, "source": "bank", "type": kind, "data": data, **attrs}


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([_ce("denied", {"why": "x"})], {"decision": "no", "why": "x"}),
        ([_ce("approved", {"amount": 3})], {"decision": "yes", "amount": 3}),
        ([], {"decision": "timeout"}),
    ],
)
async def test_switch_event_conditions_and_timeout(
    events: list[Any], expected: dict[str, Any]
) -> None:
    states = [
        {
            "name": "Wait",
            "type": "switch",
            "eventConditions": [
                {"eventRef": "Approved", "transition": "Yes"},
                {"eventRef": "Denied", "transition": "No"},
            ],
            "defaultCondition": {"transition": "Late"},
            "timeouts": {"eventTimeout": "PT1H"},
        },
        {"name": "Yes", "type": "inject", "data": {"decision": "yes"}, "end": True},
        {"name": "No", "type": "inject", "data": {"decision": "no"}, "end": True},
        {"name": "Late", "type": "inject", "data": {"decision": "timeout"}, "end": True},
    ]
    effects = ScriptedEffects(events=events, expire=[] if events else ["Wait/events"])
    result = await run(workflow(states, events=_event_defs()), {}, effects)
    assert isinstance(result, Completed)
    assert result.output == expected


async def test_event_state_exclusive_runs_actions_of_the_arrived_event() -> None:
    states = [
        {
            "name": "E",
            "type": "event",
            "onEvents": [
                {"eventRefs": ["Approved"], "actions": [call("pay")]},
                {
                    "eventRefs": ["Denied"],
                    "actions": [call("notify")],
                    "eventDataFilter": {"toStateData": "${ .denial }"},
                },
            ],
            "end": True,
        }
    ]
    effects = ScriptedEffects(
        {"pay": {"paid": True}, "notify": {"notified": True}},
        events=[_ce("denied", {"why": "late"})],
    )
    wf = workflow(states, events=_event_defs(), functions=[fn("pay"), fn("notify")])
    result = await run(wf, {}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"denial": {"why": "late"}, "notified": True}
    assert calls(effects, "call") == ["E/on:1/action:0/attempt:1"]


async def test_event_state_non_exclusive_waits_for_all() -> None:
    states = [
        {
            "name": "E",
            "type": "event",
            "exclusive": False,
            "onEvents": [{"eventRefs": ["Approved", "Denied"], "actions": []}],
            "end": True,
        }
    ]
    effects = ScriptedEffects(events=[_ce("denied", {"d": 1}), _ce("approved", {"a": 1})])
    result = await run(workflow(states, events=_event_defs()), {}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"a": 1, "d": 1}
    assert kinds(result, "event.") == ["event.waiting", "event.received"]


async def test_event_state_timeout_moves_on_without_actions() -> None:
    states = [
        {"name": "Start", "type": "inject", "data": {}, "transition": "E"},
        {
            "name": "E",
            "type": "event",
            "onEvents": [{"eventRefs": ["Approved"], "actions": [call("pay")]}],
            "timeouts": {"eventTimeout": "PT5S"},
            "end": True,
        },
    ]
    effects = ScriptedEffects({"pay": {"paid": True}}, expire=["E/events"])
    wf = workflow(states, events=_event_defs(), functions=[fn("pay")])
    result = await run(wf, {"k": 1}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"k": 1}
    assert calls(effects, "call") == []


async def test_callback_runs_action_then_merges_event() -> None:
    states = [
        {
            "name": "Cb",
            "type": "callback",
            "action": call("ask"),
            "eventRef": "Approved",
            "eventDataFilter": {"data": "${ .amount }", "toStateData": "${ .approved }"},
            "end": True,
        }
    ]
    effects = ScriptedEffects({"ask": {"asked": True}}, events=[_ce("approved", {"amount": 7})])
    wf = workflow(states, events=_event_defs(), functions=[fn("ask")])
    result = await run(wf, {}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"asked": True, "approved": 7}
    assert [k for k, _, _ in effects.log] == ["call", "wait"]


def _parallel(**more: object) -> dict[str, Any]:
    return {
        "name": "P",
        "type": "parallel",
        "branches": [
            {"name": "a", "actions": [call("fa")]},
            {"name": "b", "actions": [call("fb")]},
            {"name": "c", "actions": [call("fc")]},
        ],
        "end": True,
        **more,
    }


async def test_parallel_all_of_joins_every_branch() -> None:
    effects = ScriptedEffects({"fa": {"a": 1}, "fb": {"b": 2}, "fc": {"c": 3}})
    wf = workflow([_parallel()], functions=[fn("fa"), fn("fb"), fn("fc")])
    result = await run(wf, {"x": 0}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"x": 0, "a": 1, "b": 2, "c": 3}


async def test_parallel_at_least_cancels_the_rest() -> None:
    import asyncio

    async def never(_: dict[str, Any]) -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    effects = ScriptedEffects({"fa": {"a": 1}, "fb": never, "fc": {"c": 3}})
    wf = workflow(
        [_parallel(completionType="atLeast", numCompleted=2)],
        functions=[fn("fa"), fn("fb"), fn("fc")],
    )
    result = await run(wf, {}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"a": 1, "c": 3}


async def test_parallel_branch_error_goes_to_state_on_errors() -> None:
    from tideflow.errors import FunctionCallError

    def boom(_: dict[str, Any]) -> None:
        raise FunctionCallError("down", code="503")

    states = [
        _parallel(onErrors=[{"errorRef": "Unavailable", "transition": "Fallback"}]),
        {"name": "Fallback", "type": "inject", "data": {"fallback": True}, "end": True},
    ]
    states[0].pop("end")
    states[0]["transition"] = "Fallback"
    wf = workflow(
        states,
        functions=[fn("fa"), fn("fb"), fn("fc")],
        errors=[{"name": "Unavailable", "code": "503"}],
    )
    effects = ScriptedEffects({"fa": {"a": 1}, "fb": boom, "fc": {"c": 3}})
    result = await run(wf, {"in": 1}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"in": 1, "fallback": True}


@pytest.mark.parametrize(
    ("mode", "batch", "expected_keys"),
    [
        ("sequential", None, ["F/iter:0", "F/iter:1", "F/iter:2"]),
        ("parallel", 2, ["F/iter:0", "F/iter:1", "F/iter:2"]),
        ("parallel", None, ["F/iter:0", "F/iter:1", "F/iter:2"]),
    ],
)
async def test_foreach_collects_results_in_order(
    mode: str, batch: int | None, expected_keys: list[Any]
) -> None:
    state = {
        "name": "F",
        "type": "foreach",
        "inputCollection": "${ .items }",
        "iterationParam": "it",
        "outputCollection": "${ .out }",
        "mode": mode,
        "actions": [call("sq", arguments={"v": "${ .it }", "k": "${ .k }"})],
        "end": True,
    }
    if batch is not None:
        state["batchSize"] = batch
    effects = ScriptedEffects({"sq": lambda a: a["v"] * a["v"] + a["k"]})
    result = await run(
        workflow([state], functions=[fn("sq")]), {"items": [1, 2, 3], "k": 100}, effects
    )
    assert isinstance(result, Completed)
    assert result.output == {"items": [1, 2, 3], "k": 100, "out": [101, 104, 109]}
    assert [k.rsplit("/action", 1)[0] for k in calls(effects)] == expected_keys


async def test_foreach_appends_to_existing_collection_and_expression_function() -> None:
    state = {
        "name": "F",
        "type": "foreach",
        "inputCollection": "${ .items }",
        "outputCollection": "${ .out }",
        "actions": [call("double")],
        "end": True,
    }
    wf = workflow([state], functions=[fn("double", "expression", "${ .item * 2 }")])
    result = await run(wf, {"items": [1, 2], "out": [0]})
    assert isinstance(result, Completed)
    assert result.output["out"] == [0, 2, 4]


async def test_foreach_missing_collection_is_a_handleable_error() -> None:
    states = [
        {
            "name": "F",
            "type": "foreach",
            "inputCollection": "${ .nothing }",
            "actions": [],
            "onErrors": [{"errorRef": "Bad", "end": True}],
            "end": True,
        }
    ]
    wf = workflow(states, errors=[{"name": "Bad", "code": "EXPRESSION"}])
    result = await run(wf, {"a": 1})
    assert isinstance(result, Completed)
    assert result.output == {"a": 1}
    plain = workflow([{**states[0], "onErrors": []}])
    failed = await run(plain, {"a": 1})
    assert isinstance(failed, Failed)
    assert failed.error.code == "EXPRESSION"
    assert "inputCollection" in failed.error.message
    assert failed.error.state == "F"


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("${ .items | length }", [3, 3, 3]),  # mentions the collection: iterations see it
        ("${ .k }", [100, 100, 100]),  # other state data is always visible
        ("${ .item }", [1, 2, 3]),
        (  # the whole data: the collection is kept
            "${ . }",
            [{"items": [1, 2, 3], "k": 100, "item": i} for i in (1, 2, 3)],
        ),
    ],
)
async def test_foreach_iteration_data(argument: str, expected: list[Any]) -> None:
    state = {
        "name": "F",
        "type": "foreach",
        "inputCollection": "${ .items }",
        "outputCollection": "${ .out }",
        "actions": [call("echo", arguments={"v": argument})],
        "end": True,
    }
    effects = ScriptedEffects({"echo": lambda a: a["v"]})
    wf = workflow([state], functions=[fn("echo")])
    result = await run(wf, {"items": [1, 2, 3], "k": 100}, effects)
    assert isinstance(result, Completed)
    assert result.output["out"] == expected


async def test_foreach_over_ten_thousand_items_with_an_expression_function() -> None:
    state = {
        "name": "F",
        "type": "foreach",
        "inputCollection": "${ .items }",
        "outputCollection": "${ .out }",
        "actions": [call("sq")],
        "end": True,
    }
    wf = workflow([state], functions=[fn("sq", "expression", "${ .item * .item }")])
    result = await run(wf, {"items": list(range(10_000))})
    assert isinstance(result, Completed)
    assert result.output["out"][-1] == 9999 * 9999
    assert len(result.output["out"]) == 10_000


async def test_parallel_num_completed_may_be_a_string() -> None:
    import asyncio

    async def never(_: dict[str, Any]) -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    effects = ScriptedEffects({"fa": {"a": 1}, "fb": never, "fc": never})
    wf = workflow(
        [_parallel(completionType="atLeast", numCompleted="1")],
        functions=[fn("fa"), fn("fb"), fn("fc")],
    )
    result = await run(wf, {}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"a": 1}


async def test_foreach_batch_size_string_limits_concurrency() -> None:
    import asyncio

    running = {"now": 0, "peak": 0}

    async def track(a: dict[str, Any]) -> int:
        running["now"] += 1
        running["peak"] = max(running["peak"], running["now"])
        await asyncio.sleep(0)
        running["now"] -= 1
        return int(a["v"])

    state = {
        "name": "F",
        "type": "foreach",
        "inputCollection": "${ .items }",
        "outputCollection": "${ .out }",
        "batchSize": "2",
        "actions": [call("track", arguments={"v": "${ .item }"})],
        "end": True,
    }
    effects = ScriptedEffects({"track": track})
    result = await run(
        workflow([state], functions=[fn("track")]), {"items": [1, 2, 3, 4, 5]}, effects
    )
    assert isinstance(result, Completed)
    assert result.output["out"] == [1, 2, 3, 4, 5]
    assert running["peak"] == 2


async def test_event_data_only_false_filters_see_context_attributes() -> None:
    events = [{"name": "Full", "type": "full", "source": "s", "dataOnly": False}]
    state = {
        "name": "E",
        "type": "event",
        "onEvents": [
            {
                "eventRefs": ["Full"],
                "eventDataFilter": {
                    "data": "${ {id: .id, who: .data.who} }",
                    "toStateData": "${ .ev }",
                },
            }
        ],
        "end": True,
    }
    ce = {"specversion": "1.0", "id": "e-7", "source": "s", "type": "full", "data": {"who": "ada"}}
    result = await run(workflow([state], events=events), {}, ScriptedEffects(events=[ce]))
    assert isinstance(result, Completed)
    assert result.output == {"ev": {"id": "e-7", "who": "ada"}}


async def test_callback_timeout_moves_on_without_the_event() -> None:
    state = {
        "name": "Cb",
        "type": "callback",
        "action": call("ask"),
        "eventRef": "Approved",
        "timeouts": {"eventTimeout": "PT1M"},
        "end": True,
    }
    effects = ScriptedEffects({"ask": {"asked": True}}, expire=["Cb/events"])
    wf = workflow([state], events=_event_defs(), functions=[fn("ask")])
    result = await run(wf, {}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"asked": True}
    assert effects.requests[1].timeout_seconds == 60.0


async def test_effect_free_loops_let_other_tasks_run() -> None:
    import asyncio

    states = [
        {
            "name": "Loop",
            "type": "switch",
            "dataConditions": [{"condition": "${ .n < 600 }", "transition": "Inc"}],
            "defaultCondition": {"end": True},
        },
        op_state(
            "Inc", [call("inc", actionDataFilter={"toStateData": "${ .n }"})], transition="Loop"
        ),
    ]
    wf = workflow(states, functions=[fn("inc", "expression", "${ .n + 1 }")])
    ticks: list[int] = []
    seen: list[int] = []

    async def ticker() -> None:
        for _ in range(3):
            ticks.append(1)
            await asyncio.sleep(0)

    result, _ = await asyncio.gather(
        run(wf, {"n": 0}, on_step=lambda _: seen.append(len(ticks))), ticker()
    )
    assert isinstance(result, Completed)
    assert result.output == {"n": 600}
    assert seen[0] == 0
    assert seen[-1] > 0  # the ticker ran while the loop was still going
