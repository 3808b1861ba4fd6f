"""Cron and ISO 8601 repeating-interval schedules, and the catch-up planner."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from tideflow.errors import InvalidSchedule
from tideflow.timer.schedules import (
    CatchUp,
    CronSchedule,
    IntervalSchedule,
    Schedule,
    parse_schedule,
    plan_ticks,
)

ANCHOR = datetime(2026, 3, 1, tzinfo=UTC)
NY = ZoneInfo("America/New_York")


def ticks(schedule: Schedule, after: datetime, n: int) -> list[datetime]:
    out: list[datetime] = []
    moment = after
    for _ in range(n):
        nxt = schedule.next_after(moment)
        if nxt is None:
            break
        out.append(nxt)
        moment = nxt
    return out


def ticks_until(schedule: Schedule, after: datetime, end: datetime) -> list[datetime]:
    """Every tick after ``after`` up to ``end`` (only as many as there are, not a fixed count)."""
    out: list[datetime] = []
    nxt = schedule.next_after(after)
    while nxt is not None and nxt <= end:
        out.append(nxt)
        nxt = schedule.next_after(nxt)
    return out


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


# --- cron ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("*/15 * * * *", [utc(2026, 3, 1, 0, 15), utc(2026, 3, 1, 0, 30)]),
        ("0 0/15 * * * ?", [utc(2026, 3, 1, 0, 15), utc(2026, 3, 1, 0, 30)]),
        ("30 0 9 ? * 2#1", [utc(2026, 3, 2, 9, 0, 30), utc(2026, 4, 6, 9, 0, 30)]),  # 1st Monday
        ("0 0 12 ? * 6L", [utc(2026, 3, 27, 12), utc(2026, 4, 24, 12)]),  # last Friday
        ("0 0 12 ? * 1", [utc(2026, 3, 1, 12), utc(2026, 3, 8, 12)]),  # Quartz 1 = Sunday
        ("0 12 * * 0", [utc(2026, 3, 1, 12), utc(2026, 3, 8, 12)]),  # Unix 0 = Sunday
        ("0 0 0 1 1 ? 2028", [utc(2028, 1, 1)]),
        ("@hourly", [utc(2026, 3, 1, 1), utc(2026, 3, 1, 2)]),
    ],
)
def test_cron_ticks(expression: str, expected: list[datetime]) -> None:
    schedule = parse_schedule(expression, anchor=ANCHOR)
    assert ticks(schedule, ANCHOR, len(expected) + 1)[: len(expected)] == expected


def test_cron_valid_until_is_exclusive() -> None:
    schedule = parse_schedule(
        {"cron": {"expression": "0 * * * *", "validUntil": "2026-03-01T03:00:00Z"}},
        anchor=ANCHOR,
    )
    assert ticks(schedule, ANCHOR, 10) == [utc(2026, 3, 1, 1), utc(2026, 3, 1, 2)]
    assert schedule.last_at_or_before(utc(2026, 5, 1)) == utc(2026, 3, 1, 2)


def test_cron_in_a_time_zone_across_spring_forward() -> None:
    schedule = parse_schedule({"cron": "30 2 * * *", "timezone": "America/New_York"}, anchor=ANCHOR)
    got = [t.astimezone(NY) for t in ticks(schedule, utc(2026, 3, 7), 3)]
    # 2026-03-08 02:30 does not exist in New York: it runs once, at the shifted instant.
    assert [t.isoformat() for t in got] == [
        "2026-03-07T02:30:00-05:00",
        "2026-03-08T03:30:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ]


def test_cron_in_a_time_zone_across_fall_back_runs_each_wall_time_once() -> None:
    schedule = parse_schedule({"cron": "0 * * * *", "timezone": "America/New_York"}, anchor=ANCHOR)
    got = ticks(schedule, datetime(2026, 11, 1, 0, 30, tzinfo=NY), 3)
    assert [t.astimezone(NY).isoformat() for t in got] == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T02:00:00-05:00",
        "2026-11-01T03:00:00-05:00",
    ]
    assert all(b > a for a, b in itertools.pairwise(got))


@settings(max_examples=150, deadline=None)
@given(
    moment=st.datetimes(
        datetime(2020, 1, 1),  # noqa: DTZ001 -- hypothesis bounds are naive
        datetime(2035, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    expression=st.sampled_from(["*/7 * * * *", "0 3 * * 1-5", "15 */6 1,15 * *", "0 0 29 2 *"]),
)
def test_cron_agrees_with_croniter_in_utc(moment: datetime, expression: str) -> None:
    schedule = parse_schedule(expression, anchor=ANCHOR)
    expected = croniter(expression, moment).get_next(datetime)
    assert schedule.next_after(moment) == expected
    assert schedule.last_at_or_before(expected) == expected
    assert schedule.last_at_or_before(expected - timedelta(microseconds=1)) <= moment  # type: ignore[operator]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * *", "has 3 fields"),
        ("61 * * * *", "invalid cron expression"),
        ("0 0 12 ? * 0", "Quartz days of the week are 1-7"),
        ("", "non-empty string"),
    ],
)
def test_bad_cron_is_a_clear_error(expression: str, message: str) -> None:
    with pytest.raises(InvalidSchedule, match=message) as info:
        CronSchedule.parse(expression)
    assert info.value.argument == "cron"


def test_unknown_time_zone_is_a_clear_error() -> None:
    with pytest.raises(InvalidSchedule, match="unknown time zone 'Mars/Olympus'") as info:
        parse_schedule({"cron": "* * * * *", "timezone": "Mars/Olympus"}, anchor=ANCHOR)
    assert info.value.argument == "timezone"


# --- intervals -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        ("R/2026-03-01T10:00:00Z/PT1H", ANCHOR, [utc(2026, 3, 1, 10), utc(2026, 3, 1, 11)]),
        ("R/PT2H", ANCHOR, [utc(2026, 3, 1, 2), utc(2026, 3, 1, 4)]),
        ("R3/PT1H/2026-03-01T12:00:00Z", ANCHOR, [utc(2026, 3, 1, h) for h in (9, 10, 11)]),
        ("R/PT1H/2026-03-01T03:00:00Z", ANCHOR, [utc(2026, 3, 1, 1), utc(2026, 3, 1, 2)]),
        (
            "R2/2026-03-01T00:00:00Z/PT30M",
            ANCHOR - timedelta(seconds=1),
            [ANCHOR, utc(2026, 3, 1, 0, 30)],
        ),
        (
            "R/2026-03-01T00:00:00Z/2026-03-01T00:10:00Z",
            ANCHOR,
            [utc(2026, 3, 1, 0, 10), utc(2026, 3, 1, 0, 20)],
        ),
        (
            "R/2026-01-31T09:00:00Z/P1M",
            ANCHOR,
            [utc(2026, 3, 31, 9), utc(2026, 4, 30, 9), utc(2026, 5, 31, 9)],
        ),
        ("R0/PT1H", ANCHOR, []),
    ],
)
def test_interval_ticks(text: str, after: datetime, expected: list[datetime]) -> None:
    schedule = parse_schedule(text, anchor=ANCHOR)
    assert ticks(schedule, after, 10)[: len(expected) or None] == expected
    if expected:
        assert len(ticks(schedule, after, 10)) >= len(expected)


def test_interval_days_follow_the_wall_clock_across_dst() -> None:
    schedule = parse_schedule(
        "R/2026-03-07T09:00:00/P1D", anchor=ANCHOR, timezone="America/New_York"
    )
    got = [t.astimezone(NY).isoformat() for t in ticks(schedule, utc(2026, 3, 7), 3)]
    assert got == [
        "2026-03-07T09:00:00-05:00",
        "2026-03-08T09:00:00-04:00",
        "2026-03-09T09:00:00-04:00",
    ]


def test_interval_hours_are_elapsed_time_across_dst() -> None:
    schedule = parse_schedule(
        "R/2026-03-08T00:00:00/PT1H", anchor=ANCHOR, timezone="America/New_York"
    )
    got = ticks(schedule, utc(2026, 3, 8, 5), 4)
    assert [b - a for a, b in itertools.pairwise(got)] == [timedelta(hours=1)] * 3


@settings(max_examples=150, deadline=None)
@given(
    offset=st.integers(-(10**7), 10**8),
    text=st.sampled_from(
        ["R/2026-03-01T00:00:00Z/PT7M", "R/P1M", "R/PT1H/2027-01-01T00:00:00Z", "R5/P1D"]
    ),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
)
def test_interval_next_and_last_are_consistent(offset: int, text: str, zone: str) -> None:
    schedule = IntervalSchedule.parse(text, timezone=zone, anchor=ANCHOR)
    moment = ANCHOR + timedelta(seconds=offset)
    nxt = schedule.next_after(moment)
    last = schedule.last_at_or_before(moment)
    if nxt is not None:
        assert nxt > moment
        assert schedule.last_at_or_before(nxt) == nxt
        prev = schedule.last_at_or_before(nxt - timedelta(microseconds=1))
        assert prev == last
    if last is not None:
        assert last <= moment
        assert schedule.next_after(last - timedelta(microseconds=1)) == last


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("PT1H", "expected R"),
        ("R/soon/PT1H", "not an ISO 8601 date-time"),
        ("R/PT1X", "not an ISO 8601 duration"),
        ("R/PT0S", "must be positive"),
        ("R/2026-03-02T00:00:00Z/2026-03-01T00:00:00Z", "end before start"),
    ],
)
def test_bad_interval_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(InvalidSchedule, match=message) as info:
        IntervalSchedule.parse(text, anchor=ANCHOR)
    assert info.value.argument == "interval"


def test_schedule_needs_exactly_one_kind() -> None:
    with pytest.raises(InvalidSchedule, match="exactly one of interval or cron"):
        parse_schedule({"cron": "* * * * *", "interval": "R/PT1H"}, anchor=ANCHOR)


@pytest.mark.parametrize(
    "spec",
    [
        "R/PT2H",
        {"cron": {"expression": "0 0/15 * * * ?", "validUntil": "2027-01-01T00:00:00Z"}},
        {"interval": "R/P1D", "timezone": "Europe/Berlin"},
    ],
)
def test_to_json_round_trips(spec: object) -> None:
    schedule = parse_schedule(spec, anchor=ANCHOR)  # type: ignore[arg-type]
    again = parse_schedule(schedule.to_json(), anchor=ANCHOR + timedelta(days=3))
    assert again == schedule
    assert ticks(again, ANCHOR, 5) == ticks(schedule, ANCHOR, 5)


# --- catch-up --------------------------------------------------------------

EVERY_5 = parse_schedule("*/5 * * * *", anchor=ANCHOR)
NOW = ANCHOR + timedelta(hours=1, seconds=30)  # 13 ticks since ANCHOR, the last 30 s ago


def test_nothing_to_do_before_the_pending_tick() -> None:
    plan = plan_ticks(EVERY_5, pending=NOW + timedelta(minutes=1), now=NOW)
    assert plan.run == ()
    assert plan.next_tick == NOW + timedelta(minutes=1)


def test_on_time_tick_runs_under_every_policy() -> None:
    for policy in CatchUp:
        plan = plan_ticks(EVERY_5, pending=utc(2026, 3, 1, 1), now=NOW, policy=policy)
        assert plan.run == (utc(2026, 3, 1, 1),)
        assert plan.next_tick == utc(2026, 3, 1, 1, 5)


def test_latest_coalesces_missed_ticks_into_one() -> None:
    plan = plan_ticks(EVERY_5, pending=ANCHOR, now=NOW + timedelta(minutes=2))
    assert plan.run == (utc(2026, 3, 1, 1),)
    assert plan.skipped == 12


def test_skip_drops_missed_ticks() -> None:
    plan = plan_ticks(EVERY_5, pending=ANCHOR, now=NOW + timedelta(minutes=2), policy=CatchUp.SKIP)
    assert plan.run == ()
    assert plan.skipped == 13
    assert plan.next_tick == utc(2026, 3, 1, 1, 5)


def test_all_runs_missed_ticks_oldest_first_up_to_the_limit() -> None:
    plan = plan_ticks(EVERY_5, pending=ANCHOR, now=NOW, policy=CatchUp.ALL)
    assert plan.run == tuple(ANCHOR + timedelta(minutes=5 * i) for i in range(13))
    capped = plan_ticks(EVERY_5, pending=ANCHOR, now=NOW, policy=CatchUp.ALL, max_catch_up=3)
    assert capped.run == (*tuple(utc(2026, 3, 1, 0, m) for m in (50, 55)), utc(2026, 3, 1, 1))


def test_ended_schedule_has_no_next_tick() -> None:
    once = parse_schedule("R1/2026-03-01T00:00:00Z/PT1H", anchor=ANCHOR)
    plan = plan_ticks(once, pending=ANCHOR, now=ANCHOR + timedelta(seconds=1))
    assert plan.run == (ANCHOR,)
    assert plan.next_tick is None


@settings(max_examples=150, deadline=None)
@given(
    minutes=st.integers(1, 90),
    wakes=st.lists(st.integers(1, 6 * 3600), min_size=1, max_size=30),
    policy=st.sampled_from(list(CatchUp)),
)
def test_repeated_planning_starts_each_tick_at_most_once(
    minutes: int, wakes: list[int], policy: CatchUp
) -> None:
    """Simulate a service waking at arbitrary times (downtime included) and planning each time."""
    schedule = parse_schedule(f"R/PT{minutes}M", anchor=ANCHOR)
    pending = schedule.next_after(ANCHOR)
    started: list[datetime] = []
    now = ANCHOR
    for gap in wakes:
        now += timedelta(seconds=gap)
        plan = plan_ticks(schedule, pending=pending, now=now, policy=policy, max_catch_up=10_000)
        assert all(pending is not None and pending <= t <= now for t in plan.run)
        assert list(plan.run) == sorted(plan.run)
        if policy is CatchUp.SKIP:
            assert all(now - t <= timedelta(minutes=1) for t in plan.run)
        if policy is CatchUp.LATEST:  # missed ticks coalesce into at most one run
            assert len([t for t in plan.run if now - t > timedelta(minutes=1)]) <= 1
        started += plan.run
        pending = plan.next_tick
        assert pending is not None
        assert pending > now
    assert len(started) == len(set(started))
    if policy is CatchUp.ALL:
        every = ticks_until(schedule, ANCHOR, now)
        assert started == every
