"""Compile a CESQL syntax tree into a tree of closures.

Each closure takes an event (a mapping in JSON form: attributes and
extensions as top-level members) and returns a CESQL value, or raises
:class:`Fail` carrying the errors and the value its node still returns. A
parent never catches a child's ``Fail``: an operator whose operand failed
returns its zero value (spec 3.2, 3.3), so the error simply travels to the
top, where the evaluator picks the result (see ``expression.py``).

Hot shapes get fused closures: ``attr = 'literal'``, ``attr LIKE 'pattern'``,
comparisons against an integer literal, ``IN`` over literals, and chains of
``AND`` flattened into one loop.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from tideflow.triggers.cesql.functions import resolve
from tideflow.triggers.cesql.like import affix, like_matcher
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
    INT32_MAX,
    INT32_MIN,
    ErrorKind,
    EvaluationError,
    Fail,
    OpError,
    Value,
    ValueType,
    cast_bool,
    cast_to,
    from_json,
    to_string,
    wrap_int32,
)

Event = Mapping[str, Any]
Evaluator = Callable[[Event], Value]

REQUIRED_ATTRIBUTES = frozenset({"specversion", "id", "source", "type"})
"""Attributes every valid event has: ``EXISTS`` is always true for them."""

# ``data`` is a member of a JSON-format event but not a context attribute.
_NOT_ATTRIBUTES = frozenset({"data"})
_ARITHMETIC = frozenset({"+", "-", "*", "/", "%"})
_ORDER: dict[str, Callable[[int, int], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def result_type(node: Node) -> ValueType | None:
    """The static type of a node's value; ``None`` when only known at run time."""
    if isinstance(node, Literal):
        return type(node.value)
    if isinstance(node, Attribute):
        return None
    if isinstance(node, Unary):
        return bool if node.op == "NOT" else int
    if isinstance(node, Binary):
        return int if node.op in _ARITHMETIC else bool
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
        return _attribute(node)
    if isinstance(node, Exists):
        return _exists(node)
    if isinstance(node, Unary):
        return _not(node) if node.op == "NOT" else _negate(node)
    if isinstance(node, Binary):
        return _binary(node)
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


# -- attributes --------------------------------------------------------------


def _missing(node: Attribute) -> tuple[EvaluationError, ...]:
    message = f"attribute {node.name!r} is not in the event"
    return (EvaluationError(ErrorKind.MISSING_ATTRIBUTE, message),)


def _attribute_slow(node: Attribute) -> Callable[[Any], Value]:
    """Slow path of an attribute read: a raw value that is not a ``str``."""
    errors = _missing(node)

    def slow(raw: Any) -> Value:
        value = from_json(raw)
        if value is None:
            raise Fail(errors, False, node)
        return value

    return slow


def _attribute(node: Attribute) -> Evaluator:
    name, slow = node.name, _attribute_slow(node)
    if name in _NOT_ATTRIBUTES:
        return lambda event: slow(None)

    def attribute(event: Event) -> Value:
        raw = event.get(name)
        if type(raw) is str:
            return raw
        return slow(raw)

    return attribute


def _exists(node: Exists) -> Evaluator:
    name = node.name
    if name in REQUIRED_ATTRIBUTES:
        return lambda event: True
    if name in _NOT_ATTRIBUTES:
        return lambda event: False
    return lambda event: event.get(name) is not None


# -- shared slow paths -------------------------------------------------------


def _cast_error(problem: str) -> EvaluationError:
    return EvaluationError(ErrorKind.CAST, problem)


def _slow_apply(
    node: Node,
    compute: Callable[..., Value],
    values: Sequence[Value],
    types: Sequence[ValueType | None],
) -> Value:
    """Cast ``values`` to ``types``, then compute; raise ``Fail`` on any error."""
    errors: list[EvaluationError] = []
    args: list[Value] = []
    for value, target in zip(values, types, strict=True):
        if target is not None and type(value) is not target:
            value, problem = cast_to(value, target)
            if problem:
                errors.append(_cast_error(problem))
        args.append(value)
    try:
        result = compute(*args)
    except OpError as exc:
        errors.append(exc.error)
        result = exc.value
    if errors:
        raise Fail(tuple(errors), result, node)
    return result


# -- unary -------------------------------------------------------------------


def _not(node: Unary) -> Evaluator:
    operand = build(node.operand)

    def not_(event: Event) -> Value:
        value = operand(event)
        if value is True:
            return False
        if value is False:
            return True
        return _slow_apply(node, operator.not_, (value,), (bool,))

    return not_


def _neg(value: int) -> int:
    if value == INT32_MIN:
        raise OpError(ErrorKind.MATH, "-(-2147483648) overflows 32 bits", INT32_MIN)
    return -value


