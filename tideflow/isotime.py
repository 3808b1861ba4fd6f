"""ISO 8601 durations and timestamps, as the Serverless Workflow and CloudEvents specs use them."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta

import isodate

# RFC 3339 as CloudEvents requires it: a date, 'T', a time, and an offset or 'Z'.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def parse_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration such as ``PT1S``, ``P2D`` or ``P1W``.

    Years and months are taken as 365 and 30 days: a workflow timer needs a
    fixed length.

    Raises:
        ValueError: ``text`` is not an ISO 8601 duration.
    """
    if not str(text).startswith(("P", "p", "-P")):
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    try:
        value = isodate.parse_duration(text)
    except (isodate.ISO8601Error, ValueError) as exc:
        raise ValueError(f"not an ISO 8601 duration: {text!r}") from exc
    if isinstance(value, isodate.Duration):
        days = float(value.years) * 365 + float(value.months) * 30
        tdelta: timedelta = value.tdelta
        return tdelta + timedelta(days=days)
    if not isinstance(value, timedelta):
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    return value


def duration_seconds(text: str) -> float:
    """Seconds in an ISO 8601 duration (cached: runtimes ask on every run and step)."""
    try:
        return _cached_seconds(text)
    except TypeError:  # not hashable: parse_duration says what is wrong with it
        return parse_duration(text).total_seconds()


@functools.lru_cache(maxsize=1024)
def _cached_seconds(text: str) -> float:
    return parse_duration(text).total_seconds()


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp into an aware datetime.

    Raises:
        ValueError: ``text`` is not RFC 3339.
    """
    if not _RFC3339.fullmatch(str(text)):
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    normalized = text.replace("z", "Z").replace("t", "T")
    if normalized.endswith("Z"):
        normalized = normalized[:-1] + "+00:00"
    return datetime.fromisoformat(normalized)


def format_timestamp(moment: datetime) -> str:
    """Format an aware datetime as RFC 3339 in UTC with a ``Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
