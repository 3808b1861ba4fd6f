"""Subscription transforms: a jq expression applied to each event before delivery (pure).

The expression sees the event in structured JSON form (its attributes and
``data``) as ``.``. Its first output becomes the delivered event's **data**:
the attributes stay as they were and ``datacontenttype`` becomes
``application/json``. An expression with no output (``empty``, ``select``
that fails) drops the event: it counts as filtered out. An expression that
fails on an event dead-letters that event with the reason; one that runs out
of its time or memory budget (``EXPRESSION_TIME_LIMIT``,
``EXPRESSION_MEMORY_LIMIT``) is a failed delivery attempt: retried per the
subscription's policy, then dead-lettered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tideflow.errors import ExpressionError
from tideflow.expression_budget import off_loop
from tideflow.workflow.expressions import Expression, compile_expression


class Transform:
    """A subscription's jq transform, compiled once.

    The expression sees the event in structured JSON form; its first output
    becomes the delivered event's ``data`` (``datacontenttype`` becomes
    ``application/json``); no output drops the event.

    Args:
        text: The jq expression (``${ }`` optional).
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._expression: Expression = compile_expression(text)

    def apply(self, event: Mapping[str, Any]) -> dict[str, Any] | None:
        """The event to deliver, or ``None`` to drop it.

        Raises:
            ExpressionError: The expression failed on this event.
        """
        outputs = self._expression.evaluate_all(dict(event))
        if not outputs:
            return None
        out = {k: v for k, v in event.items() if k not in ("data", "data_base64")}
        out["data"] = outputs[0]
        out["datacontenttype"] = "application/json"
        return out

    async def apply_bounded(self, event: Mapping[str, Any]) -> dict[str, Any] | None:
        """:meth:`apply` without blocking the event loop while an expression that can
        loop is evaluated in a worker process.

        Raises:
            ExpressionError: The expression failed on this event.
            ExpressionLimitExceeded: It ran out of its time or memory budget.
        """
        return await off_loop(lambda: self.apply(event))


def transform_or_none(text: str | None) -> Transform | None:
    """A compiled :class:`Transform`, or ``None`` without one."""
    return None if text is None else Transform(text)


def transform_error(exc: ExpressionError) -> str:
    """The dead-letter reason for a failed transform."""
    return f"transform failed: {exc.message}"
