"""Pure parts of the event store: group commit batching, segment arithmetic, value types."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from tideflow.errors import EventRejected, InvalidArgument, StoreError
from tideflow.eventstore import Retention, check_bus_name, event_key
from tideflow.eventstore.group_commit import GroupCommit
from tideflow.eventstore.segments import (
    SegmentState,
    segment_of,
    segment_start,
    segments_to_drop,
    wants_segment_ahead,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Recorder:
    """A flush that records its batches; items named 'bad' fail the whole batch."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def flush(self, items: Sequence[str]) -> list[str | BaseException]:
        await self.gate.wait()
        self.batches.append(list(items))
        if "bad" in items:
            raise RuntimeError("constraint violated")
        return [KeyError(item) if item == "missing" else item.upper() for item in items]


async def test_concurrent_submissions_share_a_flush() -> None:
    recorder = Recorder()
    committer: GroupCommit[str, str] = GroupCommit(recorder.flush, max_batch=100)
    runner = asyncio.create_task(committer.run())
    recorder.gate.clear()  # hold the first flush so the rest queue up behind it
    first = asyncio.create_task(committer.submit("a"))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(committer.submit(x)) for x in "bcd"]
    await asyncio.sleep(0)
    recorder.gate.set()
    assert await first == "A"
    assert [await t for t in rest] == ["B", "C", "D"]
    assert recorder.batches == [["a"], ["b", "c", "d"]]
    committer.close()
    await runner


async def test_batches_stop_at_max_batch_units() -> None:
    recorder = Recorder()
    committer: GroupCommit[str, str] = GroupCommit(recorder.flush, max_batch=5)
    recorder.gate.clear()
    runner = asyncio.create_task(committer.run())
    tasks = [asyncio.create_task(committer.submit(x, size=2)) for x in "abcdef"]
    await asyncio.sleep(0)
    recorder.gate.set()
    await asyncio.gather(*tasks)
    assert [len(b) for b in recorder.batches] == [3, 3]  # 2+2 < 5, so a third joins
    committer.close()
    await runner


async def test_a_failing_batch_is_retried_item_by_item() -> None:
    recorder = Recorder()
    committer: GroupCommit[str, str] = GroupCommit(recorder.flush)
    recorder.gate.clear()
    runner = asyncio.create_task(committer.run())
    tasks = [asyncio.create_task(committer.submit(x)) for x in ["x", "bad", "missing", "y"]]
    await asyncio.sleep(0)
    recorder.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] == "X"
    assert results[3] == "Y"
    assert isinstance(results[1], StoreError)
    assert "constraint violated" in str(results[1])
    assert isinstance(results[1].__cause__, RuntimeError)
    assert isinstance(results[2], KeyError)  # a per-item error is passed on as it is
    assert recorder.batches[0] == ["x", "bad", "missing", "y"]
    assert sorted(map(tuple, recorder.batches[1:])) == [("bad",), ("missing",), ("x",), ("y",)]
    committer.close()
    await runner


async def test_closed_committer_refuses_and_cancel_fails_queued() -> None:
    recorder = Recorder()
    committer: GroupCommit[str, str] = GroupCommit(recorder.flush)
    with pytest.raises(StoreError, match="not started"):
        await committer.submit("early")
    recorder.gate.clear()
    runner = asyncio.create_task(committer.run())
    await asyncio.sleep(0)
    stuck = asyncio.create_task(committer.submit("in-flight"))
    await asyncio.sleep(0)
    queued = asyncio.create_task(committer.submit("queued"))
    await asyncio.sleep(0)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    with pytest.raises(StoreError, match="stopped"):
        await queued
    stuck.cancel()
    with pytest.raises(StoreError):
        await committer.submit("late")


def test_segment_arithmetic() -> None:
    assert [segment_of(o, 10) for o in (1, 10, 11, 20, 21)] == [0, 0, 1, 1, 2]
    assert [segment_start(n, 10) for n in (0, 1, 2)] == [1, 11, 21]
    assert wants_segment_ahead(next_offset=11, ready_until=21, size=10)  # filling the last one
    assert not wants_segment_ahead(next_offset=10, ready_until=21, size=10)


def _segment(no: int, next_offset: int, **retention: object) -> SegmentState:
    return SegmentState(
        bus_id=1,
        bus="b",
        segment_no=no,
        end_offset=(no + 1) * 10 + 1,
        next_offset=next_offset,
        newest_at=retention.pop("newest_at", NOW),  # type: ignore[arg-type]
        max_age=retention.get("max_age"),  # type: ignore[arg-type]
        max_events=retention.get("max_events"),  # type: ignore[arg-type]
    )