def _negate(node: Unary) -> Evaluator:
    operand = build(node.operand)

    def negate(event: Event) -> Value:
        return _slow_apply(node, _neg, (operand(event),), (int,))

    return negate


# -- binary ------------------------------------------------------------------


def _binary(node: Binary) -> Evaluator:
    op = node.op
    if op == "AND":
        return _and(node)
    if op == "OR":
        return _or(node)
    if op == "XOR":
        return _generic(node, operator.ne, bool)
    if op in ("=", "!=", "<>"):
        return _equality(node)
    if op in _ORDER:
        return _order(node)
    return _generic(node, _ARITHMETIC_OPS[op], int)


def _generic(node: Binary, compute: Callable[..., Value], operand_type: ValueType) -> Evaluator:
    left, right = build(node.left), build(node.right)
    types = (operand_type, operand_type)

    def binary(event: Event) -> Value:
        return _slow_apply(node, compute, (left(event), right(event)), types)

    return binary


def _and_operands(node: Node) -> list[Node]:
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


def _and(node: Binary) -> Evaluator:
    operands = tuple(build(item) for item in _and_operands(node))

    def and_(event: Event) -> Value:
        for operand in operands:
            value = operand(event)
            if value is True:
                continue
            if value is False:
                return False
            flag, problem = cast_bool(value)
            if problem:
                raise Fail((_cast_error(problem),), False, node)
            if not flag:
                return False
        return True

    return and_


def _or(node: Binary) -> Evaluator:
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
                errors = (_cast_error(problem),)
        other = right(event)
        if other is not True and other is not False:
            other, problem = cast_bool(other)
            if problem:
                errors += (_cast_error(problem),)
        if errors:
            raise Fail(errors, other, node)
        return other

    return or_


def _equality(node: Binary) -> Evaluator:
    negate = node.op != "="
    compare = operator.ne if negate else operator.eq
    if isinstance(node.right, Literal):
        return _equality_literal(node, node.right.value, negate)
    left, right = build(node.left), build(node.right)

    def equality(event: Event) -> Value:
        a, b = left(event), right(event)
        if type(a) is type(b):
            return (a == b) is not negate
        return _slow_apply(node, compare, (a, b), (type(b), None))

    return equality


def _equality_literal(node: Binary, literal: Value, negate: bool) -> Evaluator:
    target = type(literal)
    types = (target, None)
    compare = operator.ne if negate else operator.eq
    operand = node.left
    if target is str and isinstance(operand, Attribute) and operand.name not in _NOT_ATTRIBUTES:
        name, slow = operand.name, _attribute_slow(operand)

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
        return _slow_apply(node, compare, (value, literal), types)

    return literal_equality


def _order(node: Binary) -> Evaluator:
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
            return _slow_apply(node, compare, (value, literal), types)

        return order_literal
    right = build(node.right)

    def order(event: Event) -> Value:
        a, b = left(event), right(event)
        if type(a) is int and type(b) is int:
            return compare(a, b)
        return _slow_apply(node, compare, (a, b), types)

    return order


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


# -- LIKE, IN, calls ---------------------------------------------------------


def _attribute_affix(node: Like, operand: Attribute, kind: str, text: str) -> Evaluator:
    """``attr [NOT] LIKE 'text%'`` or ``'%text'``: the commonest filter, inlined."""
    name, slow, negate = operand.name, _attribute_slow(operand), node.negated
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
    if isinstance(operand, Attribute) and operand.name not in _NOT_ATTRIBUTES:
        shape = affix(node.pattern)
        if shape is not None:
            return _attribute_affix(node, operand, *shape)
        name, slow = operand.name, _attribute_slow(operand)

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


def _members(items: Sequence[Node], target: ValueType) -> tuple[frozenset[Value], tuple[Any, ...]]:
    values: list[Value] = []
    errors: list[EvaluationError] = []
    for item in items:
        assert isinstance(item, Literal)
        value, problem = cast_to(item.value, target)
        values.append(value)
        if problem:
            errors.append(_cast_error(problem))
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

        return _slow_apply(node, contains, values, (target,) * len(values))

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
            return _slow_apply(node, impl, (value,), types)

        if function.name == "INT" and isinstance(node.args[0], Attribute):
            return _int_of_attribute(node.args[0].name, call_one)
        return call_one

    def call(event: Event) -> Value:
        return _slow_apply(node, impl, [arg(event) for arg in args], types)

    return call


def _int_of_attribute(name: str, general: Evaluator) -> Evaluator:
    """``INT(attr)``, the usual way to compare a numeric extension, with a fast path."""

    def int_of_attribute(event: Event) -> Value:
        raw = event.get(name)
        if type(raw) is str and len(raw) < 10 and raw.isdigit() and raw.isascii():
            return int(raw)
        return general(event)

    return int_of_attribute
