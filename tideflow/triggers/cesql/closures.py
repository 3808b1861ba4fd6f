"""Shared pieces of the compiled closures: attribute reads and the slow path.

Each closure takes an event (a mapping in JSON form: attributes and
extensions as top-level members) and returns a CESQL value, or raises
:class:`Fail` carrying the errors and the value its node still returns. A
parent never catches a child's ``Fail``: an operator whose operand failed
returns its zero value (spec 3.2, 3.3), so the error simply travels to the
top, where the evaluator picks the result (see ``expression.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tideflow.triggers.cesql.parser import Attribute, Exists, Node
from tideflow.triggers.cesql.values import (
    ErrorKind,
    EvaluationError,
    Fail,
    OpError,
    Value,
    ValueType,
    cast_to,
    from_json,
)

Event = Mapping[str, Any]
"""An event in CloudEvents JSON form."""

Evaluator = Callable[[Event], Value]
"""A compiled node."""

Builder = Callable[[Node], Evaluator]
"""Compiles a child node (passed to the operator factories to avoid an import cycle)."""

REQUIRED_ATTRIBUTES = frozenset({"specversion", "id", "source", "type"})
"""Attributes every valid event has: ``EXISTS`` is always true for them."""

NOT_ATTRIBUTES = frozenset({"data"})
"""Members of a JSON-format event that are not context attributes."""


def _missing(node: Attribute) -> tuple[EvaluationError, ...]:
    message = f"attribute {node.name!r} is not in the event"
    return (EvaluationError(ErrorKind.MISSING_ATTRIBUTE, message),)


def attribute_slow(node: Attribute) -> Callable[[Any], Value]:
    """Slow path of an attribute read: a raw value that is not a ``str``."""
    errors = _missing(node)

    def slow(raw: Any) -> Value:
        value = from_json(raw)
        if value is None:
            raise Fail(errors, False, node)
        return value

    return slow


def attribute(node: Attribute) -> Evaluator:
    """Read an attribute; a missing or ``null`` one raises a MissingAttributeError."""
    name, slow = node.name, attribute_slow(node)
    if name in NOT_ATTRIBUTES:
        return lambda event: slow(None)

    def attribute(event: Event) -> Value:
        raw = event.get(name)
        if type(raw) is str:
            return raw
        return slow(raw)

    return attribute


def exists(node: Exists) -> Evaluator:
    """``EXISTS name``: true for required attributes, else when set and not ``null``."""
    name = node.name
    if name in REQUIRED_ATTRIBUTES:
        return lambda event: True
    if name in NOT_ATTRIBUTES:
        return lambda event: False
    return lambda event: event.get(name) is not None


def cast_error(problem: str) -> EvaluationError:
    """A CastError with the reason given by a cast function."""
    return EvaluationError(ErrorKind.CAST, problem)


def slow_apply(
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
                errors.append(cast_error(problem))
        args.append(value)
    try:
        result = compute(*args)
    except OpError as exc:
        errors.append(exc.error)
        result = exc.value
    if errors:
        raise Fail(tuple(errors), result, node)
    return result
