"""JSON text that keeps integers beyond 64 bits exact (pure).

orjson is fast but refuses to write integers beyond 64 bits and reads them
as floats. These helpers use orjson where it is exact and fall back to the
standard library where it is not, so a big integer in event data or workflow
data stays the same integer on every hop (ingestion, the event store, the
journal, delivery, the HTTP answers).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

__all__ = ["dumps", "dumps_bytes", "dumps_standard", "loads"]

_LONG_DIGITS = re.compile(rb"\d{19}")  # an integer that may not fit in 64 bits
_LONG_DIGITS_TEXT = re.compile(r"\d{19}")


def dumps_bytes(value: Any, option: int = 0) -> bytes:
    """Compact JSON (orjson unless a big integer needs the standard library).

    Raises:
        TypeError: A value JSON cannot represent.
        ValueError: ``NaN`` or an infinity.
    """
    try:
        return orjson.dumps(value, option=option)
    except orjson.JSONEncodeError as exc:
        if "64-bit" not in str(exc):  # anything else the standard library refuses too
            raise
    return dumps_standard(value)


def dumps_standard(value: Any) -> bytes:
    """Compact JSON by the standard library: exact for big integers and able to nest
    deeper than orjson (about 250), slower. (Writers of values that entered under the
    value limits never need the depth; an answer showing an event stored before them does.)

    Raises:
        TypeError: A value JSON cannot represent.
        ValueError: ``NaN`` or an infinity, or nested deeper than Python recursion goes.
    """
    try:
        return json.dumps(
            value, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode()
    except RecursionError:
        raise ValueError("nested too deep to write") from None


def dumps(value: Any, option: int = 0) -> str:
    """:func:`dumps_bytes` as text."""
    return dumps_bytes(value, option).decode()


def loads(text: str | bytes) -> Any:
    """Parse JSON; integers beyond 64 bits stay exact.

    A text with a run of 19 or more digits is read by the standard library
    (slower, exact); any other by orjson.

    Raises:
        ValueError: Not valid JSON (``NaN`` and ``Infinity`` are not JSON), or
            nested too deep to read.
    """
    long = _LONG_DIGITS if isinstance(text, bytes) else _LONG_DIGITS_TEXT
    if long.search(text) is None:  # type: ignore[arg-type]
        return orjson.loads(text)
    try:
        return json.loads(text, parse_constant=_not_json)
    except RecursionError:
        raise ValueError("nested too deep") from None


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