def test_retention_by_count_keeps_partly_retained_segments() -> None:
    segments = [_segment(n, next_offset=36, max_events=12) for n in range(3)]
    # newest 12 are 24..35: segment 0 (1-10) and 1 (11-20) go, segment 2 (21-30) stays
    assert [s.segment_no for s in segments_to_drop(segments, NOW)] == [0, 1]


def test_retention_by_age_stops_at_the_first_young_segment() -> None:
    old, young = NOW - timedelta(days=2), NOW
    segments = [
        _segment(0, 41, max_age=timedelta(days=1), newest_at=old),
        _segment(1, 41, max_age=timedelta(days=1), newest_at=young),
        _segment(2, 41, max_age=timedelta(days=1), newest_at=old),  # never leave a hole
    ]
    assert [s.segment_no for s in segments_to_drop(segments, NOW)] == [0]


def test_a_segment_being_filled_is_never_dropped() -> None:
    filling = _segment(0, next_offset=5, max_events=1, max_age=timedelta(seconds=1))
    assert not filling.expired(NOW + timedelta(days=9))


def test_retention_json() -> None:
    policy = Retention.from_json({"maxAge": "P7D", "maxEvents": 1000})
    assert policy == Retention(max_age=timedelta(days=7), max_events=1000)
    assert policy is not None
    assert policy.to_json() == {"maxAge": "P7D", "maxEvents": 1000}
    assert Retention(max_age=timedelta(seconds=90)).to_json() == {"maxAge": "PT90S"}
    assert Retention.from_json(None) is None
    for bad, where in [
        ({"maxAge": "soon"}, "retention.maxAge"),
        ({"maxEvents": 0}, "retention.maxEvents"),
        ({"maxEvents": True}, "retention.maxEvents"),
        ({"maxevents": 3}, "retention.maxevents"),
        ([], "retention"),
    ]:
        with pytest.raises(InvalidArgument) as caught:
            Retention.from_json(bad)
        assert caught.value.argument == where


def test_bus_names_and_event_keys() -> None:
    assert check_bus_name("orders.eu-1_b") == "orders.eu-1_b"
    for bad in ["", "-x", "a b", "x" * 64, "é", None, "orders\n", "orders\r\n"]:
        with pytest.raises(InvalidArgument):
            check_bus_name(bad)
    assert event_key({"source": "/s", "id": "1"}) == ("/s", "1")
    with pytest.raises(EventRejected) as caught:
        event_key({"source": "/s", "id": 5}, 3)
    assert (caught.value.attribute, caught.value.index) == ("id", 3)
    with pytest.raises(EventRejected, match="NUL"):
        event_key({"source": "/s\x00", "id": "1"})
    with pytest.raises(EventRejected, match="not a JSON object"):
        event_key(["not", "a", "mapping"])


async def test_in_flight_flushes_overlap_and_each_caller_gets_its_result() -> None:
    started: list[list[str]] = []
    release = asyncio.Event()

    async def flush(items: Sequence[str]) -> list[str | BaseException]:
        started.append(list(items))
        await release.wait()  # every flush is still committing
        return [item.upper() for item in items]

    committer: GroupCommit[str, str] = GroupCommit(flush, in_flight=2)
    runner = asyncio.create_task(committer.run())
    first = asyncio.create_task(committer.submit("a"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    second = asyncio.create_task(committer.submit("b"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    rest = [asyncio.create_task(committer.submit(x)) for x in "cd"]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert started == [["a"], ["b"]]  # two in flight; c and d wait for a free slot
    assert not first.done()
    release.set()
    assert [await first, await second] == ["A", "B"]
    assert [await t for t in rest] == ["C", "D"]
    assert started[2:] == [["c", "d"]]
    committer.close()
    await runner


def test_encoding_checks_the_value_limits_without_a_walk_for_ordinary_events() -> None:
    from tideflow.eventstore.codec import encode_event

    def nested(depth: int) -> Any:
        value: Any = 1
        for _ in range(depth - 1):
            value = [value]
        return value

    brackets = {"source": "/s", "id": "1", "data": "[{" * 400}  # counted, then walked: fine
    assert encode_event(brackets, 0)[3] == orjson.dumps(brackets).decode()
    for depth in (200, 300, 5000):  # past the limit (128); past orjson's 255; far past both
        with pytest.raises(EventRejected, match="VALUE_DEPTH_LIMIT") as caught:
            encode_event({"source": "/s", "id": "1", "data": nested(depth)}, 2)
        assert (caught.value.status, caught.value.index) == (400, 2)
    with pytest.raises(EventRejected, match="VALUE_BYTES_LIMIT") as big:
        encode_event({"source": "/s", "id": "1", "data": "é" * (5 * 1024 * 1024)}, 0)
    assert big.value.status == 413  # 10 MiB encoded (5 Mi characters) against 8 MiB
