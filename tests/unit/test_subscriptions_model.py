"""Subscriptions without I/O: validation, back-off, offsets, transforms, binary encoding."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tideflow.errors import ExpressionError, InvalidArgument, InvalidFilter
from tideflow.triggers._workers import OffsetTracker
from tideflow.triggers.delivery import classify, dead_letter
from tideflow.triggers.subscriptions import BackoffPolicy, DeliveryPolicy, parse_spec
from tideflow.triggers.transform import Transform

SINK = "http://127.0.0.1:9000/hook"


def spec(**body: Any) -> Any:
    return parse_spec({"bus": "orders", "sink": SINK, **body})


def test_defaults_and_round_trip() -> None:
    parsed = spec()
    assert parsed.start == "latest"
    assert parsed.dead_letter_bus == "orders.deadletter"
    assert parsed.delivery == DeliveryPolicy()
    again = parse_spec(parsed.to_json())
    assert again.to_json() == parsed.to_json()
    assert again.delivery.dead_letter_bus == "orders.deadletter"


@pytest.mark.parametrize(
    ("body", "argument"),
    [
        ({"delivery": {"retry": -1}}, "delivery.retry"),
        ({"delivery": {"retry": True}}, "delivery.retry"),
        ({"delivery": {"backoffPolicy": "fibonacci"}}, "delivery.backoffPolicy"),
        ({"delivery": {"backoffDelay": "1s"}}, "delivery.backoffDelay"),
        ({"delivery": {"timeout": "PT0S"}}, "delivery.timeout"),
        ({"delivery": {"maxInFlight": 1001}}, "delivery.maxInFlight"),
        ({"delivery": {"ordered": "yes"}}, "delivery.ordered"),
        ({"delivery": {"deadLetterBus": "bad name"}}, "delivery.deadLetterBus"),
        ({"delivery": {"deadLetterBus": "orders"}}, "delivery.deadLetterBus"),
        ({"delivery": {"speed": 1}}, "delivery.speed"),
        ({"delivery": []}, "delivery"),
        ({"sink": "/relative"}, "sink"),
        ({"sink": None}, "sink"),
        ({"transform": 3}, "transform"),
        ({"transform": ".a | ]"}, "transform"),
        ({"from": -1}, "from"),
        ({"from": "now"}, "from"),
        ({"bus": "x" * 64}, "bus"),
        ({"bus": "b" * 60}, "delivery.deadLetterBus"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_fields_name_their_path(body: dict[str, Any], argument: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        spec(**body)
    assert caught.value.argument == argument
    assert caught.value.message


def test_invalid_filters_name_their_path() -> None:
    with pytest.raises(InvalidFilter) as caught:
        spec(filters=[{"exact": {"type": "a"}}, {"all": [{"sql": "a = "}]}])
    assert caught.value.path == ("filters", 1, "all", 0, "sql")
    assert "column" in caught.value.reason


def test_from_accepts_an_offset_as_number_or_digits() -> None:
    assert spec(**{"from": 7}).start == 7
    assert spec(**{"from": "7"}).start == 7
    assert spec(**{"from": "earliest"}).start == "earliest"


def test_backoff_exponential_linear_and_capped() -> None:
    exponential = DeliveryPolicy(backoff_delay=timedelta(seconds=2), max_delay=timedelta(seconds=9))
    assert [exponential.backoff(n).total_seconds() for n in range(1, 6)] == [2, 4, 8, 9, 9]
    linear = DeliveryPolicy(
        backoff_policy=BackoffPolicy.LINEAR,
        backoff_delay=timedelta(seconds=3),
        max_delay=timedelta(seconds=10),
    )
    assert [linear.backoff(n).total_seconds() for n in range(1, 6)] == [3, 6, 9, 10, 10]
    assert exponential.backoff(10_000) == timedelta(seconds=9)  # no overflow
    assert DeliveryPolicy(ordered=True, max_in_flight=50).window == 1
    assert DeliveryPolicy(max_in_flight=50).window == 50


def test_committed_offset_moves_only_past_a_contiguous_prefix() -> None:
    tracker = OffsetTracker(committed=4)
    for offset in (5, 6, 7):
        tracker.start(offset)
    tracker.take(8)  # filtered out
    assert tracker.committed == 4
    tracker.finish(6)
    tracker.finish(7)
    assert tracker.committed == 4
    tracker.finish(5)
    assert tracker.committed == 8
    progress = tracker.progress("s")
    assert progress is not None
    assert progress.committed_offset == 8
    assert tracker.progress("s") is None  # nothing new
    tracker.restore(progress)
    again = tracker.progress("s")
    assert again is not None
    assert again.committed_offset == 8


def test_offsets_awaiting_a_retry_beyond_the_cursor_do_not_advance_the_commit() -> None:
    tracker = OffsetTracker(committed=4, pending={7})
    tracker.take(5)
    assert tracker.committed == 5
    tracker.take(6)
    tracker.take(7)
    tracker.take(8)
    assert tracker.committed == 6
    tracker.finish(7)
    assert tracker.committed == 8


@pytest.mark.parametrize(
    ("status", "ok", "retryable"),
    [(200, True, False), (204, True, False), (301, False, False), (400, False, False),
     (404, False, False), (429, False, True), (500, False, True), (503, False, True)],
)  # fmt: skip
def test_status_classification(status: int, ok: bool, retryable: bool) -> None:
    attempt = classify(status)
    assert (attempt.ok, attempt.retryable, attempt.status) == (ok, retryable, status)


def test_transform_result_becomes_the_data() -> None:
    event = {"id": "1", "source": "/s", "type": "t", "data_base64": "AAE=", "x": 1}
    out = Transform("{kind: .type, x}").apply(event)
    assert out == {
        "id": "1",
        "source": "/s",
        "type": "t",
        "x": 1,
        "data": {"kind": "t", "x": 1},
        "datacontenttype": "application/json",
    }
    assert Transform("empty").apply(event) is None
    with pytest.raises(ExpressionError):
        Transform(".x | ascii_downcase").apply(event)


def test_dead_letter_keeps_the_event_and_adds_the_reason() -> None:
    event = {"id": "e-1", "source": "/s", "type": "t", "data": {"a": 1}}
    letter = dead_letter(event, "HTTP 404 on the first attempt", subscription_id="sub", offset=9)
    assert letter["id"] == "sub:e-1"
    assert letter["deadletterid"] == "e-1"
    assert letter["deadletterreason"] == "HTTP 404 on the first attempt"
    assert (letter["deadlettersub"], letter["deadletteroffset"]) == ("sub", 9)
    assert letter["data"] == {"a": 1}
    assert all(len(name) <= 20 for name in letter)  # CloudEvents attribute names


async def test_an_event_that_cannot_be_encoded_is_not_retried() -> None:
    from tideflow.triggers.delivery import HttpSender

    sender = HttpSender()
    bad = {"id": "1", "source": "/s", "type": "t", "data_base64": "not base64!"}
    attempt = await sender.send("http://127.0.0.1:9/", bad, 1.0)
    await sender.aclose()
    assert (attempt.ok, attempt.retryable) == (False, False)
    assert attempt.reason.startswith("cannot encode the event")


def test_progress_past_skipped_events_only_can_wait_for_a_later_flush() -> None:
    tracker = OffsetTracker(committed=10)
    tracker.take(12)  # two events skipped by the filters
    assert tracker.progress("s", skipped=False) is None
    written = tracker.progress("s")
    assert written is not None
    assert written.committed_offset == 12
    tracker.start(13)
    tracker.finish(13)
    tracker.delivered += 1  # delivered: written whatever ``skipped`` says
    delivered = tracker.progress("s", skipped=False)
    assert delivered is not None
    assert (delivered.committed_offset, delivered.delivered) == (13, 1)
    assert tracker.progress("s") is None
