"""Schedules: cron expressions and ISO 8601 repeating intervals (pure).

A schedule answers two questions about aware datetimes -- the first tick
strictly after a moment, and the last tick at or before one -- and
:func:`plan_ticks` turns "the next tick not yet run" and "now" into the ticks
to start, following a :class:`CatchUp` policy (see ``docs/timers.md``).

- **cron**: 5 fields (Unix: minute hour day-of-month month day-of-week, or
  ``@hourly`` and friends) or 6-7 fields (Quartz: second minute hour
  day-of-month month day-of-week [year], ``?`` for "no value", days of the
  week 1-7 = SUN-SAT, ``6L`` = last Friday, ``2#1`` = first Monday). Evaluated
  on the wall clock of ``timezone``; ``valid_until`` ends it (exclusive).
- **interval**: ``R[n]/<start>/<duration>``, ``R[n]/<duration>/<end>``,
  ``R[n]/<duration>`` (anchored at the schedule's creation, first tick one
  duration later) and ``R[n]/<start>/<end>``. Years, months, weeks and days
  step the wall clock of ``timezone``; hours, minutes and seconds are elapsed
  time.

Daylight saving time: every wall time that matches runs once. A wall time in
the spring gap runs at the shifted instant; in the autumn overlap only its
first occurrence runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import isodate
from croniter import CroniterBadDateError, CroniterError, croniter

from tideflow.errors import InvalidSchedule
from tideflow.isotime import parse_timestamp

_MICRO = timedelta(microseconds=1)
_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


class CatchUp(StrEnum):
    """What to do with ticks missed while no process was running."""

    SKIP = "skip"
    """Run only ticks within the grace period; drop older ones."""
    LATEST = "latest"
    """Run the most recent missed tick once (coalesced); the default."""
    ALL = "all"
    """Run every missed tick, oldest first (at most ``max_catch_up``, the newest)."""


def _zone(name: str, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidSchedule(f"unknown time zone {name!r}", argument=where) from exc


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    """Naive wall-clock time of an aware ``moment`` in ``zone``."""
    return moment.astimezone(zone).replace(tzinfo=None)


def _aware(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant (in UTC) of a naive wall-clock time: first occurrence; gaps shift forward."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class CronSchedule:
    """A cron expression on the wall clock of a time zone."""

    expression: str
    """The expression as written."""
    timezone: str = "UTC"
    """IANA time zone name the expression is read in."""
    valid_until: datetime | None = None
    """No tick at or after this instant."""
    _expr: str = field(default="", repr=False, compare=False)
    _seconds: bool = field(default=False, repr=False, compare=False)
    _zone: ZoneInfo = field(default=ZoneInfo("UTC"), repr=False, compare=False)

    @classmethod
    def parse(
        cls, expression: object, *, timezone: str = "UTC", valid_until: datetime | None = None
    ) -> CronSchedule:
        """Check and compile a cron expression.

        Raises:
            InvalidSchedule: The expression or time zone is invalid.
        """
        expr, seconds = _normalize_cron(expression)
        zone = _zone(timezone, "timezone")
        try:
            probe = datetime(2026, 1, 1)  # noqa: DTZ001 -- croniter works on naive wall time
            croniter(expr, probe, second_at_beginning=seconds).get_next(datetime)
        except (CroniterError, ValueError, KeyError) as exc:
            raise InvalidSchedule(
                f"invalid cron expression {expression!r}: {exc}", argument="cron"
            ) from exc
        return cls(
            expression=str(expression),
            timezone=timezone,
            valid_until=valid_until,
            _expr=expr,
            _seconds=seconds,
            _zone=zone,
        )

    def next_after(self, moment: datetime) -> datetime | None:
        """The first tick strictly after ``moment``, or ``None`` past ``valid_until``."""
        it = croniter(self._expr, _local(moment, self._zone), second_at_beginning=self._seconds)
        for _ in range(10_000):
            try:
                tick = _aware(it.get_next(datetime), self._zone)
            except CroniterBadDateError:  # e.g. a year field in the past
                return None
            if self.valid_until is not None and tick >= self.valid_until:
                return None
            if tick > moment:
                return tick
        return None  # pragma: no cover - only a pathological zone gets here

    def last_at_or_before(self, moment: datetime) -> datetime | None:
        """The last tick at or before ``moment`` (``valid_until`` respected)."""
        if self.valid_until is not None and moment >= self.valid_until:
            moment = self.valid_until - _MICRO
        wall = _local(moment, self._zone) + _MICRO
        it = croniter(self._expr, wall, second_at_beginning=self._seconds)
        for _ in range(10_000):
            try:
                tick = _aware(it.get_prev(datetime), self._zone)
            except CroniterBadDateError:
                return None
            if tick <= moment:
                return tick
        return None  # pragma: no cover

    def to_json(self) -> dict[str, Any]:
        """The serverless-workflow form, for storage."""
        cron: dict[str, Any] = {"expression": self.expression}
        if self.valid_until is not None:
            cron["validUntil"] = self.valid_until.isoformat()
        return {"cron": cron, "timezone": self.timezone}


def _normalize_cron(expression: object) -> tuple[str, bool]:
    """Turn a Unix or Quartz expression into croniter's form; True if it has seconds."""
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidSchedule("a cron expression must be a non-empty string", argument="cron")
    text = expression.strip()
    if text.lower() in _ALIASES:
        return text.lower(), False
    fields = text.split()
    if len(fields) == 5:
        return " ".join(fields), False
    if len(fields) not in (6, 7):
        raise InvalidSchedule(
            f"cron expression {expression!r} has {len(fields)} fields; expected 5 (Unix) "
            "or 6-7 (Quartz: seconds first, optional year)",
            argument="cron",
        )
    fields = ["*" if f == "?" else f for f in fields]
    fields[5] = _quartz_weekdays(fields[5], expression)
    return " ".join(fields), True


