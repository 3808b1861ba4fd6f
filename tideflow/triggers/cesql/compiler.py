"""Compile a CESQL syntax tree into a tree of closures.

See ``closures.py`` for how closures report errors and ``operators.py``
for the operators; this module dispatches, folds constants, and compiles
attributes, ``EXISTS``, ``LIKE``, ``IN`` and function calls.

Hot shapes get fused closures: ``attr = 'literal'``, ``attr LIKE 'pattern'``,
comparisons against an integer literal, ``IN`` over literals, and chains of
``AND`` flattened into one loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tideflow.triggers.cesql.closures import (
    NOT_ATTRIBUTES,
    Evaluator,
    Event,
    attribute,
    attribute_slow,
    cast_error,
    exists,
    slow_apply,
)
from tideflow.triggers.cesql.functions import resolve
from tideflow.triggers.cesql.like import affix, like_matcher
from tideflow.triggers.cesql.operators import (
    ARITHMETIC,
    binary_operator,
    negate_operator,
    not_operator,
)
from tideflow.triggers.cesql.parser import (
    Attribute,
    Binary,
    Call,
    Exists,
    In,
    Like,
    Literal,
    Node,
    Unary,
)
from tideflow.triggers.cesql.values import (
    ErrorKind,
    EvaluationError,
    Fail,
    OpError,
    Value,
    ValueType,
    cast_to,
    to_string,
)


def result_type(node: Node) -> ValueType | None:
    """The static type of a node's value; ``None`` when only known at run time."""
    if isinstance(node, Literal):
        return type(node.value)
    if isinstance(node, Attribute):
        return None
    if isinstance(node, Unary):
        return bool if node.op == "NOT" else int
    if isinstance(node, Binary):
        return int if node.op in ARITHMETIC else bool
    if isinstance(node, Call):
        function = resolve(node.name, len(node.args))
        return function.returns if function else None
    return bool


def build(node: Node) -> Evaluator:
    """Compile a node (and its subtree) into a closure."""
    if isinstance(node, Literal):
        value = node.value
        return lambda event: value
    if isinstance(node, Attribute):
        return attribute(node)
    if isinstance(node, Exists):
        return exists(node)
    if isinstance(node, Unary):
        return not_operator(node, build) if node.op == "NOT" else negate_operator(node, build)
    if isinstance(node, Binary):
        return binary_operator(node, build)
    if isinstance(node, Like):
        return _like(node)
    if isinstance(node, In):
        return _in(node)
    return _call(node)


def fold(node: Node) -> Node:
    """Replace every subtree without attributes that evaluates cleanly by a literal."""
    if isinstance(node, Literal | Attribute | Exists):
        return node
    if isinstance(node, Unary | Like):
        node = replace(node, operand=fold(node.operand))
        children: Sequence[Node] = (node.operand,)
    elif isinstance(node, Binary):
        node = replace(node, left=fold(node.left), right=fold(node.right))
        children = (node.left, node.right)
    elif isinstance(node, In):
        node = replace(node, operand=fold(node.operand), items=tuple(map(fold, node.items)))
        children = (node.operand, *node.items)
    else:
        node = replace(node, args=tuple(map(fold, node.args)))
        children = node.args
    if not all(isinstance(child, Literal) for child in children):
        return node
    try:
        return Literal(build(node)({}), node.column)
    except Fail:
        return node


# -- LIKE, IN, calls ---------------------------------------------------------


def _attribute_affix(node: Like, operand: Attribute, kind: str, text: str) -> Evaluator:
    """``attr [NOT] LIKE 'text%'`` or ``'%text'``: the commonest filter, inlined."""
    name, slow, negate = operand.name, attribute_slow(operand), node.negated
    if kind == "prefix":

        def attribute_prefix(event: Event) -> Value:
            raw = event.get(name)
            if type(raw) is not str:
                raw = to_string(slow(raw))
            return raw.startswith(text) is not negate

        return attribute_prefix

    def attribute_suffix(event: Event) -> Value:
        raw = event.get(name)
        if type(raw) is not str:
            raw = to_string(slow(raw))
        return raw.endswith(text) is not negate

    return attribute_suffix


def _like(node: Like) -> Evaluator:
    match, negate, operand = like_matcher(node.pattern), node.negated, node.operand
    if isinstance(operand, Attribute) and operand.name not in NOT_ATTRIBUTES:
        shape = affix(node.pattern)
        if shape is not None:
            return _attribute_affix(node, operand, *shape)
        name, slow = operand.name, attribute_slow(operand)

        def attribute_like(event: Event) -> Value:
            raw = event.get(name)
            if type(raw) is not str:
                raw = to_string(slow(raw))
            return match(raw) is not negate

        return attribute_like
    evaluate = build(operand)

    def like(event: Event) -> Value:
        value = evaluate(event)
        return match(value if type(value) is str else to_string(value)) is not negate

    return like


def _members(
    items: Sequence[Node], target: ValueType
) -> tuple[frozenset[Value], tuple[EvaluationError, ...]]:
    """The literal members of an ``IN`` cast to ``target``, and the cast errors."""
    values: list[Value] = []
    errors: list[EvaluationError] = []
    for item in items:
        assert isinstance(item, Literal)
        value, problem = cast_to(item.value, target)
        values.append(value)
        if problem:
            errors.append(cast_error(problem))
    return frozenset(values), tuple(errors)


def _in(node: In) -> Evaluator:
    operand, negate = build(node.operand), node.negated
    if all(isinstance(item, Literal) for item in node.items):
        table = {target: _members(node.items, target) for target in (str, int, bool)}

        def in_literals(event: Event) -> Value:
            value = operand(event)
            members, errors = table[type(value)]
            result = (value in members) is not negate
            if errors:
                raise Fail(errors, result, node)
            return result

        return in_literals
    items = tuple(build(item) for item in node.items)

    def in_(event: Event) -> Value:
        value = operand(event)
        target = type(value)
        values = [item(event) for item in items]

        def contains(*members: Value) -> bool:
            return (value in members) is not negate

        return slow_apply(node, contains, values, (target,) * len(values))

    return in_


def _call(node: Call) -> Evaluator:
    function = resolve(node.name, len(node.args))
    if function is None:
        errors = (
            EvaluationError(
                ErrorKind.MISSING_FUNCTION,
                f"no function {node.name} taking {len(node.args)} argument(s)",
            ),
        )

        def missing(event: Event) -> Value:
            raise Fail(errors, False, node)

        return missing
    args = tuple(build(arg) for arg in node.args)
    types = tuple(function.param_type(index) for index in range(len(args)))
    impl = function.impl
    if len(args) == 1:
        (only,), (target,) = args, types

        def call_one(event: Event) -> Value:
            value = only(event)
            if target is None or type(value) is target:
                try:
                    return impl(value)
                except OpError as exc:
                    raise Fail((exc.error,), exc.value, node) from None
            return slow_apply(node, impl, (value,), types)

        if function.name == "INT" and isinstance(node.args[0], Attribute):
            return _int_of_attribute(node.args[0].name, call_one)
        return call_one

    def call(event: Event) -> Value:
        return slow_apply(node, impl, [arg(event) for arg in args], types)

    return call


def _int_of_attribute(name: str, general: Evaluator) -> Evaluator:
    """``INT(attr)``, the usual way to compare a numeric extension, with a fast path."""

    def int_of_attribute(event: Event) -> Value:
        raw = event.get(name)
        if type(raw) is str and len(raw) < 10 and raw.isdigit() and raw.isascii():
            return int(raw)
        return general(event)

    return int_of_attribute
