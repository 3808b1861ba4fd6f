"""onErrors matching, retries (retryRef, retryable/nonRetryable, autoRetries), error reporting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.interp_support import call, calls, fn, kinds, op_state, run, workflow
from tideflow.errors import FunctionCallError
from tideflow.runtime.effects import FunctionCall
from tideflow.runtime.fake import ScriptedEffects
from tideflow.runtime.result import Completed, Failed
from tideflow.workflow.model import Workflow


def failing(
    code: str, times: int = 10**9, result: object = None, retryable: bool = True
) -> Callable[[dict[str, Any]], object]:
    """A scripted function failing ``times`` times with ``code``, then returning ``result``."""
    state = {"n": 0}

    def answer(_: dict[str, Any]) -> object:
        state["n"] += 1
        if state["n"] <= times:
            raise FunctionCallError(f"failed with {code}", code=code, retryable=retryable)
        return result

    return answer


def _handled(error_def: dict[str, Any], code: str) -> tuple[Workflow, ScriptedEffects]:
    states = [
        op_state(
            "S",
            [call("f")],
            onErrors=[{"errorRef": error_def["name"], "transition": "H"}],
            transition="Next",
        ),
        {"name": "Next", "type": "inject", "data": {"path": "next"}, "end": True},
        {"name": "H", "type": "inject", "data": {"path": "handled"}, "end": True},
    ]
    return workflow(states, functions=[fn("f")], errors=[error_def]), ScriptedEffects(
        {"f": failing(code)}
    )


@pytest.mark.parametrize(
    ("error_def", "code", "handled"),
    [
        ({"name": "NotFound", "code": "404"}, "404", True),
        ({"name": "NotFound", "code": "HTTP:404"}, "404", True),
        ({"name": "NotFound", "code": "404"}, "HTTP:404", True),
        ({"name": "NotFound", "code": "404"}, "500", False),
        ({"name": "ValueError"}, "ValueError", True),
        ({"name": "Other"}, "ValueError", False),
    ],
)
async def test_error_definition_matches_by_code_or_name(
    error_def: dict[str, Any], code: str, handled: bool
) -> None:
    wf, effects = _handled(error_def, code)
    result = await run(wf, {}, effects)
    if handled:
        assert isinstance(result, Completed)
        assert result.output == {"path": "handled"}
    else:
        assert isinstance(result, Failed)
        assert result.error.code == code
        assert result.error.state == "S"


async def test_error_refs_list_and_end_handler() -> None:
    state = op_state("S", [call("f")], onErrors=[{"errorRefs": ["A", "B"], "end": True}])
    wf = workflow(
        [state],
        functions=[fn("f")],
        errors=[{"name": "A", "code": "1"}, {"name": "B", "code": "2"}],
    )
    result = await run(wf, {"k": 1}, ScriptedEffects({"f": failing("2")}))
    assert isinstance(result, Completed)
    assert result.output == {"k": 1}


async def test_unhandled_error_reports_defined_name_code_message_and_state() -> None:
    wf = workflow(
        [op_state("S", [call("f")])], functions=[fn("f")], errors=[{"name": "Gone", "code": "410"}]
    )
    result = await run(wf, {"d": 1}, ScriptedEffects({"f": failing("410")}))
    assert isinstance(result, Failed)
    assert result.error.to_json() == {
        "name": "Gone",
        "code": "410",
        "message": "failed with 410",
        "state": "S",
    }
    assert result.data == {"d": 1}
    assert kinds(result)[-2:] == ["error", "workflow.failed"]


RETRY = {"name": "R", "delay": "PT2S", "maxAttempts": 3, "multiplier": 2}


async def test_retry_ref_with_retryable_errors_retries_with_backoff() -> None:
    action = call("f", retryRef="R", retryableErrors=["Busy"])
    wf = workflow(
        [op_state("S", [action])],
        functions=[fn("f")],
        retries=[RETRY],
        errors=[{"name": "Busy", "code": "503"}],
    )
    effects = ScriptedEffects({"f": failing("503", times=2, result={"ok": True})})
    result = await run(wf, {}, effects)
    assert isinstance(result, Completed)
    assert result.output == {"ok": True}
    assert [(k, key, v) for k, key, v in effects.log if k == "sleep"] == [
        ("sleep", "S/action:0/attempt:1/backoff", 2.0),
        ("sleep", "S/action:0/attempt:2/backoff", 4.0),
    ]
    assert kinds(result, "retry") == ["retry", "retry"]


async def test_retries_exhausted_go_to_on_errors() -> None:
    action = call("f", retryRef="R", retryableErrors=["Busy"])
    state = op_state("S", [action], onErrors=[{"errorRef": "Busy", "end": True}])
    wf = workflow(
        [state], functions=[fn("f")], retries=[RETRY], errors=[{"name": "Busy", "code": "503"}]
    )
    effects = ScriptedEffects({"f": failing("503")})
    result = await run(wf, {"x": 1}, effects)
    assert isinstance(result, Completed)
    assert len(calls(effects, "call")) == 3


@pytest.mark.parametrize(
    ("action_extra", "attempts"),
    [
        ({"retryRef": "R"}, 1),  # not listed as retryable: no retry without autoRetries
        ({"retryableErrors": ["Busy"]}, 1),  # no retryRef: no retry
        ({"retryRef": "R", "retryableErrors": ["Other"]}, 1),
        ({"retryRef": "R", "retryableErrors": ["Busy"]}, 3),
    ],
)
async def test_without_auto_retries_only_listed_errors_with_retry_ref(
    action_extra: dict[str, Any], attempts: int
) -> None:
    wf = workflow(
        [op_state("S", [call("f", **action_extra)])],
        functions=[fn("f")],
        retries=[RETRY],
        errors=[{"name": "Busy", "code": "503"}, {"name": "Other", "code": "400"}],
    )
    effects = ScriptedEffects({"f": failing("503")})
    result = await run(wf, {}, effects)
    assert isinstance(result, Failed)
    assert len(calls(effects, "call")) == attempts


@pytest.mark.parametrize(
    ("action_extra", "retryable", "attempts"),
    [
        ({"retryRef": "R"}, True, 3),
        ({"retryRef": "R", "nonRetryableErrors": ["Busy"]}, True, 1),
        ({"retryRef": "R"}, False, 1),  # the host said retrying cannot help
        ({"retryRef": "R", "retryableErrors": ["Busy"]}, False, 3),
    ],
)
async def test_auto_retries_retry_everything_but_non_retryable(
    action_extra: dict[str, Any], retryable: bool, attempts: int
) -> None:
    wf = workflow(
        [op_state("S", [call("f", **action_extra)])],
        functions=[fn("f")],
        retries=[RETRY],
        errors=[{"name": "Busy", "code": "503"}],
        auto_retries=True,
    )
    effects = ScriptedEffects({"f": failing("503", retryable=retryable)})
    result = await run(wf, {}, effects)
    assert isinstance(result, Failed)
    assert len(calls(effects, "call")) == attempts


async def test_auto_retries_default_policy_without_retry_ref() -> None:
    wf = workflow([op_state("S", [call("f")])], functions=[fn("f")], auto_retries=True)
    effects = ScriptedEffects({"f": failing("X", times=8, result={"ok": 1})})
    result = await run(wf, {}, effects)
    assert isinstance(result, Completed)
    delays = [v for k, _, v in effects.log if k == "sleep"]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


async def test_jitter_is_deterministic_per_run_seed() -> None:
    retry = {"name": "R", "delay": "PT10S", "maxAttempts": 4, "jitter": 0.5}
    action = call("f", retryRef="R", retryableErrors=["Busy"])
    wf = workflow(
        [op_state("S", [action])],
        functions=[fn("f")],
        retries=[retry],
        errors=[{"name": "Busy", "code": "503"}],
    )

    async def delays() -> list[Any]:
        effects = ScriptedEffects({"f": failing("503")})
        await run(wf, {}, effects)
        return [v for k, _, v in effects.log if k == "sleep"]

    first, second = await delays(), await delays()
    assert first == second
    assert all(5.0 <= d <= 15.0 for d in first)
    assert len(set(first)) > 1


async def test_async_invocations_are_never_retried() -> None:
    action = {
        "functionRef": {"refName": "f", "invoke": "async"},
        "retryRef": "R",
        "retryableErrors": ["Busy"],
    }
    wf = workflow(
        [op_state("S", [action])],
        functions=[fn("f")],
        retries=[RETRY],
        errors=[{"name": "Busy", "code": "503"}],
    )
    effects = ScriptedEffects({"f": failing("503")})
    result = await run(wf, {}, effects)
    assert isinstance(result, Completed)
    assert len(calls(effects, "call")) == 1


async def test_python_exception_code_attribute_or_class_name() -> None:
    class Declined(Exception):
        code = "CARD_DECLINED"

    def declined(_: dict[str, Any]) -> None:
        raise Declined("card declined")

    def plain(_: dict[str, Any]) -> None:
        raise KeyError("missing")

    wf = workflow([op_state("S", [call("a")])], functions=[fn("a")])
    result = await run(wf, {}, ScriptedEffects({"a": declined}))
    assert isinstance(result, Failed)
    assert (result.error.code, result.error.message) == ("CARD_DECLINED", "card declined")
    result = await run(wf, {}, ScriptedEffects({"a": plain}))
    assert isinstance(result, Failed)
    assert result.error.code == "KeyError"


async def test_expression_errors_fail_with_expression_code() -> None:
    wf = workflow(
        [op_state("S", [call("f", arguments={"x": "${ .a | tonumber }"})])], functions=[fn("f")]
    )
    result = await run(wf, {"a": "not a number"}, ScriptedEffects({"f": 1}))
    assert isinstance(result, Failed)
    assert result.error.code == "EXPRESSION"
    assert result.error.name == "expression"


class _BrokenHost(ScriptedEffects):
    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc = exc

    async def call_function(self, call: FunctionCall) -> Any:
        raise self.exc


async def test_raw_host_exceptions_become_function_errors() -> None:
    state = op_state("S", [call("f")], onErrors=[{"errorRef": "Conn", "end": True}])
    wf = workflow(
        [state], functions=[fn("f")], errors=[{"name": "Conn", "code": "ConnectionError"}]
    )
    result = await run(wf, {"a": 1}, _BrokenHost(ConnectionError("refused")))
    assert isinstance(result, Completed)
    assert result.output == {"a": 1}


async def test_host_errors_propagate_instead_of_failing_the_instance() -> None:
    from tideflow.errors import HostError, StoreError

    wf = workflow([op_state("S", [call("f")])], functions=[fn("f")])
    with pytest.raises(HostError):
        await run(wf, {}, _BrokenHost(HostError("journal gone")))
    with pytest.raises(StoreError):
        await run(wf, {}, _BrokenHost(StoreError("db down")))


async def test_unusable_retry_definition_fails_the_action_that_uses_it() -> None:
    from dataclasses import replace

    from tideflow.workflow.model import RetryDef

    action = call("f", retryRef="R", retryableErrors=["Busy"])
    wf = workflow(
        [op_state("S", [action])],
        functions=[fn("f")],
        retries=[RETRY],
        errors=[{"name": "Busy", "code": "503"}],
    )
    broken = replace(wf, retries=(RetryDef(name="R", max_attempts=3, delay="ten seconds"),))
    result = await run(broken, {}, ScriptedEffects({"f": failing("503")}))
    assert isinstance(result, Failed)
    assert (result.error.code, result.error.state) == ("VALIDATION", "S")
    assert "delay" in result.error.message
