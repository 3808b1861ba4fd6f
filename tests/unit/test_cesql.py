"""CESQL parser and evaluator: what the TCK leaves open, pinned down."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tideflow.errors import CesqlParseError, ExpressionError
from tideflow.triggers.cesql import BUILTINS, Result, compile_expression
from tideflow.triggers.cesql.like import like_matcher
from tideflow.triggers.cesql.parser import MAX_DEPTH, Literal
from tideflow.triggers.cesql.values import INT32_MAX, INT32_MIN, wrap_int32

EVENT = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}


def run(expression: str, **attributes: object) -> Result:
    return compile_expression(expression).evaluate({**EVENT, **attributes})


def value(expression: str, **attributes: object) -> object:
    result = run(expression, **attributes)
    assert result.errors == (), result.errors
    return result.value


def kinds(result: Result) -> list[str]:
    return [str(error.kind) for error in result.errors]


# -- syntax ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 2 - 3", 5),  # left to right
        ("100 / 10 / 5", 2),
        ("4-1", 3),
        ("4 - -1", 5),
        ("-(3 + 4)", -7),
        ("+5", 5),
        ("1 + 2 = 3", True),
        ("NOT TRUE AND FALSE", False),  # (NOT TRUE) AND FALSE
        ("NOT FALSE = FALSE", False),  # (NOT FALSE) = FALSE: unary binds tightest
        ("FALSE AND FALSE OR TRUE", True),  # (FALSE AND FALSE) OR TRUE
        ("TRUE OR FALSE AND FALSE", False),  # left to right: (TRUE OR FALSE) AND FALSE
        ("TRUE OR (FALSE AND FALSE)", True),
        ("1 IN (1, 2) = TRUE", True),  # IN binds tighter than =
        ("'ab' LIKE 'a%' = TRUE", True),
    ],
)
def test_precedence_and_associativity(expression: Any, expected: Any) -> None:
    assert value(expression) == expected


def test_keywords_functions_and_identifiers_are_case_insensitive() -> None:
    assert value("tRuE aNd NoT fAlSe") is True
    assert value("x In ('a') AnD x NoT lIkE 'b%' and ExIsTs X", x="a") is True
    assert value("lower('ABC') = 'abc' AND Concat_Ws('-', 'a', 'b') = 'a-b'") is True
    assert value("TYPE = 't' AND Source = '/s'") is True


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'it''s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        ("'a\\'b'", "a'b"),
        ('"a\\"b"', 'a"b'),
        ("'back\\slash'", "back\\slash"),
        ("'tab\there'", "tab\there"),
        ("'naïve ☃'", "naïve ☃"),
    ],
)
def test_string_literals(expression: Any, expected: Any) -> None:
    assert value(expression) == expected


def test_integer_literal_range() -> None:
    assert value("2147483647") == INT32_MAX
    assert value("-2147483648") == INT32_MIN
    for text in ("2147483648", "-2147483649", "-(2147483648)", "99999999999999999999"):
        with pytest.raises(CesqlParseError, match="outside the 32-bit range"):
            compile_expression(text)


@pytest.mark.parametrize(
    ("expression", "column", "reason"),
    [
        ("", 1, "the expression is empty"),
        ("   ", 4, "the expression is empty"),
        ("'abc", 1, "unterminated string literal"),
        ("type = 'a' AND (source", 23, "expected ')' but found end of expression"),
        ("1 +", 4, "expected an expression but found end of expression"),
        ("a == 1", 4, "expected an expression but found '='"),
        ("1 2", 3, "unexpected '2' after a complete expression"),
        ("a @ b", 3, "unexpected character '@'"),
        ("EXISTS 'x'", 8, "expected an attribute name after EXISTS"),
        ("EXISTS my_ext", 8, "expected an attribute name after EXISTS"),
        ("x NOT 5", 7, "expected LIKE or IN after NOT"),
        ("x IN ()", 7, "expected an expression but found ')'"),
        ("x IN 'a'", 6, "expected '(' after IN"),
        ("x LIKE y", 8, "the pattern of LIKE must be a string literal"),
        ("my_ext = 1", 1, "invalid attribute name 'my_ext'"),
        ("1abc(2)", 1, "invalid function name '1abc'"),
        ("LENGTH('a' 'b')", 12, "expected ',' or ')'"),
        ("+x", 2, "'+' must be followed by an integer literal"),
        ("TRUE FALSE", 6, "unexpected 'FALSE' after a complete expression"),
    ],
)
def test_parse_errors_say_where(expression: Any, column: Any, reason: Any) -> None:
    with pytest.raises(CesqlParseError) as caught:
        compile_expression(expression)
    error = caught.value
    assert (error.column, error.reason[: len(reason)]) == (column, reason)
    assert str(error) == f"parse error at column {column}: {error.reason}"
    assert error.expression == expression
    assert isinstance(error, ExpressionError)


def test_nesting_is_bounded() -> None:
    deep = "(" * (MAX_DEPTH + 5) + "1" + ")" * (MAX_DEPTH + 5)
    with pytest.raises(CesqlParseError, match="nested more than"):
        compile_expression(deep)
    chain = " OR ".join(["x = 'a'"] * (MAX_DEPTH + 5))
    with pytest.raises(CesqlParseError, match="nested more than"):
        compile_expression(chain)
    ands = " AND ".join(["x = 'a'"] * (MAX_DEPTH // 2))
    assert compile_expression(ands).matches({**EVENT, "x": "a"}) is True


# -- integers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("-7 / 2", -3),
        ("7 / -2", -3),
        ("-7 % 3", -1),
        ("7 % -3", 1),
        ("-7 % -3", -1),
        ("0 / 5", 0),
    ],
)
def test_truncated_division(expression: Any, expected: Any) -> None:
    assert value(expression) == expected


@pytest.mark.parametrize(
    ("expression", "wrapped"),
    [
        ("2147483647 + 1", INT32_MIN),
        ("-2147483648 - 1", INT32_MAX),
        ("65536 * 65536", 0),
        ("-2147483648 / -1", INT32_MIN),
        ("-n", INT32_MIN),
    ],
)
def test_overflow_wraps_with_a_math_error(expression: Any, wrapped: Any) -> None:
    result = run(expression, n=INT32_MIN)
    assert (result.value, kinds(result)) == (wrapped, ["math"])


@given(st.integers(INT32_MIN, INT32_MAX), st.integers(INT32_MIN, INT32_MAX))
def test_arithmetic_matches_a_64_bit_reference(a: Any, b: Any) -> None:
    event = {**EVENT, "a": a, "b": b}
    for op, exact in (("+", a + b), ("-", a - b), ("*", a * b)):
        result = compile_expression(f"a {op} b").evaluate(event)
        assert result.value == wrap_int32(exact)
        assert bool(result.errors) == (exact != wrap_int32(exact))
    if b != 0:
        quotient = abs(a) // abs(b) * (-1 if (a < 0) != (b < 0) else 1)
        assert compile_expression("a / b").evaluate(event).value == wrap_int32(quotient)
        assert compile_expression("a % b").evaluate(event).value == a - b * quotient


# -- casts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected", "errors"),
    [
        ("'2147483648' + 0", 0, ["cast"]),
        ("'+12' + 0", 12, []),
        ("' 12' + 0", 0, ["cast"]),
        ("'\uff11\uff12' + 0", 0, ["cast"]),  # full-width digits are not base-10 ASCII
        ("'abc' = 5", False, ["cast"]),
        ("5 = '5'", True, []),
        ("1 = TRUE", False, ["cast"]),  # implicit Integer -> Boolean is a CastError
        ("TRUE = 1", True, []),
        ("10 AND TRUE", False, ["cast"]),
        ("'yes' OR TRUE", True, ["cast"]),
        ("BOOL(7) AND 'TRUE'", True, []),
        ("1 IN ('x', 1)", True, ["cast"]),
        ("LEFT('abc', 'x')", "", ["cast"]),
    ],
)
def test_casts(expression: Any, expected: Any, errors: Any) -> None:
    result = run(expression)
    assert (result.value, kinds(result)) == (expected, errors)


# -- attributes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("text", "text"),
        (7, 7),
        (True, True),
        (2**31, "2147483648"),  # not a 32-bit Integer: a String
        (1.5, "1.5"),
        ({"a": [1, 2]}, '{"a":[1,2]}'),
        ([1, "x"], '[1,"x"]'),
    ],
)
def test_attribute_values(raw: Any, expected: Any) -> None:
    assert value("ext", ext=raw) == expected


def test_null_attribute_and_data_are_missing() -> None:
    for expression in ("ext", "data", "ext = 'x'", "data LIKE '%'"):
        result = run(expression, ext=None, data="payload")
        assert (result.value, kinds(result)) == (False, ["missingAttribute"])
    assert value("EXISTS ext OR EXISTS data", ext=None, data="payload") is False


def test_required_attributes_always_exist() -> None:
    assert compile_expression("EXISTS id AND EXISTS source").evaluate({}).value is True


def test_evaluation_does_not_touch_the_event() -> None:
    event = {**EVENT, "n": "5", "m": {"k": 1}}
    before = repr(event)
    compile_expression("n + 1 = 6 AND m LIKE '%k%' AND UPPER(type) = 'T'").evaluate(event)
    assert repr(event) == before


# -- errors and results ------------------------------------------------------------


def test_error_in_a_sub_expression_gives_the_zero_value_of_the_root() -> None:
    assert (run("LENGTH(missing) + 1").value, kinds(run("LENGTH(missing) + 1"))) == (
        0,
        ["missingAttribute"],
    )
    assert run("UPPER(LEFT('abc', -1))").value == ""
    assert kinds(run("UPPER(LEFT('abc', -1))")) == ["functionEvaluation"]
    assert run("CONCAT('a', missing)").value == ""


def test_errors_of_the_root_keep_its_value() -> None:
    result = run("SUBSTRING('abc', 9)")
    assert (result.value, kinds(result), result.ok) == ("", ["functionEvaluation"], False)
    assert "position 9" in result.errors[0].message
    assert run("'x' + 5 / 0").value == 0
    assert kinds(run("'x' + 5 / 0")) == ["math"]
    assert kinds(run("'x' / 0")) == ["cast", "math"]
    assert str(run("5 / 0").errors[0]) == "math: division by zero"


def test_matches_is_fail_fast() -> None:
    event = {**EVENT, "flag": "TRUE", "n": "3"}
    assert compile_expression("flag").matches(event) is False  # String 'TRUE' is not Boolean
    assert compile_expression("n").matches(event) is False
    assert compile_expression("NOT 10").matches(event) is False  # true, but with a CastError
    assert compile_expression("missing OR TRUE").matches(event) is False
    assert compile_expression("missing AND FALSE").matches(event) is False
    assert compile_expression("FALSE AND missing").matches(event) is False
    assert compile_expression("TRUE OR missing").matches(event) is True  # short circuit


def test_flag_attribute_passes_when_boolean() -> None:
    assert compile_expression("flag").matches({**EVENT, "flag": True}) is True


def test_static_type_and_problems() -> None:
    assert compile_expression("LENGTH(type)").type is int
    assert compile_expression("LENGTH(type)").type_name == "Integer"
    assert compile_expression("type").type is None
    assert compile_expression("type").type_name == "Any"
    expression = compile_expression("NOPE(1) OR SUBSTRING('a')")
    assert expression.problems == (
        "unknown function NOPE with 1 argument(s) at column 1",
        "unknown function SUBSTRING with 1 argument(s) at column 12",
    )
    assert kinds(expression.evaluate(EVENT)) == ["missingFunction"]


def test_constants_fold_unless_they_fail() -> None:
    tree = compile_expression("2 * (3 + 4) = 14").tree
    assert isinstance(tree, Literal)
    assert tree.value is True
    assert compile_expression("UPPER('a') = 'A' AND type = 't'").matches(EVENT) is True
    assert not isinstance(compile_expression("1 / 0").tree, Literal)
    assert kinds(run("1 / 0")) == ["math"]


# -- functions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("TRIM('\u00a0\u2003 x \u3000\n')", "x"),
        ("LENGTH(TRIM('\u001cx'))", 2),  # control characters are not whitespace
        ("LENGTH('naïve')", 5),
        ("UPPER('straße')", "STRASSE"),
        ("SUBSTRING('abc', 3)", "c"),
        ("SUBSTRING('abc', -3)", "abc"),
        ("SUBSTRING('abc', 2, 0)", ""),
        ("SUBSTRING('abc', 2, 99)", "bc"),
        ("RIGHT('abc', 0)", ""),
        ("LEFT('abc', 0)", ""),
        ("CONCAT(1, TRUE, 'x')", "1truex"),
        ("CONCAT_WS(', ', 'a', 2)", "a, 2"),
        ("ABS(-5) + ABS(5)", 10),
        ("STRING(-0)", "0"),
        ("INT('-007')", -7),
        ("IS_INT('-12') AND IS_INT(3) AND NOT IS_INT('1.5') AND NOT IS_INT(TRUE)", True),
        ("IS_BOOL('False') AND IS_BOOL(TRUE) AND NOT IS_BOOL(1)", True),
        ("IS_STRING('1') AND NOT IS_STRING(1)", True),
    ],
)
def test_functions(expression: Any, expected: Any) -> None:
    assert value(expression) == expected


def test_substring_length_must_not_be_negative() -> None:
    result = run("SUBSTRING('abc', 1, -1)")
    assert (result.value, kinds(result)) == ("", ["functionEvaluation"])


def test_builtins_table() -> None:
    required = {"ABS", "LENGTH", "CONCAT", "CONCAT_WS", "LOWER", "UPPER", "TRIM", "LEFT"}
    assert required | {"RIGHT", "SUBSTRING", "INT", "BOOL", "STRING"} <= set(BUILTINS)
    assert len(BUILTINS["SUBSTRING"]) == 2


# -- LIKE --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pattern", "expected"),
    [
        ("a.c", "a.c", True),
        ("abc", "a.c", False),  # '.' is not a wildcard
        ("a+b", "a+%", True),
        ("line1\nline2", "line1%", True),
        ("line1\nline2", "%1_line2", True),
        ("", "%", True),
        ("", "_", False),
        ("é", "_", True),
        ("a\\b", "a\\\\b", True),  # \\ in a pattern is one literal backslash
        ("100%", "100\\%", True),
        ("1000", "100\\%", False),
        ("a_b", "a\\_b", True),
        ("axb", "a\\_b", False),
        ("ab", "a%%b", True),
        ("xay", "%a%", True),
        ("xy", "%a%", False),
        ("ABC", "abc", False),  # case-sensitive
    ],
)
def test_like_patterns(text: Any, pattern: Any, expected: Any) -> None:
    assert like_matcher(pattern)(text) is expected
    escaped = pattern.replace("'", "''")
    assert (
        compile_expression(f"x LIKE '{escaped}'").evaluate({**EVENT, "x": text}).value is expected
    )


def _reference_like(text: str, pattern: str) -> bool:
    """Plain backtracking matcher over wildcard-only patterns."""
    if not pattern:
        return not text
    if pattern[0] == "%":
        return any(_reference_like(text[i:], pattern[1:]) for i in range(len(text) + 1))
    if text and (pattern[0] == "_" or pattern[0] == text[0]):
        return _reference_like(text[1:], pattern[1:])
    return False


@given(st.text("ab%_", max_size=8), st.text("ab", max_size=8))
def test_like_agrees_with_a_reference_matcher(pattern: Any, text: Any) -> None:
    assert like_matcher(pattern)(text) is _reference_like(text, pattern)


@given(st.text("ab%_\\", max_size=10), st.text("ab%_\\", max_size=10))
def test_like_with_escapes_agrees_with_a_regex(pattern: Any, text: Any) -> None:
    regex = ""
    pos = 0
    while pos < len(pattern):
        char, nxt = pattern[pos], pattern[pos + 1 : pos + 2]
        if char == "\\" and nxt and nxt in "%_\\":
            regex += re.escape(nxt)
            pos += 2
            continue
        regex += ".*" if char == "%" else "." if char == "_" else re.escape(char)
        pos += 1
    assert like_matcher(pattern)(text) is (re.fullmatch(regex, text, re.DOTALL) is not None)


def test_like_does_not_backtrack_on_hostile_patterns() -> None:
    # A backtracking regex takes minutes here; segment matching stays linear.
    long_a = "a" * 200_000
    assert like_matcher("%a%a%a%a%b")(long_a) is False
    assert like_matcher("%a%a%a%a%a")(long_a) is True
    assert like_matcher("_%a_a%_a%b_")(long_a + "b") is False
    assert compile_expression("x LIKE '%a%a%a%b'").matches({**EVENT, "x": long_a}) is False


def test_like_skips_runs_of_underscores_in_one_step() -> None:
    # '_' * 5000 as 5000 single-character steps at every position took 25 s on 1 MB
    megabyte = "a" * 1_000_000
    assert like_matcher("%a" + "_" * 5000 + "b%")(megabyte) is False
    assert like_matcher("%a" + "_" * 5000 + "b%")(megabyte + "b") is True
    assert like_matcher("%_" + "a" * 500 + "b%")(megabyte) is False  # a leading run too
    assert like_matcher("%" + "_" * 3 + "a_b%")("xxxxa1b") is True
    assert like_matcher("%" + "_" * 3 + "a_b%")("xxa1b") is False


ATTRIBUTE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**33), 2**33),
    st.text("0123456789+- ab", max_size=12),
    st.sampled_from(["100", "0100", "999999999", "2147483648", "-5", "TRUE", "ab%c"]),
)

# Each fused fast path beside an equivalent expression that takes the general path.
FAST_AND_GENERAL = [
    ("x = '100'", "CONCAT(x) = '100'"),
    ("x != 'ab%c'", "CONCAT(x) != 'ab%c'"),
    ("x = 100", "(x) = (100 + 0 * LENGTH(y))"),
    ("x > 100", "x > (100 + 0 * LENGTH(y))"),
    ("INT(x) <= 100", "INT(x) <= (100 + 0 * LENGTH(y))"),
    ("x LIKE '1%'", "CONCAT(x) LIKE '1%'"),
    ("x LIKE '%0'", "CONCAT(x) LIKE '%0'"),
    ("x NOT LIKE '%b%c'", "NOT (CONCAT(x) LIKE '%b%c')"),
    ("x IN ('100', 'TRUE', 5)", "x IN (CONCAT('100', LEFT(y, 0)), 'TRUE', 5 + 0 * LENGTH(y))"),
    ("x > 5 AND y = 'a' AND EXISTS x", "(x > 5 AND y = 'a') AND EXISTS x"),
]


@given(ATTRIBUTE_VALUES, ATTRIBUTE_VALUES)
def test_fast_paths_agree_with_the_general_path(x: Any, y: Any) -> None:
    event = dict(EVENT)
    for name, raw in (("x", x), ("y", y)):
        if raw is not None:
            event[name] = raw
    event["y"] = event.get("y", "a")
    for fast, general in FAST_AND_GENERAL:
        fast_result = compile_expression(fast).evaluate(event)
        general_result = compile_expression(general).evaluate(event)
        assert (fast_result.value, kinds(fast_result)) == (
            general_result.value,
            kinds(general_result),
        ), (fast, general, event)
        assert compile_expression(fast).matches(event) is (
            fast_result.value is True and not fast_result.errors
        )


TOKENS = [
    "x", "y", "missing", "data", "id", "1", "0", "-", "+", "*", "/", "%", "=", "!=", "<>", "<",
    ">=", "(", ")", ",", "'a'", "'%'", "\"1\"", "TRUE", "false", "AND", "or", "XOR", "NOT",
    "LIKE", "IN", "EXISTS", "INT", "BOOL", "STRING", "LENGTH", "CONCAT", "SUBSTRING", "ABS",
    "LEFT", "NOPE", "2147483647", "'",
]  # fmt: skip


@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12), ATTRIBUTE_VALUES)
def test_any_token_soup_parses_or_fails_cleanly_and_evaluation_is_total(
    tokens: list[str], x: Any
) -> None:
    source = " ".join(tokens)
    try:
        expression = compile_expression(source)
    except CesqlParseError as error:
        column = error.column
        assert 1 <= column <= len(source) + 1
        return
    event = {**EVENT, "y": "7"} if x is None else {**EVENT, "x": x, "y": "7"}
    result = expression.evaluate(event)
    assert type(result.value) in (str, int, bool)
    if isinstance(result.value, int) and not isinstance(result.value, bool):
        assert INT32_MIN <= result.value <= INT32_MAX
    assert expression.matches(event) is (result.value is True and not result.errors)
