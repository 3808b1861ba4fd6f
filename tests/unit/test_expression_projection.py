"""jq is handed only the top-level fields an expression reads, when that is certain.

Each expression in ``SAME`` is evaluated by Tideflow (with the projection)
and by jq itself on the whole input: the outputs, or the failure, must be
the same. ``read_fields`` names the fields, or refuses (``None``) every form
that could read more of the input than its named fields.
"""

from __future__ import annotations

from typing import Any

import jq  # type: ignore[import-not-found]
import pytest

from tideflow.errors import ExpressionError
from tideflow.workflow._projection import read_fields
from tideflow.workflow.expressions import compile_expression

DATA: dict[str, Any] = {
    "sum": 3,
    "n": 2,
    "items": list(range(50)),
    "order": {"lines": [{"qty": 2}, {"qty": 5}], "id": "o-1"},
    "name": "x",
    "flag": False,
    "i": 1,
}
VARIABLES = {"WORKFLOW": {"id": "w"}, "x": {"a": 7}}

SAME = [
    (".sum + .n", ("sum", "n")),
    (".sum + $x.a", ("sum",)),
    (".order.lines[.i].qty + 2", ("order", "i")),
    (".order.lines[0]?.qty // 0", ("order",)),
    ('[.sum, .n, 1, "s", null, true]', ("sum", "n")),
    ("(.sum + .n) / (.n - 1) + 2 % 3", ("sum", "n")),
    (".flag or .sum > 2 and .n <= 2", ("flag", "sum", "n")),
    (".missing", ("missing",)),
    (".items[]", ("items",)),
    ('-.sum, .name == "x"', ("sum", "name")),
    ("$WORKFLOW.id", ()),
    ("1 + 2", ()),
    (".name + 1", ("name",)),  # fails the same way: string and number cannot be added
    ('.name + "\\\\(x"', ("name",)),  # an escaped backslash, then "(": no interpolation
]

REFUSED = [
    ".",
    "..",
    ".[0]",
    '."sum"',
    ".order | .id",
    ". as $d | $d.sum",
    "length",
    "not",
    "{sum}",
    "{a: .sum}",
    '"\\(.sum)"',
    "@base64",
    ".sum # comment",
    ".items[1:2]",
    "if .flag then 1 else 2 end",
    "keys",
    "$x | .sum",
]


def _jq_itself(body: str) -> list[Any] | str:
    program = jq.compile(body, args={"x": VARIABLES["x"], "WORKFLOW": VARIABLES["WORKFLOW"]})
    try:
        return list(program.input_value(DATA))
    except ValueError:
        return "error"


def _tideflow(body: str) -> list[Any] | str:
    try:
        return compile_expression(body).evaluate_all(DATA, VARIABLES)
    except ExpressionError:
        return "error"


@pytest.mark.parametrize(("body", "fields"), SAME)
def test_an_expression_handed_its_fields_only_answers_as_on_the_whole_input(
    body: str, fields: tuple[str, ...]
) -> None:
    assert read_fields(body) == fields
    assert compile_expression(body).reads == fields
    assert _tideflow(body) == _jq_itself(body)
    first = _jq_itself(body)
    if first != "error" and first:
        assert compile_expression(body).evaluate(DATA, VARIABLES) == first[0]


@pytest.mark.parametrize("body", REFUSED)
def test_forms_that_may_read_more_are_handed_the_whole_input(body: str) -> None:
    assert read_fields(body) is None


def test_a_loop_over_a_big_collection_hands_jq_only_what_it_reads() -> None:
    """The 1.0 ``for`` shape: ``.sum + $n`` over data holding the collection. jq is given
    the one field: a field that cannot be turned into JSON (a set) fails only an
    expression handed the whole input."""
    data = {"sum": 1, "numbers": {1, 2, 3}}
    assert compile_expression("${ .sum + $n }").evaluate(data, {"n": 2}) == 3
    with pytest.raises(ExpressionError):
        compile_expression("${ .sum + $n + (.numbers | length) }").evaluate(data, {"n": 2})
