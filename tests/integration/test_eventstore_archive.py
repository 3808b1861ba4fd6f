"""The archive tier on a local folder and on S3 (moto's server through s3fs): segments move to
Parquet files, the database keeps only live segments, reads from offset 1 see every event once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.archive_support import (
    EVENTS,
    SEGMENT,
    check_tiers,
    ingest,
    manifest,
    partitions,
    read_all,
    same_events,
    stored_texts,
)
from tideflow.errors import EventNotFound
from tideflow.eventstore import ArchivePolicy, Retention
from tideflow.eventstore.archive import ArchiveFiles
from tideflow.eventstore.archive_format import ROW_GROUP
from tideflow.eventstore.gateway import PostgresEventStore
from tideflow.testing import ManualClock
from tideflow.triggers.dispatcher import Dispatcher
from tideflow.triggers.gateway import PostgresSubscriptions

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API: moto's server on a free local port, with a bucket ``archive``."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            patch.setenv(name, value)
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        s3fs.S3FileSystem().mkdir("archive")
        try:
            yield url
        finally:
            s3fs.S3FileSystem.clear_instance_cache()
            server.stop()


async def _archive_everything(pool: Any, to: str, count: int = EVENTS) -> None:
    """Ingest ``count`` events two days ago, archive, check tiers, reads and a subscription."""
    clock = ManualClock()
    store = PostgresEventStore(
        pool, segment_size=SEGMENT, clock=clock, retention_interval=None, archive_interval=None
    )
    await store.start()
    try:
        await store.create_bus("audit", archive=ArchivePolicy(after=timedelta(days=1), to=to))
        ingested = await ingest(store, "audit", count)
        texts = await stored_texts(pool, "audit")
        full = count // SEGMENT
        clock.advance(82800)  # 23 hours
        assert await store.archive_once() == 0  # not old enough yet
        clock.advance(7200)  # 2 hours
        assert await store.archive_once() == full
        assert await store.archive_once() == 0

        # the database holds only the live segments: the one being filled and the one ahead
        assert await partitions(pool, "audit") == [full, full + 1]
        assert await check_tiers(store, pool, "audit", full) == full
        rows = await manifest(pool, "audit")
        assert [r["start_offset"] for r in rows] == [n * SEGMENT + 1 for n in range(full)]

        # byte for byte: each file holds the text the log held
        for row in rows:
            data = await store.archive_files.read_file(row["location"])
            assert list(data.texts) == [texts[o] for o in data.offsets]

        same_events(await read_all(store, "audit"), ingested)
        middle = SEGMENT * 3 + 7
        same_events(await read_all(store, "audit", middle), ingested[middle:], middle + 1)
        assert (await store.get("audit", 5)).event == ingested[4]
        with pytest.raises(EventNotFound):
            await store.get("audit", count + 1)

        info = await store.get_bus("audit")
        assert info.first_offset == 1
        assert info.last_offset == count
        assert info.archived is not None
        assert info.live is not None
        assert (info.archived.events, info.archived.segments) == (full * SEGMENT, full)
        assert info.live.events == count - full * SEGMENT
        assert info.archived.size_bytes == sum(r["size_bytes"] for r in rows)
        shown = info.to_json()["tiers"]
        assert shown["archive"]["events"] + shown["live"]["events"] == count

        # a subscription from offset 1 delivers every event once, in order
        got: list[int] = []
        done = asyncio.Event()

        async def consume(batch: list[tuple[int, Any]]) -> None:
            got.extend(offset for offset, _ in batch)
            if len(got) >= count:
                done.set()

        async with Dispatcher(store, PostgresSubscriptions(pool)) as dispatcher:
            await dispatcher.attach("from-one", "audit", consume, start=1)
            await asyncio.wait_for(done.wait(), 300)
        assert got == list(range(1, count + 1))
    finally:
        await store.stop()


async def test_archive_to_a_local_folder(pool: Any, tmp_path: Path) -> None:
    await _archive_everything(pool, str(tmp_path / "archive"))
    folder = next((tmp_path / "archive").iterdir())
    listed = json.loads((folder / "manifest.json").read_text())
    assert len(listed["segments"]) == EVENTS // SEGMENT
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


async def test_archive_to_s3(pool: Any, s3_endpoint: str) -> None:
    count = EVENTS
    await _archive_everything(pool, "s3://archive/tideflow", count)
    import s3fs

    files = s3fs.S3FileSystem().find("archive/tideflow")
    assert len([f for f in files if f.endswith(".parquet")]) == count // SEGMENT


async def _started(pool: Any) -> tuple[ManualClock, PostgresEventStore]:
    clock = ManualClock()
    store = PostgresEventStore(
        pool, segment_size=100, clock=clock, retention_interval=None, archive_interval=None
    )
    await store.start()
    return clock, store


def _files(folder: Path, pattern: str = "*.parquet") -> list[Path]:
    return sorted(folder.rglob(pattern))


async def test_retention_applies_to_the_archive(pool: Any, tmp_path: Path) -> None:
    clock, store = await _started(pool)
    try:
        archive = ArchivePolicy(after=timedelta(days=1), to=str(tmp_path))
        await store.create_bus("logs", Retention(max_age=timedelta(days=10)), archive=archive)
        await ingest(store, "logs", 300)  # day 0: segments 0-2
        clock.advance(432000)  # 5 days
        late = {"specversion": "1.0", "id": "late", "source": "/", "type": "t"}
        await store.append("logs", [late])
        clock.advance(172800)  # 2 days
        assert await store.archive_once() == 3
        assert len(_files(tmp_path)) == 3
        clock.advance(345600)  # 4 days: day 11,: the archived day-0 segments expire
        assert await store.apply_retention() == 3
        assert not _files(tmp_path)
        assert await manifest(pool, "logs") == []
        assert [e.offset for e in await read_all(store, "logs")] == [301]
        assert (await store.get_bus("logs")).first_offset == 301
    finally:
        await store.stop()


async def test_deleting_a_bus_deletes_its_files(pool: Any, tmp_path: Path) -> None:
    clock, store = await _started(pool)
    try:
        archive = ArchivePolicy(after=timedelta(days=1), to=str(tmp_path))
        await store.create_bus("gone", archive=archive)
        events = await ingest(store, "gone", 250)
        clock.advance(172800)  # 2 days
        assert await store.archive_once() == 2
        # dedup covers the live tier: an event whose twin was archived is stored again
        bus_id = await pool.fetchval("SELECT id FROM tideflow_buses WHERE name = 'gone'")
        keys = "SELECT min(event_offset) FROM tideflow_event_keys WHERE bus_id = $1"
        assert await pool.fetchval(keys, bus_id) == 201  # the archived segments' keys went
        acks = await store.append("gone", [events[0], events[249]])
        assert [(a.offset, a.duplicate) for a in acks] == [(251, False), (250, True)]
        await store.delete_bus("gone")
        assert not _files(tmp_path)
        assert not _files(tmp_path, "manifest.json")
    finally:
        await store.stop()


async def test_archive_files_read_the_group_holding_the_next_offset(tmp_path: Path) -> None:
    at = datetime(2026, 1, 2, tzinfo=UTC)
    rows = [(n, f'{{"id":"{n}","source":"/s"}}', at) for n in range(1, ROW_GROUP + 11)]
    files = ArchiveFiles()
    location = str(tmp_path / "seg.parquet")
    written = await files.write(location, rows, {})
    assert written.count == len(rows)
    first = await files.read(location, 1, 0)
    assert (first.offsets[0], len(first)) == (1, ROW_GROUP)
    second = await files.read(location, 1, ROW_GROUP)
    assert list(second.offsets) == list(range(ROW_GROUP + 1, ROW_GROUP + 11))
    assert await files.read(location, 1, ROW_GROUP + 3) is second  # cached
    assert files.reads == 2
    await files.delete(location)
    with pytest.raises(FileNotFoundError):
        await files.read(location, 1, 0)
