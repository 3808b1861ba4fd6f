"""JSON text that keeps integers beyond 64 bits exact (pure).

orjson is fast but refuses to write integers beyond 64 bits and reads them
as floats. These helpers use orjson where it is exact and fall back to the
standard library where it is not, so a big integer in event data or workflow
data stays the same integer on every hop (ingestion, the event store, the
journal, delivery, the HTTP answers).
"""

from __future__ import annotations

import json
import math
from datetime import date, time
from typing import Any

import orjson

__all__ = ["dumps", "dumps_bytes", "dumps_standard", "loads"]

_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 19  # after the translation: an integer that may not fit in 64 bits


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

    It writes what orjson writes where orjson can: ``NaN`` and the infinities as
    ``null``, dates and times (YAML's timestamps) in ISO 8601, keys that are not
    strings as text -- so a value does not become unwritable because a big
    integer sent it here (found by the loader fuzz test: a definition with a big
    integer and a date was a 500).

    Raises:
        TypeError: A value JSON cannot represent.
        ValueError: Nested deeper than Python recursion goes.
    """
    try:
        try:
            return _standard(value)
        except (TypeError, ValueError):  # NaN, a date, a date as a key: as orjson writes them
            return _standard(_as_orjson_writes(value))
    except RecursionError:
        raise ValueError("nested too deep to write") from None


def _standard(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _as_orjson_writes(value: Any) -> Any:
    if isinstance(value, dict):
        return {_key(key): _as_orjson_writes(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_as_orjson_writes(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, date | time):
        return value.isoformat()
    return value


def _key(key: Any) -> Any:
    return key.isoformat() if isinstance(key, date | time) else key


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
    if not _has_long_digits(text):
        return orjson.loads(text)
    try:
        return json.loads(text, parse_constant=_not_json)
    except RecursionError:
        raise ValueError("nested too deep") from None


def _has_long_digits(text: str | bytes) -> bool:
    """Whether ``text`` has a run of 19 ASCII digits.

    Every digit becomes ``0`` and the run is looked for as a substring: a
    few milliseconds for a megabyte of numbers, where a regular expression
    took 50-100 ms on the event loop (issue 11's 200,000-item input).
    """
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    return _LONG_DIGITS in raw.translate(_DIGITS_AS_ZERO)


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
