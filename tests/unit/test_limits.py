"""Depth, size and count limits on values, definitions and foreach collections."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.unit.interp_support import call, fn, op_state, run, workflow
from tideflow import jsontext, limits
from tideflow.errors import EventRejected, ValueLimitExceeded, WorkflowLoadError
from tideflow.eventstore.codec import decode_event, encode_event
from tideflow.http_binding import decode_structured
from tideflow.limits import Limits, check_definition, check_value
from tideflow.runtime.fake import ScriptedEffects
from tideflow.runtime.result import Completed, Failed, within_limits
from tideflow.workflow.loader import parse_document

BIG = 123456789012345678901234567890

# 9 levels of 9 aliases: a few hundred bytes, 9**9 strings expanded.
BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def event(data: object, event_id: str = "1") -> dict[str, object]:
    return {"specversion": "1.0", "id": event_id, "source": "/s", "type": "t", "data": data}


@pytest.fixture
def small() -> Iterator[Limits]:
    chosen = Limits(value_depth=8, value_bytes=1000, foreach_items=2, definition_nodes=50)
    limits.configure(chosen)
    yield chosen
    limits.configure(Limits())


def test_a_value_nested_too_deep_names_the_limit_and_where() -> None:
    check_value({"a": nested(127)}, "the input")  # 128 containers deep: the limit
    with pytest.raises(ValueLimitExceeded) as caught:
        check_value({"a": nested(128)}, "the input")
    assert caught.value.code == "VALUE_DEPTH_LIMIT"
    assert caught.value.limit == "value_depth"
    assert caught.value.path[:3] == ("a", 0, 0)
    assert "the input is nested deeper than 128" in caught.value.message


def test_thousands_deep_is_refused_without_recursion() -> None:
    with pytest.raises(ValueLimitExceeded):
        check_value(nested(100_000), "the input")


def test_a_value_too_large_names_the_limit(small: Limits) -> None:
    check_value({"text": "x" * 900}, "the input")
    with pytest.raises(ValueLimitExceeded) as caught:
        check_value({"text": "x" * 1000}, "the input")
    assert caught.value.code == "VALUE_BYTES_LIMIT"


def test_numbers_pass_without_encoding_unless_the_size_limit_is_below_any_number() -> None:
    for value in (0, -(2**63), 2**64 - 1, -1.7976931348623157e308, True, None):
        check_value(value, "the result")
    with pytest.raises(ValueLimitExceeded):  # beyond 64 bits: walked, and too large
        check_value(10**40, "the result", Limits(value_bytes=30))
    with pytest.raises(ValueLimitExceeded) as caught:  # a limit this small: encoded after all
        check_value(-1.7976931348623157e308, "the result", Limits(value_bytes=20))
    assert caught.value.limit == "value_bytes"


def test_brackets_in_strings_do_not_refuse_a_shallow_value(small: Limits) -> None:
    check_value({"text": "[{" * 100}, "the input")  # many brackets, depth 1: the walk decides


def test_the_depth_found_past_the_bracket_bound_names_its_path(small: Limits) -> None:
    check_value([[1], [2], [3], [4], [5]], "the input")  # 6 brackets, 2 deep
    with pytest.raises(ValueLimitExceeded) as caught:
        check_value({"a": [1, {"b": nested(8)}]}, "the input")
    assert caught.value.limit == "value_depth"
    assert caught.value.path[:4] == ("a", 1, "b", 0)


def test_values_orjson_does_not_write_are_walked(small: Limits) -> None:
    check_value({"n": BIG, 1: "a non-string key"}, "the input")
    with pytest.raises(ValueLimitExceeded) as deep:
        check_value({"n": BIG, "a": nested(9)}, "the input")
    assert deep.value.limit == "value_depth"
    with pytest.raises(ValueLimitExceeded) as large:
        check_value({"n": BIG, "text": "x" * 1000}, "the input")
    assert large.value.limit == "value_bytes"


def test_a_yaml_alias_bomb_is_refused_before_it_expands() -> None:
    assert len(BOMB.encode()) < 512
    with pytest.raises(WorkflowLoadError, match="DEFINITION_NODES_LIMIT"):
        parse_document(BOMB)


def test_aliases_are_counted_each_time_they_are_used(small: Limits) -> None:
    shared = list(range(10))
    check_definition({"a": shared, "b": shared, "c": shared, "d": shared})  # 45 values
    with pytest.raises(ValueLimitExceeded) as caught:
        check_definition({"a": shared, "b": shared, "c": shared, "d": shared, "e": shared})
    assert caught.value.code == "DEFINITION_NODES_LIMIT"


def test_an_alias_cycle_is_left_to_validation() -> None:
    looped: list[object] = [1]
    looped.append(looped)
    check_definition({"a": looped})  # no error, no endless walk: validation reports it


def test_a_deep_definition_is_refused() -> None:
    text = json.dumps({"id": "x", "states": nested(200)})
    with pytest.raises(WorkflowLoadError, match="VALUE_DEPTH_LIMIT"):
        parse_document(text)


def test_big_integers_stay_exact_through_json_text() -> None:
    text = jsontext.dumps({"n": BIG, "m": 1})
    assert jsontext.loads(text) == {"n": BIG, "m": 1}
    assert jsontext.loads(text.encode()) == {"n": BIG, "m": 1}
    assert jsontext.loads(b'{"small": 12}') == {"small": 12}
    with pytest.raises(ValueError, match="NaN"):
        jsontext.loads(b'{"n": 1234567890123456789012, "x": NaN}')


def test_big_integers_in_event_data_stay_exact_from_http_to_the_store() -> None:
    body = json.dumps(event({"big": BIG})).encode()
    decoded = decode_structured(body)
    assert decoded["data"] == {"big": BIG}
    row = encode_event(decoded, 0)
    assert decode_event(row[3])["data"] == {"big": BIG}


def test_an_event_nested_too_deep_is_rejected_with_the_limit() -> None:
    with pytest.raises(EventRejected) as caught:
        encode_event(event(nested(300)), 0)
    assert caught.value.status == 400
    assert caught.value.reason.startswith("VALUE_DEPTH_LIMIT: event [0]")


def test_an_event_too_large_is_rejected_with_413(small: Limits) -> None:
    with pytest.raises(EventRejected) as caught:
        encode_event(event("x" * 2000), 3)
    assert caught.value.status == 413
    assert caught.value.index == 3


async def test_an_instance_whose_data_grows_too_deep_fails_with_the_code() -> None:
    deep = nested(200)
    wf = workflow(
        [op_state("A", [call("grow", actionDataFilter={"toStateData": "${ .deep }"})])],
        functions=[fn("grow")],
    )
    result = await run(wf, {"n": 1}, ScriptedEffects({"grow": deep}))
    assert isinstance(result, Failed)
    assert result.error.code == "VALUE_DEPTH_LIMIT"
    assert result.data == {"n": 1}  # the last data within the limits, not the deep one


async def test_an_input_too_deep_fails_without_keeping_it() -> None:
    wf = workflow([{"name": "A", "type": "inject", "data": {}, "end": True}])
    result = await run(wf, {"a": nested(300)})
    assert isinstance(result, Failed)
    assert result.error.code == "VALUE_DEPTH_LIMIT"
    assert result.data is None


async def test_a_foreach_over_too_many_items_fails_with_the_code(small: Limits) -> None:
    state = {
        "name": "Each",
        "type": "foreach",
        "inputCollection": "${ .items }",
        "iterationParam": "item",
        "actions": [],
        "end": True,
    }
    wf = workflow([state])
    assert isinstance(await run(wf, {"items": [1, 2]}), Completed)
    result = await run(wf, {"items": [1, 2, 3]})
    assert isinstance(result, Failed)
    assert result.error.code == "FOREACH_ITEMS_LIMIT"


async def test_a_state_output_filter_building_too_deep_fails_with_the_code(
    small: Limits,
) -> None:
    deep = "${ {a: {b: {c: {d: {e: {f: {g: {h: {i: 1}}}}}}}}} }"
    state = {"name": "A", "type": "inject", "data": {}, "end": True}
    wf = workflow([{**state, "stateDataFilter": {"output": deep}}])
    result = await run(wf, {})
    assert isinstance(result, Failed)
    assert result.error.code == "VALUE_DEPTH_LIMIT"


def test_a_run_result_beyond_the_limits_becomes_a_failure(small: Limits) -> None:
    ok = Completed(output={"a": 1})
    assert within_limits(ok) is ok
    failed = within_limits(Completed(output={"a": nested(20)}))
    assert isinstance(failed, Failed)
    assert failed.error.code == "VALUE_DEPTH_LIMIT"
    assert failed.data is None
