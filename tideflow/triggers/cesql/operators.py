"""Unary and binary operators (spec 3.4) compiled into closures.

Each factory takes the node and the ``build`` function for its children.
``AND`` chains are flattened into one loop: ``(a AND b) AND c`` and
``a AND (b AND c)`` give the same value and the same first error as the
loop, because a cast failure inside ``AND`` always yields ``false``. ``OR``
is not flattened: there a nested failure must stop evaluation early.
Arithmetic wraps to 32 bits on overflow and reports a MathError.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

from tideflow.triggers.cesql.closures import (
    NOT_ATTRIBUTES,
    Builder,
    Evaluator,
    Event,
    attribute_slow,
    cast_error,
    slow_apply,
)
from tideflow.triggers.cesql.parser import Attribute, Binary, Call, Literal, Node, Unary
from tideflow.triggers.cesql.values import (
    INT32_MAX,
    INT32_MIN,
    ErrorKind,
    EvaluationError,
    Fail,
    OpError,
    Value,
    ValueType,
    cast_bool,
    to_string,
    wrap_int32,
)

ARITHMETIC = frozenset({"+", "-", "*", "/", "%"})
_ORDER: dict[str, Callable[[int, int], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def not_operator(node: Unary, build: Builder) -> Evaluator:
    """``NOT x``."""
    operand = build(node.operand)

    def not_(event: Event) -> Value:
        value = operand(event)
        if value is True:
            return False
        if value is False:
            return True
        return slow_apply(node, operator.not_, (value,), (bool,))

    return not_


def _neg(value: int) -> int:
    if value == INT32_MIN:
        raise OpError(ErrorKind.MATH, "-(-2147483648) overflows 32 bits", INT32_MIN)
    return -value


def negate_operator(node: Unary, build: Builder) -> Evaluator:
    """``-x``."""
    operand = build(node.operand)

    def negate(event: Event) -> Value:
        return slow_apply(node, _neg, (operand(event),), (int,))

    return negate


def binary_operator(node: Binary, build: Builder) -> Evaluator:
    """A logical, comparison or arithmetic operator."""
    op = node.op
    if op == "AND":
        return _and(node, build)
    if op == "OR":
        return _or(node, build)
    if op == "XOR":
        return _generic(node, build, operator.ne, bool)
    if op in ("=", "!=", "<>"):
        return _equality(node, build)
    if op in _ORDER:
        return _order(node, build)
    return _generic(node, build, _ARITHMETIC_OPS[op], int)


def _generic(
    node: Binary, build: Builder, compute: Callable[..., Value], operand_type: ValueType
) -> Evaluator:
    left, right = build(node.left), build(node.right)
    types = (operand_type, operand_type)

    def binary(event: Event) -> Value:
        return slow_apply(node, compute, (left(event), right(event)), types)

    return binary


def and_operands(node: Node) -> list[Node]:
    """The operands of a chain of ``AND`` (equivalent when flattened: see module doc)."""
    out: list[Node] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Binary) and item.op == "AND":
            stack.extend((item.right, item.left))
        else:
            out.append(item)
    return out


def _and(node: Binary, build: Builder) -> Evaluator:
    operands = tuple(build(item) for item in and_operands(node))

    def and_(event: Event) -> Value:
        for operand in operands:
            value = operand(event)
            if value is True:
                continue
            if value is False:
                return False
            flag, problem = cast_bool(value)
            if problem:
                raise Fail((cast_error(problem),), False, node)
            if not flag:
                return False
        return True

    return and_


def _or(node: Binary, build: Builder) -> Evaluator:
    left, right = build(node.left), build(node.right)

    def or_(event: Event) -> Value:
        value = left(event)
        if value is True:
            return True
        errors: tuple[EvaluationError, ...] = ()
        if value is not False:
            flag, problem = cast_bool(value)
            if flag:
                return True
            if problem:
                errors = (cast_error(problem),)
        other = right(event)
        if other is not True and other is not False:
            other, problem = cast_bool(other)
            if problem:
                errors += (cast_error(problem),)
        if errors:
            raise Fail(errors, other, node)
        return other

    return or_


def _equality(node: Binary, build: Builder) -> Evaluator:
    negate = node.op != "="
    compare = operator.ne if negate else operator.eq
    if isinstance(node.right, Literal):
        return _equality_literal(node, build, node.right.value, negate)
    left, right = build(node.left), build(node.right)

    def equality(event: Event) -> Value:
        a, b = left(event), right(event)
        if type(a) is type(b):
            return (a == b) is not negate
        return slow_apply(node, compare, (a, b), (type(b), None))

    return equality


def _equality_literal(node: Binary, build: Builder, literal: Value, negate: bool) -> Evaluator:
    target = type(literal)
    types = (target, None)
    compare = operator.ne if negate else operator.eq
    operand = node.left
    if target is str and isinstance(operand, Attribute) and operand.name not in NOT_ATTRIBUTES:
        name, slow = operand.name, attribute_slow(operand)

        def attribute_equality(event: Event) -> Value:
            raw = event.get(name)
            if type(raw) is not str:
                raw = to_string(slow(raw))
            return (raw == literal) is not negate

        return attribute_equality
    left = build(operand)

    def literal_equality(event: Event) -> Value:
        value = left(event)
        if type(value) is target:
            return (value == literal) is not negate
        return slow_apply(node, compare, (value, literal), types)

    return literal_equality


def _order(node: Binary, build: Builder) -> Evaluator:
    compare = _ORDER[node.op]
    left = build(node.left)
    types = (int, int)
    if isinstance(node.right, Literal) and type(node.right.value) is int:
        literal = node.right.value

        def order_literal(event: Event) -> Value:
            value = left(event)
            if type(value) is int:
                return compare(value, literal)
            # Numeric attributes usually arrive as strings: at most 9 digits fit 32 bits.
            if type(value) is str and len(value) < 10 and value.isdigit() and value.isascii():
                return compare(int(value), literal)
            return slow_apply(node, compare, (value, literal), types)

        name = _numeric_attribute(node.left)
        return (
            order_literal
            if name is None
            else _attribute_order(name, compare, literal, order_literal)
        )
    right = build(node.right)

    def order(event: Event) -> Value:
        a, b = left(event), right(event)
        if type(a) is int and type(b) is int:
            return compare(a, b)
        return slow_apply(node, compare, (a, b), types)

    return order


def _numeric_attribute(node: Node) -> str | None:
    """The attribute read by ``attr`` or ``INT(attr)``, else ``None``."""
    if isinstance(node, Call) and node.name == "INT" and len(node.args) == 1:
        node = node.args[0]
    if isinstance(node, Attribute) and node.name not in NOT_ATTRIBUTES:
        return node.name
    return None


def _attribute_order(
    name: str, compare: Callable[[int, int], bool], literal: int, general: Evaluator
) -> Evaluator:
    """``attr > 100`` or ``INT(attr) > 100`` inlined for digit strings (both cast alike)."""

    def attribute_order(event: Event) -> Value:
        raw = event.get(name)
        if type(raw) is str and len(raw) < 10 and raw.isdigit() and raw.isascii():
            return compare(int(raw), literal)
        return general(event)

    return attribute_order


def _checked(value: int) -> int:
    if INT32_MIN <= value <= INT32_MAX:
        return value
    raise OpError(
        ErrorKind.MATH, f"integer overflow ({value} is outside 32 bits)", wrap_int32(value)
    )


def _divide(a: int, b: int) -> int:
    if b == 0:
        raise OpError(ErrorKind.MATH, "division by zero", 0)
    quotient = abs(a) // abs(b)
    return _checked(-quotient if (a < 0) != (b < 0) else quotient)


def _modulo(a: int, b: int) -> int:
    if b == 0:
        raise OpError(ErrorKind.MATH, "modulo by zero", 0)
    remainder = abs(a) % abs(b)
    return -remainder if a < 0 else remainder


_ARITHMETIC_OPS: dict[str, Callable[[int, int], int]] = {
    "+": lambda a, b: _checked(a + b),
    "-": lambda a, b: _checked(a - b),
    "*": lambda a, b: _checked(a * b),
    "/": _divide,
    "%": _modulo,
}
