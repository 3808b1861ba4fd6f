from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tideflow.isotime import duration_seconds, format_timestamp, parse_duration, parse_timestamp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT1S", timedelta(seconds=1)),
        ("PT0.5S", timedelta(seconds=0.5)),
        ("PT2H", timedelta(hours=2)),
        ("P1D", timedelta(days=1)),
        ("P2W", timedelta(weeks=2)),
        ("P1M", timedelta(days=30)),
        ("P30D", timedelta(days=30)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["PT2W", "2 seconds", "", "P", "T1S"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_duration(text)


def test_timestamps_round_trip() -> None:
    moment = parse_timestamp("2020-03-20T09:00:00.250+01:00")
    assert moment == datetime(2020, 3, 20, 8, 0, 0, 250000, tzinfo=UTC)
    assert format_timestamp(moment) == "2020-03-20T08:00:00.250000Z"


@pytest.mark.parametrize(
    "text", ["2020-03-20", "2020-03-20T09:00:00", "yesterday", "2020-03-20T09:00:00Z\n"]
)
def test_parse_timestamp_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_timestamp(text)


def test_duration_seconds_is_cached_and_still_rejects_bad_input() -> None:
    assert duration_seconds("PT2S") == duration_seconds("PT2S") == 2.0
    with pytest.raises(ValueError, match="not an ISO 8601 duration"):
        duration_seconds("2 seconds")
    with pytest.raises(ValueError, match="not an ISO 8601 duration"):
        duration_seconds(["PT1S"])  # type: ignore[arg-type]
