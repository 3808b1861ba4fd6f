"""Workflow expressions: the ``${ }`` text rules, jq and JSONPath evaluation, variables, errors."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tideflow.errors import ExpressionError
from tideflow.workflow.expressions import (
    compile_expression,
    evaluate_value,
    function_reference,
    is_expression,
    is_interpolation,
    resolve_functions,
    unwrap,
)
from tideflow.workflow.exprtext import referenced_functions, segments

# The state data of the spec's "Workflow Expressions" section.
APPLICANT: dict[str, Any] = {
    "applicant": {
        "name": "John Doe",
        "age": 26,
        "email": "johndoe@something.com",
        "address": {"streetAddress": "Naist street", "city": "Nara", "postalCode": "630-0192"},
        "phoneNumbers": [
            {"type": "iPhone", "number": "0123-4567-8888"},
            {"type": "home", "number": "0123-4567-8910"},
        ],
    }
}

VARIABLES: dict[str, Any] = {
    "CONST": {"greeting": "Hola", "limits": {"max": 3}},
    "SECRETS": {"API_KEY": "s3cr3t"},
    "WORKFLOW": {"id": "greet", "instanceId": "i-1", "name": "Greet", "version": "1.0"},
    "item": {"n": 7},
}


# -- the text of expressions --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${ .a }", True),
        ("${.a}", True),
        ("  ${ .greetings } ", True),  # the spec's own example has a trailing space
        ("${ {a: .b} }", True),
        ('${ "}" + .a }', True),
        ('${ "a\\"}" }', True),
        ('${ "\\(.a | {x: 1})}" }', True),
        ("${ .a } and ${ .b }", False),
        ("Book ${ .book.title } is already on loan", False),
        (".a", False),
        ("${ .a", False),
        ("$.a.b", False),
        (3, False),
        (None, False),
        ({"x": "${ .a }"}, False),
    ],
)
def test_is_expression(value: Any, expected: bool) -> None:
    assert is_expression(value) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${ .a }", ".a"),
        (" ${ {a: .b} } ", "{a: .b}"),
        (".counts.current >= .counts.max", ".counts.current >= .counts.max"),
        ("  .a  ", ".a"),
        ("${ .a } ${ .b }", "${ .a } ${ .b }"),
    ],
)
def test_unwrap(text: str, expected: str) -> None:
    assert unwrap(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Book ${ .book.title } is already on loan", True),
        ("${ .a }-${ .b }", True),
        ("${ .a }", False),
        ("no expression", False),
        ("unclosed ${ .a", False),
        (5, False),
    ],
)
def test_is_interpolation(value: Any, expected: bool) -> None:
    assert is_interpolation(value) is expected


def test_segments_split_text_and_expressions() -> None:
    assert segments('a ${ .x } b ${ {"k": "}"} }') == [
        (False, "a "),
        (True, ".x"),
        (False, " b "),
        (True, '{"k": "}"}'),
    ]


# -- expression functions (fn:) ----------------------------------------------------

FUNCTIONS = {
    "IsAdultApplicant": ".applicant | .age > 18",
    "Name": "${ .applicant.name }",
    "Loop1": "${ fn:Loop2 }",
    "Loop2": "fn:Loop1 and true",
}


def test_fn_reference_from_the_spec_example() -> None:
    assert function_reference("${ fn:IsAdultApplicant }") == "IsAdultApplicant"
    assert function_reference("${ .a }") is None
    text = resolve_functions("${ fn:IsAdultApplicant }", FUNCTIONS)
    assert compile_expression(text).evaluate_bool(APPLICANT) is True


def test_fn_references_inside_a_larger_expression() -> None:
    text = resolve_functions(
        '${ fn:IsAdultApplicant and (fn:Name | length > 3) and "fn:x" }', FUNCTIONS
    )
    assert referenced_functions(text) == []
    assert compile_expression(text).evaluate(APPLICANT) is True
    assert referenced_functions("${ fn:A + fn:B }") == ["A", "B"]


def test_fn_reference_errors() -> None:
    with pytest.raises(ExpressionError, match=r"fn:Nope names no expression function"):
        resolve_functions("${ fn:Nope }", FUNCTIONS)
    with pytest.raises(ExpressionError, match=r"Loop1 -> Loop2 -> Loop1"):
        resolve_functions("${ fn:Loop1 }", FUNCTIONS)
    with pytest.raises(ExpressionError, match=r"must be resolved") as info:
        compile_expression("${ fn:IsAdultApplicant }")
    assert info.value.expression == "${ fn:IsAdultApplicant }"


def test_fn_reference_in_jsonpath_is_replaced_whole() -> None:
    text = resolve_functions("${ fn:City }", {"City": "$.applicant.address.city"})
    assert compile_expression(text, "jsonpath").evaluate(APPLICANT) == "Nara"


# -- jq ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "data", "expected"),
    [
        ("${ .applicant.name }", APPLICANT, "John Doe"),
        (
            "${ .applicant | {applicant: .name, "
            "contactInfo: { email: .email, phone: .phoneNumbers }} }",
            APPLICANT,
            {
                "applicant": "John Doe",
                "contactInfo": {
                    "email": "johndoe@something.com",
                    "phone": APPLICANT["applicant"]["phoneNumbers"],
                },
            },
        ),
        ("${ .inputVersion }", {"inputVersion": "1.0.0"}, "1.0.0"),
        ("${ .a + .b }", {"a": 1, "b": 2}, 3),
        (".counts.current >= .counts.max", {"counts": {"current": 3, "max": 3}}, True),
        ("${ .missing }", {}, None),
        ("${ . }", [1, "x", None], [1, "x", None]),
        ("${ .a # a comment\n }", {"a": 1}, 1),
        ("${ def twice: . * 2; .n | twice }", {"n": 4}, 8),
    ],
)
def test_jq_evaluates(text: str, data: Any, expected: Any) -> None:
    assert compile_expression(text).evaluate(data) == expected


def test_jq_several_outputs_give_the_first_and_evaluate_all_gives_every_one() -> None:
    expr = compile_expression("${ .items[] }")
    assert expr.evaluate({"items": [3, 4, 5]}) == 3
    assert expr.evaluate_all({"items": [3, 4, 5]}) == [3, 4, 5]


def test_jq_no_output_is_none() -> None:
    expr = compile_expression("${ .items[] | select(. > 10) }")
    assert expr.evaluate({"items": [1]}) is None
    assert expr.evaluate_all({"items": [1]}) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("false", False),
        ("null", False),
        ("empty", False),
        (".missing", False),
        ("true", True),
        ("0", True),
        ('""', True),
        ("[]", True),
        ("{}", True),
    ],
)
def test_evaluate_bool_uses_jq_truthiness(text: str, expected: bool) -> None:
    assert compile_expression(text).evaluate_bool({}) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('${ $CONST.greeting + " " + .name }', "Hola Ann"),
        ("${ $CONST.limits.max }", 3),
        ("${ $SECRETS.API_KEY }", "s3cr3t"),
        ("${ $WORKFLOW.instanceId }", "i-1"),
        ("${ [$WORKFLOW.id, $WORKFLOW.name, $WORKFLOW.version] }", ["greet", "Greet", "1.0"]),
        ("${ $item.n * 2 }", 14),
        ('${ "\\($CONST.greeting), \\(.name)!" }', "Hola, Ann!"),
        ("${ .name as $CONST | $CONST }", "Ann"),  # a local binding shadows the variable
        ("${ $UNKNOWN }", None),
    ],
)
def test_jq_variables(text: str, expected: Any) -> None:
    assert compile_expression(text).evaluate({"name": "Ann"}, VARIABLES) == expected


def test_jq_variables_change_between_evaluations_without_recompiling() -> None:
    expr = compile_expression("${ $CONST.x + .y }")
    assert expr.variables == ("CONST",)
    assert expr.evaluate({"y": 1}, {"CONST": {"x": 1}}) == 2
    assert expr.evaluate({"y": 1}, {"CONST": {"x": 10}}) == 11
    assert compile_expression("${ $CONST.x + .y }") is expr


def test_jq_variables_absent_are_null() -> None:
    assert compile_expression("${ $CONST }").evaluate({}, None) is None
    assert compile_expression("${ [$CONST, $SECRETS] }").evaluate({}, {"CONST": 1}) == [1, None]


def test_jq_cannot_read_the_engine_environment() -> None:
    assert compile_expression("${ env }").evaluate({}) == {}
    assert compile_expression("${ $ENV }").evaluate({}) == {}
    assert compile_expression("${ $ENV.PATH }").evaluate({}) is None


def test_jq_syntax_error_carries_jq_message_and_expression() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("${ .a + }")
    error = info.value
    assert error.expression == "${ .a + }"
    assert "invalid jq expression '${ .a + }'" in error.message
    assert "syntax error" in error.message
    assert "line 1, column 4" in error.message  # the user's column, not the prelude's
    assert "def env" not in error.message


@pytest.mark.parametrize(
    ("text", "lang", "message"),
    [
        ("${ }", "jq", "empty expression"),
        (".a", "xpath", "unknown expression language 'xpath'"),
        ("${ .a | nosuchfn }", "jq", "nosuchfn/0 is not defined"),
        ("$.a[", "jsonpath", "invalid JSONPath expression '$.a['"),
    ],
)
def test_compile_errors(text: str, lang: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(message)) as info:
        compile_expression(text, lang)
    assert info.value.expression == text


@pytest.mark.parametrize("text", ['${ include "x"; . }', '${ import "data" as $d; $d }'])
def test_jq_modules_are_not_available(text: str) -> None:
    with pytest.raises(ExpressionError, match="jq modules"):
        compile_expression(text)


def test_compile_rejects_a_non_string() -> None:
    with pytest.raises(ExpressionError, match="must be a string, not int"):
        compile_expression(3)


@pytest.mark.parametrize(
    ("text", "data", "message"),
    [
        ("${ .a.b }", {"a": [1]}, 'Cannot index array with string \\("b"\\)'),
        ("${ .a + 1 }", {"a": "x"}, "cannot be added"),
        ('${ error("boom") }', {}, "boom"),
    ],
)
def test_evaluation_errors(text: str, data: Any, message: str) -> None:
    expr = compile_expression(text)
    for evaluate in (expr.evaluate, expr.evaluate_all, expr.evaluate_bool):
        with pytest.raises(ExpressionError, match=message) as info:
            evaluate(data, VARIABLES)
        assert info.value.expression == text
        assert info.value.message.startswith(f"cannot evaluate {text!r}")


def test_expression_is_frozen() -> None:
    expr = compile_expression("${ .a }")
    with pytest.raises(dataclasses.FrozenInstanceError):
        expr.source = "${ .b }"  # type: ignore[misc]
    assert (expr.source, expr.lang, expr.body) == ("${ .a }", "jq", ".a")


@pytest.mark.parametrize(("text", "lang"), [("${ .a + $CONST.x }", "jq"), ("$.a", "jsonpath")])
def test_expression_survives_copy_and_pickle(text: str, lang: str) -> None:
    expr = compile_expression(text, lang)
    for clone in (copy.copy(expr), copy.deepcopy(expr), pickle.loads(pickle.dumps(expr))):
        assert clone == expr
        assert clone.evaluate({"a": 1}, {"CONST": {"x": 1}}) == expr.evaluate(
            {"a": 1}, {"CONST": {"x": 1}}
        )


# -- JSONPath ----------------------------------------------------------------------

SHOP: dict[str, Any] = {
    "items": [{"name": "pen", "price": 2}, {"name": "book", "price": 12}],
    "owner": {"name": "Ann"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$.owner.name", "Ann"),
        ("${ $.owner.name }", "Ann"),
        ("$.items[*].name", ["pen", "book"]),  # several matches: a list
        ("$.items[1].price", 12),
        ("$.items[?(@.price > 10)].name", "book"),  # one match: the value
        ("$.nothing", None),  # no match: None
        ("$", SHOP),
        ("$CONST.greeting", "Hola"),
        ("${ $CONST.limits.max }", 3),
        ("$SECRETS.API_KEY", "s3cr3t"),
        ("$WORKFLOW.instanceId", "i-1"),
        ("$WORKFLOW['name']", "Greet"),
        ("$item.n", 7),
    ],
)
def test_jsonpath_evaluates(text: str, expected: Any) -> None:
    assert compile_expression(text, "jsonpath").evaluate(SHOP, VARIABLES) == expected


def test_jsonpath_evaluate_all_and_bool() -> None:
    expr = compile_expression("$.items[*].price", "jsonpath")
    assert expr.evaluate_all(SHOP) == [2, 12]
    assert compile_expression("$.owner", "jsonpath").evaluate_bool(SHOP) is True
    assert compile_expression("$.nobody", "jsonpath").evaluate_bool(SHOP) is False
    assert compile_expression("$CONST.x", "jsonpath").evaluate(SHOP, None) is None


# -- locations (toStateData) -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("${ .customer.greeting }", "jq", ("customer", "greeting")),
        (".counts.current", "jq", ("counts", "current")),
        ('${ .a[0]["b c"] }', "jq", ("a", 0, "b c")),
        ("${ .list[-1] }", "jq", ("list", -1)),
        ("${ . }", "jq", ()),
        ("${ .[$CONST.greeting] }", "jq", ("Hola",)),
        ("$.customer.greeting", "jsonpath", ("customer", "greeting")),
        ("${ $.a[2].b }", "jsonpath", ("a", 2, "b")),
        ("$", "jsonpath", ()),
    ],
)
def test_path(text: str, lang: str, expected: tuple[Any, ...]) -> None:
    assert compile_expression(text, lang).path({"list": [1, 2]}, VARIABLES) == expected


@pytest.mark.parametrize(
    ("text", "lang", "message"),
    [
        ("${ .a + 1 }", "jq", "Invalid path expression"),
        ("${ empty }", "jq", "names no location"),
        ("${ .s.x }", "jq", "Cannot index string"),
        ("$.items[*]", "jsonpath", "must name one location"),
        ("$.items[?(@.x)]", "jsonpath", "must name one location"),
        ("$CONST.x", "jsonpath", "must be a location in the state data"),
    ],
)
def test_path_errors(text: str, lang: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message) as info:
        compile_expression(text, lang).path({"s": "text"})
    assert info.value.expression == text


# -- evaluate_value ----------------------------------------------------------------


def test_evaluate_value_walks_dicts_and_lists() -> None:
    arguments = {
        "applicantName": "${ .applicant.name }",
        "contact": {
            "city": "${ .applicant.address.city }",
            "phones": ["${ .applicant.phoneNumbers[0].type }", 1],
        },
        "literal": "just text",
        "number": 5,
        "flag": False,
        "nothing": None,
        "key": "${ $SECRETS.API_KEY }",
    }
    assert evaluate_value(arguments, APPLICANT, VARIABLES) == {
        "applicantName": "John Doe",
        "contact": {"city": "Nara", "phones": ["iPhone", 1]},
        "literal": "just text",
        "number": 5,
        "flag": False,
        "nothing": None,
        "key": "s3cr3t",
    }


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Book ${ .book.title } is already on loan", "Book Dune is already on loan"),
        ("n=${ .n }, tags=${ .tags }", 'n=3, tags=["a","b"]'),
        ("[${ .missing }]", "[]"),
        ("${ $CONST.greeting }, ${ .book.title }!", "Hola, Dune!"),
    ],
)
def test_evaluate_value_interpolates_strings(template: str, expected: str) -> None:
    data = {"book": {"title": "Dune"}, "n": 3, "tags": ["a", "b"]}
    assert evaluate_value(template, data, VARIABLES) == expected


def test_evaluate_value_resolves_functions_and_uses_jsonpath() -> None:
    assert evaluate_value(
        {"adult": "${ fn:IsAdultApplicant }"}, APPLICANT, functions=FUNCTIONS
    ) == {"adult": True}
    assert evaluate_value(["${ $.applicant.age }"], APPLICANT, lang="jsonpath") == [26]


def test_interpolation_with_jsonpath_and_functions() -> None:
    assert (
        evaluate_value(
            "Hi ${ $.applicant.name } from ${ $CONST.greeting }", APPLICANT, VARIABLES, "jsonpath"
        )
        == "Hi John Doe from Hola"
    )
    assert (
        evaluate_value("adult: ${ fn:IsAdultApplicant }", APPLICANT, functions=FUNCTIONS)
        == "adult: true"
    )


def test_evaluate_value_reports_the_failing_expression() -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate_value({"a": ["${ .x.y }"]}, {"x": [1]})
    assert info.value.expression == "${ .x.y }"


def test_public_api_is_exported_from_the_workflow_package() -> None:
    import tideflow.workflow as workflow
    from tideflow.workflow import expressions

    for name in ("Expression", "compile_expression", "evaluate_value", "is_expression", "unwrap"):
        assert getattr(workflow, name) is getattr(expressions, name)
        assert name in workflow.__all__
    for name in ("merge", "merge_action_result", "merge_event_data", "put_at", "load_secrets"):
        assert name in workflow.__all__


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='${}"\\() .ab', max_size=30))
def test_text_rules_never_crash_and_agree(text: str) -> None:
    parts = segments(text)
    assert all(part in text for _, part in parts)
    if is_expression(text):
        assert not is_interpolation(text)
        assert unwrap(text) in text
    if is_interpolation(text):
        assert any(is_expr for is_expr, _ in parts)
