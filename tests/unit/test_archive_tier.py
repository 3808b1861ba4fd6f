"""The archive tier's pure parts: the policy, its location checks, which segments are due, and
the file format's round trip."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tideflow.egress import EgressPolicy
from tideflow.errors import EgressDenied, InvalidArgument
from tideflow.eventstore.archive import (
    check_egress,
    endpoint,
    resolve_target,
    segment_location,
)
from tideflow.eventstore.archive_format import (
    ROW_GROUP,
    checksum,
    decode_segment,
    encode_segment,
    read_row_group,
)
from tideflow.eventstore.segments import ArchiveCandidate, segments_to_archive
from tideflow.eventstore.store import ArchivePolicy, check_segment_events

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_policy_round_trip_and_errors_name_their_field() -> None:
    policy = ArchivePolicy.from_json({"after": "P7D", "to": "s3://b/x"})
    assert policy == ArchivePolicy(after=timedelta(days=7), to="s3://b/x")
    assert policy.to_json() == {"after": "P7D", "to": "s3://b/x"}
    assert ArchivePolicy.from_json(None) is None
    cases = {
        "archive.after": {"after": "7 days", "to": "x"},
        "archive.to": {"after": "P1D"},
        "archive.color": {"after": "P1D", "to": "x", "color": 1},
    }
    for argument, body in cases.items():
        with pytest.raises(InvalidArgument) as caught:
            ArchivePolicy.from_json(body)
        assert caught.value.argument == argument
    with pytest.raises(InvalidArgument, match="positive"):
        ArchivePolicy.from_json({"after": "PT0S", "to": "x"})
    with pytest.raises(InvalidArgument, match="control"):
        ArchivePolicy.from_json({"after": "P1D", "to": "a\nb"})


def test_segment_events_bounds() -> None:
    assert check_segment_events(100) == 100
    for bad in (0, 9, 10**9, "100", True, 1.5):
        with pytest.raises(InvalidArgument) as caught:
            check_segment_events(bad)
        assert caught.value.argument == "segmentEvents"


def test_local_targets_must_lie_under_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert resolve_target("audit", root) == str((root / "audit").resolve())
    assert resolve_target(f"file://{root}/a/b", root) == str((root / "a" / "b").resolve())
    for outside in ("../elsewhere", "/etc", f"file://{tmp_path}", f"{root}/../x"):
        with pytest.raises(InvalidArgument, match="not under the server's archive root"):
            resolve_target(outside, root)
    with pytest.raises(InvalidArgument, match="unsupported scheme 'ftp'"):
        resolve_target("ftp://host/x", root)
    with pytest.raises(InvalidArgument, match="names no bucket"):
        resolve_target("s3:///x", root)
    assert resolve_target("s3://bucket/prefix", root) == "s3://bucket/prefix"


def test_object_store_endpoints_face_the_egress_policy() -> None:
    assert endpoint("/var/x", env={}) is None
    assert endpoint("s3://b/x", env={}) == ("s3.amazonaws.com", 443)
    assert endpoint("s3://b/x", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}) == (
        "127.0.0.1",
        9000,
    )
    assert endpoint("gs://b/x", env={}) == ("storage.googleapis.com", 443)


async def test_a_loopback_endpoint_needs_the_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    with pytest.raises(EgressDenied, match=r"127\.0\.0\.1:9000"):
        await check_egress("s3://b/x", EgressPolicy.for_server())
    await check_egress("s3://b/x", EgressPolicy.for_server(["127.0.0.1:9000"]))
    await check_egress("/local/folder", EgressPolicy.for_server())
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://no-such-host.invalid:9000")
    with pytest.raises(EgressDenied, match=r"no-such-host\.invalid does not resolve"):
        await check_egress("s3://b/x", EgressPolicy.for_server())


def _candidate(bus_id: int, number: int, age_days: float, *, full: bool = True) -> ArchiveCandidate:
    return ArchiveCandidate(
        bus_id=bus_id,
        bus=f"b{bus_id}",
        segment_no=number,
        start_offset=number * 10 + 1,
        end_offset=number * 10 + 11,
        next_offset=number * 10 + (11 if full else 5),
        newest_at=NOW - timedelta(days=age_days),
        after=timedelta(days=7),
        to="/x",
    )


def test_only_the_oldest_run_of_due_segments_is_archived() -> None:
    candidates = [
        _candidate(1, 0, 9),
        _candidate(1, 1, 8),
        _candidate(1, 2, 3),  # too young: stops bus 1
        _candidate(1, 3, 9),
        _candidate(2, 0, 10, full=False),  # still being filled: nothing of bus 2
        _candidate(3, 4, 7.5),
    ]
    due = segments_to_archive(candidates, NOW)
    assert [(c.bus_id, c.segment_no) for c in due] == [(1, 0), (1, 1), (3, 4)]


def test_a_segment_file_round_trips_exactly() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    texts = [
        '{"specversion":"1.0","id":"a","source":"/s","type":"t","data":{"x":"é ✓"}}',
        ' {"specversion": "1.0", "id": "b", "source": "/s", "data": 1180591620717411303424}',
    ]
    rows = [(41, texts[0], at), (42, texts[1], at + timedelta(microseconds=1))]
    data, digest = encode_segment(rows, {"tideflow.bus": "b"})
    segment, metadata = decode_segment(data)
    assert list(segment.texts) == texts
    assert list(segment.offsets) == [41, 42]
    assert list(segment.stored_at) == [at, at + timedelta(microseconds=1)]
    assert metadata["tideflow.checksum"] == digest == checksum([41, 42], texts)
    assert metadata["tideflow.count"] == "2"
    assert metadata["tideflow.bus"] == "b"
    assert segment.index_after(0) == 0
    assert segment.index_after(41) == 1
    assert segment.index_after(99) == 2
    assert checksum([41, 42], texts[::-1]) != digest
    with pytest.raises(ValueError, match="Parquet"):
        decode_segment(b"not parquet")


def test_segment_locations() -> None:
    assert segment_location("s3://b/p/", "audit", 7, 3) == "s3://b/p/audit.7/000000000003.parquet"


def test_reads_decode_one_row_group_at_a_time() -> None:
    at = datetime(2026, 1, 2, tzinfo=UTC)
    count = ROW_GROUP * 2 + 5
    rows = [(1000 + n, f'{{"id":"{n}","source":"/s"}}', at) for n in range(count)]
    data, _ = encode_segment(rows, {})
    groups = [read_row_group(io.BytesIO(data), g) for g in range(4)]
    assert [len(g) for g in groups] == [ROW_GROUP, ROW_GROUP, 5, 0]
    assert groups[1].offsets[0] == 1000 + ROW_GROUP
    assert groups[2].texts[-1] == rows[-1][1]
    assert groups[0].memory > sum(len(r[1]) for r in rows[:ROW_GROUP])

