"""Built-in CESQL functions (spec 3.5) and the explicit cast functions.

Every function is total: on an error it raises :class:`OpError` carrying the
value it still returns (spec 3.5.3). Arguments arrive already cast to the
declared parameter types; a parameter typed ``None`` takes any value.

Besides the spec's table: ``INT``, ``BOOL`` and ``STRING`` (explicit casts,
used by the spec's examples and the TCK) and the Tideflow extensions
``IS_INT``, ``IS_BOOL`` and ``IS_STRING`` (whether a value is, or as a String
can be cast to, that type).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from tideflow.triggers.cesql.values import (
    INT32_MIN,
    ErrorKind,
    OpError,
    Value,
    ValueType,
    cast_bool,
    cast_int,
    parse_int,
    to_string,
)

# Unicode White_Space (Python's str.strip() would also remove U+001C..U+001F).
_WHITESPACE = (
    "\u0009\u000a\u000b\u000c\u000d\u0020\u0085\u00a0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


@dataclass(frozen=True, slots=True)
class Function:
    """One overload of a function.

    Attributes:
        name: Upper-case name.
        params: Types of the fixed parameters (``None``: any type, no cast).
        variadic: Type of the trailing variadic parameters, or ``None`` when
            the overload has a fixed arity.
        returns: The return type.
        impl: The implementation, called with the cast arguments.
    """

    name: str
    params: tuple[ValueType | None, ...]
    variadic: ValueType | None
    returns: ValueType
    impl: Callable[..., Value]

    def param_type(self, index: int) -> ValueType | None:
        """The type argument ``index`` is cast to."""
        return self.params[index] if index < len(self.params) else self.variadic


def _abs(x: int) -> int:
    if x == INT32_MIN:
        raise OpError(ErrorKind.MATH, "ABS(-2147483648) overflows 32 bits", 2147483647)
    return abs(x)


def _left(x: str, y: int) -> str:
    if y < 0:
        raise OpError(ErrorKind.FUNCTION_EVALUATION, f"LEFT length {y} is negative", x)
    return x[:y]


def _right(x: str, y: int) -> str:
    if y < 0:
        raise OpError(ErrorKind.FUNCTION_EVALUATION, f"RIGHT length {y} is negative", x)
    return x[len(x) - y :] if y < len(x) else x


def _start(x: str, pos: int, name: str) -> int:
    """0-based start index of SUBSTRING, or an error when ``pos`` is out of range."""
    if pos > len(x) or pos < -len(x):
        raise OpError(
            ErrorKind.FUNCTION_EVALUATION,
            f"{name} position {pos} is outside a string of length {len(x)}",
            "",
        )
    return pos - 1 if pos > 0 else len(x) + pos


def _substring(x: str, pos: int) -> str:
    start = _start(x, pos, "SUBSTRING")
    return "" if pos == 0 else x[start:]


def _substring_len(x: str, pos: int, length: int) -> str:
    start = _start(x, pos, "SUBSTRING")
    if length < 0:
        raise OpError(ErrorKind.FUNCTION_EVALUATION, f"SUBSTRING length {length} is negative", "")
    return "" if pos == 0 else x[start : start + length]


def _int(x: Value) -> int:
    if type(x) is str:
        parsed = parse_int(x)
        if parsed is not None:
            return parsed
    number, problem = cast_int(x)
    if problem:
        raise OpError(ErrorKind.CAST, problem, number)
    return number


def _bool(x: Value) -> bool:
    flag, problem = cast_bool(x, explicit=True)
    if problem:
        raise OpError(ErrorKind.CAST, problem, flag)
    return flag


def _is_int(x: Value) -> bool:
    return type(x) is int or (type(x) is str and parse_int(x) is not None)


def _is_bool(x: Value) -> bool:
    return type(x) is bool or (type(x) is str and x.lower() in ("true", "false"))


def _overloads() -> dict[str, tuple[Function, ...]]:
    s, i, b = str, int, bool
    table = [
        Function("ABS", (i,), None, i, _abs),
        Function("LENGTH", (s,), None, i, len),
        Function("CONCAT", (), s, s, lambda *xs: "".join(xs)),
        Function("CONCAT_WS", (s,), s, s, lambda sep, *xs: sep.join(xs)),
        Function("LOWER", (s,), None, s, str.lower),
        Function("UPPER", (s,), None, s, str.upper),
        Function("TRIM", (s,), None, s, lambda x: x.strip(_WHITESPACE)),
        Function("LEFT", (s, i), None, s, _left),
        Function("RIGHT", (s, i), None, s, _right),
        Function("SUBSTRING", (s, i), None, s, _substring),
        Function("SUBSTRING", (s, i, i), None, s, _substring_len),
        Function("INT", (None,), None, i, _int),
        Function("BOOL", (None,), None, b, _bool),
        Function("STRING", (None,), None, s, to_string),
        Function("IS_INT", (None,), None, b, _is_int),
        Function("IS_BOOL", (None,), None, b, _is_bool),
        Function("IS_STRING", (None,), None, b, lambda x: type(x) is str),
    ]
    out: dict[str, list[Function]] = {}
    for function in table:
        out.setdefault(function.name, []).append(function)
    return {name: tuple(group) for name, group in out.items()}


BUILTINS: Mapping[str, tuple[Function, ...]] = MappingProxyType(_overloads())
"""Every built-in function, by upper-case name, with its overloads."""


def resolve(name: str, arity: int) -> Function | None:
    """The overload of ``name`` that takes ``arity`` arguments, if any.

    A fixed-arity overload wins over the variadic one (spec 3.5 only allows a
    variadic overload whose fixed part is longer than every fixed overload).
    """
    overloads = BUILTINS.get(name.upper(), ())
    for function in overloads:
        if function.variadic is None and len(function.params) == arity:
            return function
    for function in overloads:
        if function.variadic is not None and arity >= len(function.params):
            return function
    return None
