"""CloudEvents SQL (CESQL) v1: a parser and evaluator of our own, pure (no I/O).

Compile once with :func:`compile_expression`, then call
``expression.matches(event)`` (filter, fail-fast) or
``expression.evaluate(event)`` (value plus errors). Events are mappings in
CloudEvents JSON form. See ``docs/cesql.md``.
"""

from __future__ import annotations

from tideflow.triggers.cesql.expression import CesqlExpression, Result, compile_expression
from tideflow.triggers.cesql.functions import BUILTINS
from tideflow.triggers.cesql.values import ErrorKind, EvaluationError

__all__ = [
    "BUILTINS",
    "CesqlExpression",
    "ErrorKind",
    "EvaluationError",
    "Result",
    "compile_expression",
]
