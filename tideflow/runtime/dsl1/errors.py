"""DSL 1.0 errors: RFC 7807 Problem Details, the standard types, and catch filters.

A 1.0 error is a JSON object ``{type, status, title?, detail?, instance}``.
Inside the interpreter it travels as :class:`Raised`; failures of effects
(function calls, timeouts, expressions) become errors of the standard types
(``dsl.md`` §Fault Tolerance).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tideflow.errors import EgressDenied, ExpressionError, FunctionCallError, StepTimeout

__all__ = [
    "ERROR_TYPES",
    "Raised",
    "error_from_exception",
    "matches_filter",
    "standard_error",
]

ERROR_BASE = "https://serverlessworkflow.io/spec/1.0.0/errors/"
ERROR_TYPES: Mapping[str, int] = {
    "configuration": 400,
    "validation": 400,
    "expression": 400,
    "authentication": 401,
    "authorization": 403,
    "timeout": 408,
    "communication": 500,
    "runtime": 500,
}
"""The standard error types and their default status."""

# Standard types as written by other versions of the spec and its CTK:
# .../spec/1.0.0/errors/<kind> and .../dsl/errors/types/<kind>.
_STANDARD = re.compile(
    r"^https://serverlessworkflow\.io/(?:spec/[^/]+/errors|dsl/errors/types)/(\w+)$"
)


class Raised(Exception):
    """Internal: a 1.0 error travelling up to the nearest ``try``."""

    def __init__(self, error: Mapping[str, Any]) -> None:
        self.error = dict(error)
        super().__init__(str(error.get("title") or error.get("detail") or error.get("type")))


def standard_error(kind: str, instance: str, detail: str = "", status: int | None = None) -> Raised:
    """An error of a standard type (``communication``, ``timeout``, ...)."""
    error: dict[str, Any] = {
        "type": ERROR_BASE + kind,
        "status": status if status is not None else ERROR_TYPES[kind],
        "title": f"{kind.capitalize()} error",
        "instance": instance,
    }
    if detail:
        error["detail"] = detail
    return Raised(error)


def status_of(code: Any) -> int | None:
    """The HTTP status an error code is (``"404"``), else ``None``."""
    text = str(code) if code is not None else ""
    return int(text) if text.isdigit() and 100 <= int(text) <= 599 else None


def error_from_exception(exc: BaseException, instance: str) -> Raised:
    """The 1.0 error for a failure of an effect or an expression."""
    if isinstance(exc, Raised):
        return exc
    if isinstance(exc, StepTimeout):
        return standard_error("timeout", instance, str(exc) or "the task timed out")
    if isinstance(exc, ExpressionError):
        return standard_error("expression", instance, str(exc))
    if isinstance(exc, FunctionCallError) and exc.code == EgressDenied.CODE:
        # the server's own policy said no (also when replayed from the journal)
        return standard_error("authorization", instance, f"{exc.code}: {exc}")
    if isinstance(exc, FunctionCallError):
        kind = "configuration" if exc.code in ("NotSupported", "InvalidOperation") else None
        if kind is not None:
            return standard_error(kind, instance, str(exc))
        return standard_error("communication", instance, str(exc), status_of(exc.code))
    return standard_error("runtime", instance, f"{type(exc).__name__}: {exc}")


def same_type(expected: str, actual: Any) -> bool:
    """Whether an error's type is the filter's (standard types match across spellings)."""
    if expected == actual:
        return True
    left, right = _STANDARD.match(expected), _STANDARD.match(str(actual))
    return left is not None and right is not None and left.group(1) == right.group(1)


def matches_filter(error: Mapping[str, Any], with_: Mapping[str, Any] | None) -> bool:
    """Whether ``error`` has every property ``errors.with`` asks for."""
    for key, expected in (with_ or {}).items():
        actual = error.get("detail" if key == "details" else key)
        if key == "type":
            if not same_type(str(expected), actual):
                return False
        elif actual != expected:
            return False
    return True
