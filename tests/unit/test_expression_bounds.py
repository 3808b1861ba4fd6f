"""Which jq expressions are evaluated in-process (bounded) and which under the budget."""

from __future__ import annotations

import pytest

from tideflow.workflow._bounds import is_bounded
from tideflow.workflow.expressions import compile_expression

BOUNDED = [
    ".a + .b",
    ".customer.address.city",
    "$CONST.x + .a",
    "{name: .customer.name, total: (.items | map(.price) | add)}",
    '"hello \\(.name), you owe \\(.total | tostring)"',
    "[.items[] | select(.price > 10)]",
    "if .a then [] else .b end",
    ".a // []",
    'split(",") | length',
    "{if: 1, reduce: .x, while: 2}",  # keywords as object keys are keys
    "{a, $x}",
    ".. | numbers",
    '@base64 "x\\(.a)"',
    "length > 3 and (.x | not)",
    ".a | to_entries | map(.key)",
    "[.,.] | [.,.] | [.,.]",  # copies its input 8 times
    ".a # a comment\n + 1",
    ".a - 1",
    "-.a + 2",
    "10 - .a",
    ".item * 2",  # a number, or a string repeated twice: two copies at most
    "2 * .a + 1",
    "(.a + .b) * 3",
]

UNBOUNDED = [
    "def f: f; f",
    "def f: [f]; f",
    "reduce .[] as $x (0; . + $x)",
    "foreach .[] as $x (0; . + 1)",
    "[range(.n)]",
    "[limit(3; repeat(1))]",
    "[.[] | while(. < 100; . + 1)]",
    "until(. > 100; . * 2)",
    "recurse(.[])",
    "label $out | 1, break $out",
    ". as $x | $x",
    ".a = 1",  # .[1e9] = 1 allocates
    ".a |= . + 1",
    ".a * .b",  # "x" * 1e9 allocates
    ".a * 1e9",
    ".a * 65",  # more copies than MAX_GROWTH
    ".a * 8 * 8 * 8",
    'test("(a+)+$")',  # regular expressions can backtrack without end
    'split("a"; "g")',
    'gsub("a"; "b")',
    "{a: .[], b: .[]}",  # two iterations: a cartesian product
    ".items | map(.x) | map(.y)",
    ".items[] | $CONST",  # a copy of a variable per item
    "$__d",
    "[.,.] | [.,.] | [.,.] | [.,.] | [.,.] | [.,.] | [.,.]",  # copies it 128 times
    "input",
    "env",
    "walk(.)",
    "combinations",
    "some_unknown_function",
    '"unclosed \\(.a',
    "`",
    ".a - .b",  # [..] - [..] is n times m
    '.s | contains("x")',
    ".s | fromjson",
]


@pytest.mark.parametrize("body", BOUNDED)
def test_expressions_that_cannot_run_away_are_bounded(body: str) -> None:
    assert is_bounded(body)
    assert compile_expression(body).bounded


@pytest.mark.parametrize("body", UNBOUNDED)
def test_expressions_that_can_loop_or_blow_up_are_not(body: str) -> None:
    assert not is_bounded(body)


def test_plain_paths_and_jsonpath_stay_in_process() -> None:
    assert compile_expression("${ .a.b[0] }").bounded
    assert compile_expression("$.a[?(@.b > 1)]", "jsonpath").bounded
    assert not compile_expression("${ def f: f; f }").bounded
