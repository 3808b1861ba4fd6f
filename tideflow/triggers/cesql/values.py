"""CESQL values, types, casts and evaluation errors.

CESQL has three primitive types, represented by Python values of exactly
these classes: String (``str``), Integer (``int``, 32-bit signed) and Boolean
(``bool``). Type tests use ``type(v) is int`` because ``bool`` is a subclass
of ``int`` in Python.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

Value = str | int | bool
"""A CESQL value: String, Integer or Boolean."""

ValueType = type[str] | type[int] | type[bool]
"""A CESQL type, represented by the Python class of its values."""

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

ZERO: dict[ValueType | None, Value] = {str: "", int: 0, bool: False, None: False}
"""Zero value of each type; an unknown type (``None``) is assumed Boolean (spec 3.2)."""

TYPE_NAMES: dict[ValueType | None, str] = {
    str: "String",
    int: "Integer",
    bool: "Boolean",
    None: "Any",
}


class ErrorKind(StrEnum):
    """The error types of CESQL (spec 3.3), named as in the TCK."""

    PARSE = "parse"
    MATH = "math"
    CAST = "cast"
    MISSING_ATTRIBUTE = "missingAttribute"
    MISSING_FUNCTION = "missingFunction"
    FUNCTION_EVALUATION = "functionEvaluation"
    GENERIC = "generic"


@dataclass(frozen=True, slots=True)
class EvaluationError:
    """One error met while evaluating an expression.

    Attributes:
        kind: The CESQL error type.
        message: A sentence saying what went wrong.
    """

    kind: ErrorKind
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class OpError(Exception):
    """Raised by an operator or function: an error plus the value it still returns."""

    __slots__ = ("error", "value")

    def __init__(self, kind: ErrorKind, message: str, value: Value) -> None:
        super().__init__(message)
        self.error = EvaluationError(kind, message)
        self.value = value


class Fail(Exception):
    """Internal: evaluation errors, the failing node's value and the node itself.

    The node lets the evaluator tell whether the root itself failed (its value
    is the result) or a sub-expression did (the result is the zero value of the
    root's type, because every enclosing operator yields its zero value).
    """

    __slots__ = ("errors", "node", "value")

    def __init__(self, errors: tuple[EvaluationError, ...], value: Value, node: object) -> None:
        super().__init__(errors[0].message)
        self.errors = errors
        self.value = value
        self.node = node


def wrap_int32(value: int) -> int:
    """Wrap an integer into the signed 32-bit range (two's complement)."""
    return ((value - INT32_MIN) % 2**32) + INT32_MIN


def from_json(raw: Any) -> Value | None:
    """Turn an attribute value of a JSON-format event into a CESQL value.

    Args:
        raw: The JSON value of the attribute.

    Returns:
        ``None`` for an unset attribute (JSON ``null``); a Boolean or an
        in-range Integer as is; anything else as a String (spec 3.2:
        non-primitive values are represented by the String type).
    """
    kind = type(raw)
    if kind is str or kind is bool:
        return raw  # type: ignore[no-any-return]
    if raw is None:
        return None
    if kind is int:
        return raw if INT32_MIN <= raw <= INT32_MAX else str(raw)
    if isinstance(raw, dict | list):
        return json.dumps(raw, separators=(",", ":"), ensure_ascii=False)
    return str(raw)


def to_string(value: Value) -> str:
    """Cast any value to String (never fails)."""
    if type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    return str(value)


def parse_int(text: str) -> int | None:
    """Interpret a String as a base-10 32-bit Integer, or ``None`` when it is not one."""
    if not (text.isdigit() and text.isascii()):
        body = text[1:]
        if not (text[:1] in ("+", "-") and body.isdigit() and body.isascii()):
            return None
    number = int(text)
    return number if INT32_MIN <= number <= INT32_MAX else None


def cast_int(value: Value) -> tuple[int, str | None]:
    """Cast a value to Integer.

    Returns:
        The Integer and ``None``, or ``0`` and the reason the cast failed.
    """
    if type(value) is int:
        return value, None
    if type(value) is bool:
        return (1 if value else 0), None
    assert isinstance(value, str)
    number = parse_int(value)
    if number is None:
        return 0, f"cannot cast {value!r} to Integer"
    return number, None


def cast_bool(value: Value, *, explicit: bool = False) -> tuple[bool, str | None]:
    """Cast a value to Boolean.

    Args:
        value: The value to cast.
        explicit: ``True`` for the ``BOOL()`` function, which maps Integers to
            ``false`` (0) or ``true`` (anything else). Implicit casts of an
            Integer to Boolean fail with a CastError, as the TCK expects
            (``NOT 10`` is ``true`` plus a CastError).

    Returns:
        The Boolean and ``None``, or ``False`` and the reason the cast failed.
    """
    if type(value) is bool:
        return value, None
    if type(value) is str:
        lowered = value.lower()
        if lowered == "true":
            return True, None
        if lowered == "false":
            return False, None
        return False, f"cannot cast {value!r} to Boolean"
    if explicit:
        return value != 0, None
    return False, f"cannot implicitly cast Integer {value} to Boolean (use BOOL())"


def cast_to(value: Value, target: ValueType) -> tuple[Value, str | None]:
    """Cast a value to ``target`` with the implicit casting rules."""
    if type(value) is target:
        return value, None
    if target is str:
        return to_string(value), None
    if target is int:
        return cast_int(value)
    return cast_bool(value)


def type_name(value: Value) -> str:
    """The CESQL name of a value's type."""
    return TYPE_NAMES[type(value)]