_WEEKDAY_NUMBER = re.compile(r"(?<![#/\d])([1-7])(?!\d)")


def _quartz_weekdays(text: str, expression: str) -> str:
    """Quartz days of the week (1-7 = SUN-SAT, ``6L``) as croniter's (0-6, ``L5``)."""
    if re.search(r"(?<![#/\d])[089](?!\d)", text):
        raise InvalidSchedule(
            f"cron expression {expression!r}: Quartz days of the week are 1-7 (SUN-SAT)",
            argument="cron",
        )
    shifted = _WEEKDAY_NUMBER.sub(lambda m: str(int(m.group(1)) - 1), text)
    return re.sub(r"(?<!\d)([0-6])L", r"L\1", shifted)


@dataclass(frozen=True, slots=True, kw_only=True)
class IntervalSchedule:
    """An ISO 8601 repeating interval (``R[n]/...``).

    Ticks are ``origin + p * period`` for whole numbers ``p`` in ``[lo, hi]``:
    ``p >= 0`` from a start, ``p >= 1`` from the anchor, ``p <= -1`` before an end.
    """

    text: str
    """The interval as written."""
    timezone: str = "UTC"
    """Zone for wall-clock steps (days and longer) and for times written without offset."""
    anchor: datetime
    """Origin of ``R/<duration>`` (the schedule's creation); unused otherwise."""
    _origin: datetime = field(repr=False, compare=False)
    _calendar: Any = field(repr=False, compare=False)  # isodate.Duration or timedelta
    _elapsed: timedelta = field(repr=False, compare=False)
    _lo: int | None = field(repr=False, compare=False)
    _hi: int | None = field(repr=False, compare=False)
    _zone: ZoneInfo = field(repr=False, compare=False)

    @classmethod
    def parse(cls, text: object, *, timezone: str = "UTC", anchor: datetime) -> IntervalSchedule:
        """Check and compile a repeating interval.

        Raises:
            InvalidSchedule: The interval or time zone is invalid.
        """
        zone = _zone(timezone, "timezone")
        text = text if isinstance(text, str) else repr(text)
        parts = text.split("/")
        if len(parts) not in (2, 3) or not re.fullmatch(r"[Rr]\d*", parts[0]):
            raise InvalidSchedule(
                f"invalid interval {text!r}: expected R[n]/<start>/<duration>, "
                "R[n]/<duration>/<end> or R[n]/<duration>",
                argument="interval",
            )
        origin, period, lo, hi = _interval_shape(text, parts[1:], zone, anchor)
        if len(parts[0]) > 1:  # Rn: n repetitions
            count = int(parts[0][1:])
            if lo is not None:
                hi = lo + count - 1
            else:
                lo = -count
        calendar, elapsed = _split_period(period, text)
        return cls(
            text=text,
            timezone=timezone,
            anchor=anchor,
            _origin=origin,
            _calendar=calendar,
            _elapsed=elapsed,
            _lo=lo,
            _hi=hi,
            _zone=zone,
        )

    def _tick(self, p: int) -> datetime:
        wall = _local(self._origin, self._zone) + self._calendar * p
        return _aware(wall, self._zone) + self._elapsed * p

    def _estimate(self, moment: datetime) -> int:
        """A position whose tick is within a step or two of ``moment``, clamped to the range."""
        step = (self._tick(1) - self._tick(0)).total_seconds()
        p = int((moment - self._origin).total_seconds() // step)
        if self._lo is not None:
            p = max(p, self._lo)
        if self._hi is not None:
            p = min(p, self._hi)
        return p

    def _in_range(self, p: int) -> bool:
        return (self._lo is None or p >= self._lo) and (self._hi is None or p <= self._hi)

    def next_after(self, moment: datetime) -> datetime | None:
        """The first tick strictly after ``moment``, or ``None`` when the series ended."""
        if self._lo is not None and self._hi is not None and self._hi < self._lo:
            return None
        p = self._estimate(moment)
        while self._in_range(p - 1) and self._tick(p - 1) > moment:
            p -= 1
        while self._tick(p) <= moment:
            p += 1
            if not self._in_range(p):
                return None
        return self._tick(p)

    def last_at_or_before(self, moment: datetime) -> datetime | None:
        """The last tick at or before ``moment``, or ``None`` before the series starts."""
        if self._lo is not None and self._hi is not None and self._hi < self._lo:
            return None
        p = self._estimate(moment)
        while self._tick(p) > moment:
            p -= 1
            if not self._in_range(p):
                return None
        while self._in_range(p + 1) and self._tick(p + 1) <= moment:
            p += 1
        return self._tick(p)

    def to_json(self) -> dict[str, Any]:
        """The serverless-workflow form plus the anchor, for storage."""
        return {"interval": self.text, "timezone": self.timezone, "anchor": self.anchor.isoformat()}


def _interval_shape(
    text: str, parts: list[str], zone: ZoneInfo, anchor: datetime
) -> tuple[datetime, str, int | None, int | None]:
    """(origin, period text, lowest position, highest position) of an interval's parts."""
    if len(parts) == 1:
        return anchor, parts[0], 1, None
    first, second = parts
    if first[:1] in "Pp":
        return _instant(second, zone, text), first, None, -1
    start = _instant(first, zone, text)
    if second[:1] in "Pp":
        return start, second, 0, None
    end = _instant(second, zone, text)
    if end <= start:
        raise InvalidSchedule(f"invalid interval {text!r}: end before start", argument="interval")
    return start, f"PT{(end - start).total_seconds():.6f}S", 0, None


def _instant(value: str, zone: ZoneInfo, text: str) -> datetime:
    try:
        return parse_timestamp(value)
    except ValueError:
        pass
    try:
        parsed = isodate.parse_datetime(value)
    except (isodate.ISO8601Error, ValueError) as exc:
        raise InvalidSchedule(
            f"invalid interval {text!r}: {value!r} is not an ISO 8601 date-time",
            argument="interval",
        ) from exc
    return parsed if parsed.tzinfo is not None else _aware(parsed, zone)


def _split_period(period: str, text: str) -> tuple[isodate.Duration | timedelta, timedelta]:
    """Split a duration into its wall-clock part (Y, M, W, D) and its elapsed part (H, M, S)."""
    try:
        value = isodate.parse_duration(period)
    except (isodate.ISO8601Error, ValueError) as exc:
        raise InvalidSchedule(
            f"invalid interval {text!r}: {period!r} is not an ISO 8601 duration",
            argument="interval",
        ) from exc
    delta = value.tdelta if isinstance(value, isodate.Duration) else value
    months = (value.years * 12 + value.months) if isinstance(value, isodate.Duration) else 0
    calendar: isodate.Duration | timedelta = timedelta(days=delta.days)
    if months:
        calendar = isodate.Duration(days=delta.days, months=months)
    elapsed = timedelta(seconds=delta.seconds, microseconds=delta.microseconds)
    if not months and delta <= timedelta(0):
        raise InvalidSchedule(
            f"invalid interval {text!r}: the duration must be positive", argument="interval"
        )
    return calendar, elapsed


Schedule = CronSchedule | IntervalSchedule


def parse_schedule(
    spec: str | Mapping[str, Any], *, anchor: datetime, timezone: str | None = None
) -> Schedule:
    """Build a schedule from its Serverless Workflow form.

    Args:
        spec: A string (``R...`` is an interval, anything else a cron expression),
            or a mapping with ``interval`` or ``cron`` (a string or
            ``{"expression", "validUntil"}``), and optionally ``timezone``
            (and ``anchor``, as stored by ``to_json``).
        anchor: The schedule's creation time, origin of ``R/<duration>``.
        timezone: Overrides the mapping's ``timezone``; default UTC.

    Raises:
        InvalidSchedule: Says which part is wrong.
    """
    if isinstance(spec, str):
        spec = {"interval": spec} if spec.strip()[:1] in ("R", "r") else {"cron": spec}
    if not isinstance(spec, Mapping):
        raise InvalidSchedule("a schedule must be a string or an object", argument="schedule")
    zone = timezone or spec.get("timezone") or "UTC"
    if ("interval" in spec) == ("cron" in spec):
        raise InvalidSchedule(
            "a schedule needs exactly one of interval or cron", argument="schedule"
        )
    if "interval" in spec:
        if "anchor" in spec:
            anchor = _stored_time(spec["anchor"], "anchor")
        return IntervalSchedule.parse(spec["interval"], timezone=zone, anchor=anchor)
    cron = spec["cron"]
    if isinstance(cron, Mapping):
        until = cron.get("validUntil")
        valid_until = _stored_time(until, "cron.validUntil", zone) if until else None
        return CronSchedule.parse(
            cron.get("expression", ""), timezone=zone, valid_until=valid_until
        )
    return CronSchedule.parse(cron, timezone=zone)


def _stored_time(value: Any, where: str, zone: str = "UTC") -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise InvalidSchedule(f"{where} must be an ISO 8601 date-time", argument=where)
    return _instant(value, _zone(zone, "timezone"), value)


@dataclass(frozen=True, slots=True)
class TickPlan:
    """What :func:`plan_ticks` decided."""

    run: tuple[datetime, ...]
    """Ticks to start now, oldest first."""
    next_tick: datetime | None
    """The first tick after ``now``: when to look again (``None``: the schedule ended)."""
    skipped: int
    """Missed ticks not run (counted up to ``max_catch_up``)."""


def plan_ticks(
    schedule: Schedule,
    *,
    pending: datetime | None,
    now: datetime,
    policy: CatchUp = CatchUp.LATEST,
    grace: timedelta = timedelta(minutes=1),
    max_catch_up: int = 100,
) -> TickPlan:
    """Decide which ticks to start, given the first tick not yet run.

    A tick at most ``grace`` old is on time and always runs. Older ticks were
    missed (the service was down or late); ``policy`` says what happens to them.

    Args:
        schedule: The schedule.
        pending: The first tick not yet run (``None``: the schedule has ended).
        now: The current time.
        policy: What to do with missed ticks.
        grace: How late a tick may start and still count as on time.
        max_catch_up: Most ticks one plan considers (``ALL`` keeps the newest).
    """
    if pending is None or pending > now:
        return TickPlan((), pending, 0)
    recent: list[datetime] = []  # newest first
    tick = schedule.last_at_or_before(now)
    while tick is not None and tick >= pending and len(recent) < max_catch_up:
        recent.append(tick)
        tick = schedule.last_at_or_before(tick - _MICRO)
    on_time = [t for t in recent if now - t <= grace]
    missed = recent[len(on_time) :]
    if policy is CatchUp.ALL:
        run = recent
    elif policy is CatchUp.LATEST and not on_time:
        run = missed[:1]
    else:
        run = on_time
    return TickPlan(tuple(reversed(run)), schedule.next_after(now), len(recent) - len(run))
