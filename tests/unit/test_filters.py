"""Data filters and merging, table-driven from the 0.8 spec's "Workflow Data" text."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.conformance import SW08_EXAMPLES, skip_unless
from tideflow.errors import ExpressionError
from tideflow.workflow.data_filters import (
    apply_state_filter,
    event_filter_input,
    filter_action_input,
    filter_action_result,
    filter_event_data,
    get_at,
    merge,
    merge_action_result,
    merge_at,
    merge_event_data,
    put_at,
    set_path,
)

EXAMPLES = SW08_EXAMPLES

# -- state data filters ("State data filters") --------------------------------------

PRODUCE: dict[str, Any] = {
    "fruits": ["apple", "orange", "pear"],
    "vegetables": [
        {"veggieName": "potato", "veggieLike": True},
        {"veggieName": "broccoli", "veggieLike": False},
    ],
}
POTATO = {"veggieName": "potato", "veggieLike": True}


@pytest.mark.parametrize(
    ("expression", "lang", "expected"),
    [
        # first example: only the fruits
        ("${ {fruits: .fruits} }", "jq", {"fruits": ["apple", "orange", "pear"]}),
        # second example, input part
        ("${ {vegetables: .vegetables} }", "jq", {"vegetables": PRODUCE["vegetables"]}),
        # second example, "the second way"
        (
            "${ {vegetables: .vegetables[] | select(.veggieLike == true)} }",
            "jq",
            {"vegetables": POTATO},
        ),
        # absent, or selecting nothing: not filtered
        (None, "jq", PRODUCE),
        ("", "jq", PRODUCE),
        ("${ .orders }", "jq", PRODUCE),
        ("${ empty }", "jq", PRODUCE),
        # JSONPath
        ("$.fruits", "jsonpath", ["apple", "orange", "pear"]),
        ("$.vegetables[?(@.veggieLike == true)]", "jsonpath", POTATO),
        ("$.orders", "jsonpath", PRODUCE),
    ],
)
def test_state_data_filter(expression: str | None, lang: str, expected: Any) -> None:
    assert apply_state_filter(PRODUCE, expression, None, lang) == expected


def test_state_filter_input_then_output() -> None:
    state_data = apply_state_filter(PRODUCE, "${ {vegetables: .vegetables} }")
    output = apply_state_filter(
        state_data, "${ {vegetables: .vegetables[] | select(.veggieLike == true)} }"
    )
    assert output == {"vegetables": POTATO}


def test_state_filter_sees_variables() -> None:
    variables = {"CONST": {"keep": "fruits"}}
    assert apply_state_filter(PRODUCE, "${ {($CONST.keep): .[$CONST.keep]} }", variables) == {
        "fruits": ["apple", "orange", "pear"]
    }


# -- action data filters ("Action data filters") -----------------------------------

BREAD_AND_PASTA: dict[str, Any] = {
    "breads": ["baguette", "brioche", "rye"],
    "pasta": ["penne", "spaghetti", "ravioli"],
}


@pytest.mark.parametrize(
    ("state_data", "results", "to_state_data", "use_results", "expected"),
    [
        # "We can use an action data filter to filter only the breads data"
        (
            {},
            "${ {breads: .breads} }",
            None,
            True,
            {"breads": ["baguette", "brioche", "rye"]},
        ),
        # results + toStateData into an existing (empty) array
        (
            {"itemsToBuyAtStore": []},
            "${ [ .breads[0], .pasta[1] ] }",
            "${ .itemsToBuyAtStore }",
            True,
            {"itemsToBuyAtStore": ["baguette", "spaghetti"]},
        ),
        # no filter: the whole result is merged at the top level
        ({"x": 1}, None, None, True, {"x": 1, **BREAD_AND_PASTA}),
        # toStateData names a location that does not exist yet: it is created
        (
            {"x": 1},
            "${ .pasta[0] }",
            "${ .order.first }",
            True,
            {"x": 1, "order": {"first": "penne"}},
        ),
        # useResults false: results and toStateData ignored, nothing merged
        ({"x": 1}, "${ .breads }", "${ .y }", False, {"x": 1}),
        # results selecting nothing: nothing merged
        ({"x": 1}, "${ .cakes }", "${ .y }", True, {"x": 1}),
    ],
)
def test_action_result_merge(
    state_data: Any,
    results: str | None,
    to_state_data: str | None,
    use_results: bool,
    expected: Any,
) -> None:
    before = copy.deepcopy(state_data)
    assert (
        merge_action_result(state_data, BREAD_AND_PASTA, results, to_state_data, use_results)
        == expected
    )
    assert state_data == before  # inputs are never mutated


def test_action_filter_definition_example() -> None:
    # fromStateData: "${ .language }", results: "${ .results.greeting }",
    # toStateData: "${ .finalgreeting }"
    state_data = {"language": {"code": "es"}, "name": "Ann"}
    assert filter_action_input(state_data, "${ .language }") == {"code": "es"}
    result = {"results": {"greeting": "Hola Ann"}, "took": "3ms"}
    assert filter_action_result(result, "${ .results.greeting }") == "Hola Ann"
    assert merge_action_result(
        state_data, result, "${ .results.greeting }", "${ .finalgreeting }"
    ) == {"language": {"code": "es"}, "name": "Ann", "finalgreeting": "Hola Ann"}


@pytest.mark.parametrize(
    ("from_state_data", "lang", "expected"),
    [
        (None, "jq", {"hello": {"spanish": "Hola"}, "n": 1}),
        ("${ .hello }", "jq", {"spanish": "Hola"}),
        ("${ .nothing }", "jq", None),
        ("$.hello", "jsonpath", {"spanish": "Hola"}),
    ],
)
def test_from_state_data(from_state_data: str | None, lang: str, expected: Any) -> None:
    assert filter_action_input(
        {"hello": {"spanish": "Hola"}, "n": 1}, from_state_data, None, lang
    ) == (expected)


def test_action_filters_in_jsonpath() -> None:
    merged = merge_action_result(
        {"itemsToBuyAtStore": ["rye"]},
        BREAD_AND_PASTA,
        "$.breads",
        "$.itemsToBuyAtStore",
        lang="jsonpath",
    )
    assert merged == {"itemsToBuyAtStore": ["rye", "baguette", "brioche"]}


def test_action_filter_error_names_the_expression() -> None:
    with pytest.raises(ExpressionError) as info:
        merge_action_result({}, {"breads": "x"}, "${ .breads[0] }")
    assert info.value.expression == "${ .breads[0] }"
    with pytest.raises(ExpressionError) as info:
        merge_action_result({"a": "text"}, {"b": 1}, None, "${ .a.b }")
    assert info.value.expression == "${ .a.b }"


# -- event data filters ("Event data filters") ---------------------------------------

EVENT: dict[str, Any] = {
    "specversion": "1.0",
    "type": "customer-arrival-type",
    "source": "customer-arrival-event-source",
    "id": "e-1",
    "data": {"customer": {"name": "John Michaels", "age": 40}, "store": "north"},
}


@pytest.mark.parametrize(
    ("data", "to_state_data", "use_data", "data_only", "expected"),
    [
        # no filter: the entire payload is merged into the state data
        (None, None, True, True, {"seen": 1, **EVENT["data"]}),
        # data + toStateData (the "multiple filters" example, step 2)
        (
            "${ .customer }",
            "${ .customerInfo }",
            True,
            True,
            {"seen": 1, "customerInfo": {"name": "John Michaels", "age": 40}},
        ),
        # eventDataFilter definition example: "${ .data.results }" over the whole event
        ("${ .data.store }", "${ .where }", True, False, {"seen": 1, "where": "north"}),
        (
            "${ {kind: .type, from: .source} }",
            None,
            True,
            False,
            {
                "seen": 1,
                "kind": "customer-arrival-type",
                "from": "customer-arrival-event-source",
            },
        ),
        # useData false: data and toStateData ignored, nothing merged
        ("${ .customer }", "${ .customerInfo }", False, True, {"seen": 1}),
        # dataOnly: false with no data expression merges the whole CloudEvent
        (None, "${ .event }", True, False, {"seen": 1, "event": EVENT}),
    ],
)
def test_event_data_merge(
    data: str | None, to_state_data: str | None, use_data: bool, data_only: bool, expected: Any
) -> None:
    state_data = {"seen": 1}
    assert merge_event_data(state_data, EVENT, data, to_state_data, use_data, data_only) == expected
    assert state_data == {"seen": 1}


def test_event_filter_input() -> None:
    assert event_filter_input(EVENT) == EVENT["data"]
    assert event_filter_input(EVENT, data_only=False) == EVENT
    assert event_filter_input({"id": "1", "data_base64": "AAE="}) == "AAE="
    assert event_filter_input({"id": "1"}) is None
    assert filter_event_data({"id": "1"}, "${ .x }") is None


def test_event_filter_variables_and_jsonpath() -> None:
    variables = {"WORKFLOW": {"instanceId": "i-9"}}
    assert filter_event_data(
        EVENT, "${ {by: $WORKFLOW.instanceId, n: .customer.name} }", True, variables
    ) == {
        "by": "i-9",
        "n": "John Michaels",
    }
    assert merge_event_data({}, EVENT, "$.customer.name", "$.who", lang="jsonpath") == {
        "who": "John Michaels"
    }


# -- "Using multiple data filters": the whole walk-through ----------------------------

GREETINGS = {
    "hello": {"english": "Hello", "spanish": "Hola", "german": "Hallo", "russian": "Здравствуйте"},
    "goodbye": {
        "english": "Goodbye",
        "spanish": "Adiós",
        "german": "Auf Wiedersehen",
        "russian": "Прощай",
    },
}


def test_using_multiple_data_filters_walkthrough() -> None:
    workflow_input = {"greetings": GREETINGS}
    # (1) the state's input filter (written with a trailing space in the spec)
    state_data = apply_state_filter(workflow_input, "${ .greetings } ")
    assert state_data == GREETINGS
    # (2) the event's data filter
    event = {"type": "customer-arrival-type", "data": {"customer": {"name": "John Michaels"}}}
    state_data = merge_event_data(state_data, event, "${ .customer }", "${ .customerInfo }")
    assert state_data == {**GREETINGS, "customerInfo": {"name": "John Michaels"}}
    # (3) the action's data filter
    assert filter_action_input(state_data, "${ .hello }") == GREETINGS["hello"]
    result = {
        "execInfo": {"execTime": "10ms", "failures": False},
        "greetingMessageResult": "Hola John Michaels!",
    }
    state_data = merge_action_result(
        state_data, result, "${ .greetingMessageResult }", "${ .finalCustomerGreeting }"
    )
    assert state_data == {
        **GREETINGS,
        "customerInfo": {"name": "John Michaels"},
        "finalCustomerGreeting": "Hola John Michaels!",
    }
    # (4) the output filter: jq's `.finalCustomerGreeting` is the string itself. The
    # spec's prose shows {"finalCustomerGreeting": ...}, which the expression cannot give.
    assert apply_state_filter(state_data, "${ .finalCustomerGreeting }") == "Hola John Michaels!"


# -- "Data Merging" ----------------------------------------------------------------

MICHAEL = {"name": "Michael", "address": "6789 street", "zip": "6789"}
JOHN = {"name": "John", "address": "1234 street", "zip": "12345"}
JANE = {"name": "Jane", "address": "4321 street", "zip": "54321"}


@pytest.mark.parametrize(
    ("target", "source", "expected"),
    [
        # objects: both sides' keys, the incoming value wins (the spec's customer example)
        (
            {"customer": {"name": "John", "address": "1234 street", "zip": "12345"}},
            {"customer": {"name": "John", "zip": "54321"}},
            {"customer": {"name": "John", "address": "1234 street", "zip": "54321"}},
        ),
        # arrays: concatenated, unique elements of both (the spec's customers example)
        (
            {"customers": [MICHAEL]},
            {"customers": [JOHN, JANE]},
            {"customers": [MICHAEL, JOHN, JANE]},
        ),
        (
            {"customers": [MICHAEL, JOHN]},
            {"customers": [JOHN, JANE]},
            {"customers": [MICHAEL, JOHN, JANE]},
        ),
        ([1, 2, 2], [2, 3, 3], [1, 2, 3]),
        ([{"a": 1, "b": 2}], [{"b": 2, "a": 1}], [{"a": 1, "b": 2}]),  # key order does not matter
        ([1, True, 1.0, "1"], [True, 1, None], [1, True, "1", None]),  # true is not 1
        # numbers and strings overwrite
        ({"age": 20}, {"age": 30}, {"age": 30}),
        ({"name": "a"}, {"name": "b"}, {"name": "b"}),
        (20, 30, 30),
        # deep: nested objects and arrays keep the same rules
        (
            {"a": {"b": {"c": 1, "list": [1]}, "keep": True}},
            {"a": {"b": {"d": 2, "list": [2]}}},
            {"a": {"b": {"c": 1, "d": 2, "list": [1, 2]}, "keep": True}},
        ),
        # an explicit null inside an object overwrites
        ({"a": 1, "b": 2}, {"a": None}, {"a": None, "b": 2}),
        # nothing there yet: the incoming value
        (None, {"a": 1}, {"a": 1}),
        ({}, {"a": 1}, {"a": 1}),
        # mismatched types (undefined in 0.8): the incoming value replaces
        ({"a": 1}, "Welcome!", "Welcome!"),
        ({"a": [1]}, {"a": {"x": 1}}, {"a": {"x": 1}}),
        ({"a": {"x": 1}}, {"a": [1]}, {"a": [1]}),
        ([1], {"x": 1}, {"x": 1}),
    ],
)
def test_merge(target: Any, source: Any, expected: Any) -> None:
    before = (copy.deepcopy(target), copy.deepcopy(source))
    assert merge(target, source) == expected
    assert (target, source) == before


def test_merge_at_with_nothing_to_merge_leaves_data_alone() -> None:
    data = {"a": 1}
    assert merge_at(data, None, None) is data
    assert merge_at(data, "${ .b }", None) is data


def test_merge_at_merges_into_an_existing_location() -> None:
    data = {"customerInfo": {"name": "John", "zip": "1"}, "other": [1]}
    merged = merge_at(data, "${ .customerInfo }", {"zip": "2", "age": 40})
    assert merged == {"customerInfo": {"name": "John", "zip": "2", "age": 40}, "other": [1]}
    assert data["customerInfo"] == {"name": "John", "zip": "1"}


def test_merge_at_root_of_non_object_state_data() -> None:
    assert merge_at("old", None, {"a": 1}) == {"a": 1}
    assert merge_at([1], None, [2]) == [1, 2]


# -- locations ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "target", "value", "expected"),
    [
        ({}, "${ .customer.greeting }", "hi", {"customer": {"greeting": "hi"}}),
        (
            {"customer": {"name": "A"}},
            ".customer.greeting",
            "hi",
            {"customer": {"name": "A", "greeting": "hi"}},
        ),
        ({"a": {"b": 1}}, "${ .a.b }", {"x": 1}, {"a": {"b": {"x": 1}}}),  # set, not merge
        ({}, "${ .list[2] }", "c", {"list": [None, None, "c"]}),
        ({"list": [1, 2]}, "${ .list[-1] }", 9, {"list": [1, 9]}),
        ({"a": 1}, "${ . }", {"b": 2}, {"b": 2}),
        (None, "${ .a }", 1, {"a": 1}),
    ],
)
def test_put_at(data: Any, target: str, value: Any, expected: Any) -> None:
    before = copy.deepcopy(data)
    assert put_at(data, target, value) == expected
    assert data == before


def test_put_at_jsonpath() -> None:
    assert put_at({}, "$.customer.greeting", "hi", lang="jsonpath") == {
        "customer": {"greeting": "hi"}
    }


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        ({"a": "text"}, ("a", "b"), "cannot set key 'b' at .a: it holds str, not an object"),
        ({"a": {}}, ("a", 0), "cannot set index 0 at .a: it holds dict"),
        ({"a": [1]}, ("a", -3), "cannot set index -3 at .a: it holds a shorter array"),
    ],
)
def test_set_path_errors(data: Any, path: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ExpressionError, match=message.replace("[", r"\[").replace(".", r"\.")):
        set_path(data, path, 1)


def test_get_at() -> None:
    data = {"a": [{"b": 1}], "s": "x"}
    assert get_at(data, ("a", 0, "b")) == 1
    assert get_at(data, ("a", -1, "b")) == 1
    assert get_at(data, ("a", 5)) is None
    assert get_at(data, ("s", "b")) is None
    assert get_at(data, ()) is data


# -- spec examples from the conformance set --------------------------------------------


def _example(name: str) -> Any:
    skip_unless(EXAMPLES)
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def test_eventbasedgreeting_output() -> None:
    event = _example("eventbasedgreeting.event.GreetingEvent.json")
    result = _example("eventbasedgreeting.function-result.greetingFunction.json")
    expected = _example("eventbasedgreeting.output.json")
    state_data = merge_event_data({}, event, "${ .greet }", "${ .greet }")
    assert state_data == {"greet": {"name": "John"}}
    state_data = merge_action_result(state_data, result)
    assert apply_state_filter(state_data, "${ .payload.greeting }") == expected


def test_greeting_string_result_replaces_object_state_data() -> None:
    # FEATURES.md inconsistency 10: a string result merged at the root. Tideflow's rule:
    # the incoming value replaces the state data.
    state_data = _example("greeting.input.json")
    result = _example("greeting.function-result.greetingFunction.json")
    assert merge_action_result(state_data, result, "${ .greeting }") == (
        "Welcome to Serverless Workflow, John!"
    )


# -- properties ---------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["a", "b"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(target=json_values, source=json_values)
def test_merge_properties(target: Any, source: Any) -> None:
    before = (copy.deepcopy(target), copy.deepcopy(source))
    merged = merge(target, source)
    assert (target, source) == before
    if isinstance(target, dict) and isinstance(source, dict):
        assert set(merged) == set(target) | set(source)
        for key in set(target) - set(source):
            assert merged[key] == target[key]
    elif isinstance(target, list) and isinstance(source, list):
        assert all(item in merged for item in (*target, *source))
        assert len(merged) <= len(target) + len(source)
    else:
        assert merged == source
