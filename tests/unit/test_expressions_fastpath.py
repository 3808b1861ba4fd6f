"""Plain paths are walked in Python; they must agree with jq itself, errors included."""

from __future__ import annotations

from typing import Any

import jq  # type: ignore[import-not-found]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tideflow.errors import ExpressionError
from tideflow.workflow import _fastpath
from tideflow.workflow.expressions import compile_expression

DATA: list[Any] = [
    None,
    {"a": {"b": [1, {"c": "x"}], "s": "text", "n": None}, "k y": 5, "list": [10, 20, 30]},
    [1, 2, 3],
    "text",
    7,
    True,
    {},
]

PATHS = [
    ".",
    ".a",
    ".a.b",
    ".a.b[1].c",
    ".a.b[5]",
    ".a.b[-1]",
    ".a.b[-9]",
    ".a.s",
    ".a.s.x",
    ".a.s[0]",
    ".a.n.deeper[3].x",
    '.["k y"]',
    '."k y"',
    ".list[0]",
    ".[0]",
    ".[-1]",
    ".missing.more",
    '.a["b"][0]',
]


def _jq(path: str, data: Any) -> tuple[str, Any]:
    try:
        return ("ok", jq.compile(path).input_value(data).first())
    except ValueError:
        return ("error", None)


def _ours(path: str, data: Any) -> tuple[str, Any]:
    try:
        return ("ok", compile_expression(path).evaluate(data))
    except ExpressionError:
        return ("error", None)


@pytest.mark.parametrize("path", PATHS)
def test_plain_paths_take_the_fast_path(path: str) -> None:
    assert _fastpath.parse(path) is not None


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("data", DATA, ids=lambda d: type(d).__name__)
def test_fast_path_agrees_with_jq(path: str, data: Any) -> None:
    assert _ours(path, data) == _jq(path, data)


@pytest.mark.parametrize(
    "body",
    [".a + .b", ".a?", ".a | .b", "[.a]", ".a[]", ".a[1:]", "$__loc__", "$ENV.PATH", ".."],
)
def test_other_expressions_go_to_jq(body: str) -> None:
    parsed = _fastpath.parse(body)
    expr = compile_expression(body)
    assert parsed is None or expr._fast is None


def test_variable_paths() -> None:
    variables = {"CONST": {"url": "http://x", "list": [1, 2]}}
    assert compile_expression("${ $CONST.url }").evaluate({}, variables) == "http://x"
    assert compile_expression("${ $CONST.list[-1] }").evaluate({}, variables) == 2
    assert compile_expression("${ $CONST }").evaluate({}, variables) == variables["CONST"]
    assert compile_expression("${ $CONST.url }").evaluate({}, None) is None
    with pytest.raises(ExpressionError, match="Cannot index string"):
        compile_expression("${ $CONST.url.x }").evaluate({}, variables)


def test_results_are_fresh_values() -> None:
    data = {"a": {"b": [1, 2]}}
    result = compile_expression(".a").evaluate(data)
    result["b"].append(3)
    assert data == {"a": {"b": [1, 2]}}
    assert compile_expression(".a.b").evaluate_all(data) == [[1, 2]]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["a", "b", ""]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3)
    ),
    max_leaves=12,
)
steps = st.lists(
    st.sampled_from([".a", ".b", ".c", "[0]", "[1]", "[-1]", '["a"]']), min_size=1, max_size=4
)


@settings(max_examples=200, deadline=None)
@given(data=json_values, parts=steps)
def test_fast_path_agrees_with_jq_on_random_data(data: Any, parts: list[str]) -> None:
    path = "".join(parts)
    if path.startswith("["):
        path = "." + path
    assert _ours(path, data) == _jq(path, data)
