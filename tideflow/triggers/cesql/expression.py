"""A compiled CESQL expression: evaluate with errors, or match fail-fast.

Result of an evaluation (spec 3.3): a value *and* the errors met. When the
root operator or function itself failed, its own value is returned (e.g.
``5 / 0`` gives ``0``, ``LEFT('abc', -2)`` gives ``'abc'``, ``NOT 10`` gives
``true``); when a sub-expression failed, every enclosing operator yields the
zero value of its return type, so the result is the zero value of the
root's type (``false`` when that type is unknown, e.g. a bare attribute).
Evaluation stops at the first failing sub-expression, so ``errors`` holds
the errors of that one node (usually one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tideflow.triggers.cesql.closures import Evaluator
from tideflow.triggers.cesql.compiler import build, fold, result_type
from tideflow.triggers.cesql.functions import resolve
from tideflow.triggers.cesql.operators import and_operands
from tideflow.triggers.cesql.parser import Binary, Call, Node, children, parse
from tideflow.triggers.cesql.values import (
    TYPE_NAMES,
    ZERO,
    EvaluationError,
    Fail,
    Value,
    ValueType,
    cast_bool,
)


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of evaluating an expression.

    Attributes:
        value: The value (the zero value of its type when an error occurred
            below the root).
        errors: The errors met; empty when evaluation succeeded.
    """

    value: Value
    errors: tuple[EvaluationError, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether no error occurred."""
        return not self.errors


@dataclass(frozen=True, slots=True, kw_only=True)
class CesqlExpression:
    """A CESQL expression compiled once into closures; pure, thread-safe, reusable.

    Attributes:
        source: The expression text.
        tree: The syntax tree after constant folding.
        type: The static result type (``str``, ``int``, ``bool``), or ``None``
            when it depends on the event (a bare attribute).
        problems: What is certain to fail at evaluation time, found while
            compiling (unknown functions or wrong arity), as sentences.
        matches: Fail-fast predicate for filtering: ``True`` only when the
            result is Boolean ``true`` and no error occurred (spec 1.2).
    """

    source: str
    tree: Node
    type: ValueType | None
    problems: tuple[str, ...]
    matches: Callable[[Mapping[str, Any]], bool]
    _root: Callable[[Mapping[str, Any]], Value]

    def evaluate(self, event: Mapping[str, Any]) -> Result:
        """Evaluate against an event in JSON form (complete-evaluation mode).

        Args:
            event: Attributes and extensions as top-level members; ``data``
                and ``data_base64`` are ignored, ``null`` means unset.
        """
        try:
            return Result(self._root(event))
        except Fail as fail:
            value = fail.value if fail.node is self.tree else ZERO[self.type]
            return Result(value, fail.errors)

    @property
    def type_name(self) -> str:
        """The CESQL name of :attr:`type` (``Any`` when unknown)."""
        return TYPE_NAMES[self.type]


def compile_expression(source: str) -> CesqlExpression:
    """Parse and compile a CESQL expression.

    Raises:
        CesqlParseError: When the text is not a valid expression; the error
            carries the 1-based ``column``.
    """
    tree = fold(parse(source))
    root = build(tree)
    return CesqlExpression(
        source=source,
        tree=tree,
        type=result_type(tree),
        problems=_static_problems(tree),
        matches=_matcher(tree, root),
        _root=root,
    )


def _static_problems(tree: Node) -> tuple[str, ...]:
    """Calls that can never be dispatched, in source order."""
    missing: list[Call] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Call) and resolve(node.name, len(node.args)) is None:
            missing.append(node)
        stack.extend(children(node))
    return tuple(
        f"unknown function {call.name} with {len(call.args)} argument(s) at column {call.column}"
        for call in sorted(missing, key=lambda call: call.column)
    )


def _matcher(tree: Node, root: Evaluator) -> Callable[[Mapping[str, Any]], bool]:
    """The fail-fast predicate; a top-level ``AND`` chain runs in its own loop."""
    if not (isinstance(tree, Binary) and tree.op == "AND"):

        def matches(event: Mapping[str, Any]) -> bool:
            try:
                return root(event) is True
            except Fail:
                return False

        return matches
    operands = tuple(build(operand) for operand in and_operands(tree))

    def matches_all(event: Mapping[str, Any]) -> bool:
        try:
            for operand in operands:
                value = operand(event)
                # Only Boolean true (or a String 'true') lets the chain go on.
                if value is not True and (value is False or cast_bool(value) != (True, None)):
                    return False
        except Fail:
            return False
        return True

    return matches_all
