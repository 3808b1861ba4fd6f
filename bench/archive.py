"""The archive tier's figures (issue 18), in one run against one database.

Two buses get the same events (``bench/ingest.py``'s ~350-byte event). One
stays live; the other's full segments are archived to Parquet files in a
temporary folder (or ``--to``). Then:

* bytes per event: the live bus's partitions (``pg_total_relation_size``, with
  indexes) against the archive's files, over the same full segments;
* read throughput: reading each bus whole from offset 0, ``--read-batch`` per
  call, events decoded -- live partitions (the baseline) against archive files
  with a cold cache (a fresh ``ArchiveFiles`` each round) and warm (read
  again), alternated over ``--rounds`` rounds; medians and every round;
* archive throughput: events/s of ``archive_once`` (write, read back, verify,
  drop the partition).

Uses ``TIDEFLOW_DATABASE_URL`` if set, else the embedded server in
``TIDEFLOW_HOME``. The buses it creates are deleted at the end. Prints JSON.

    python bench/archive.py [--events 100000] [--segment 10000] [--rounds 5] [--to URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.ingest import make_event  # noqa: E402
from tideflow.db import open_database  # noqa: E402
from tideflow.eventstore import ArchivePolicy  # noqa: E402
from tideflow.eventstore.archive import ArchiveFiles  # noqa: E402
from tideflow.eventstore.gateway import PostgresEventStore  # noqa: E402
from tideflow.settings import Settings  # noqa: E402
from tideflow.testing import ManualClock  # noqa: E402


async def read_whole(store: PostgresEventStore, bus: str, batch: int) -> tuple[int, float]:
    """Events read and seconds to read ``bus`` from offset 0."""
    after, count = 0, 0
    started = time.perf_counter()
    while True:
        page = await store.read(bus, after, batch)
        if not page:
            return count, time.perf_counter() - started
        count += len(page)
        after = page[-1].offset


async def main(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings.from_env()
    run = datetime.now(UTC).strftime("%H%M%S")
    live_bus, archived_bus = f"bench-live-{run}", f"bench-archived-{run}"
    folder = None if args.to else tempfile.TemporaryDirectory(prefix="tideflow-archive-")
    to = args.to or folder.name  # type: ignore[union-attr]
    clock = ManualClock(datetime.now(UTC))
    async with open_database(settings) as database:
        pool = database.pool
        store = PostgresEventStore(
            pool,
            segment_size=args.segment,
            clock=clock,
            retention_interval=None,
            archive_interval=None,
        )
        await store.start()
        try:
            await store.create_bus(live_bus)
            policy = ArchivePolicy(after=timedelta(days=1), to=to)
            await store.create_bus(archived_bus, archive=policy)
            events = [make_event(run, n) for n in range(args.events)]
            for bus in (live_bus, archived_bus):
                for start in range(0, args.events, 1000):
                    await store.append(bus, events[start : start + 1000])
            full = args.events // args.segment * args.segment
            live_bytes = await pool.fetchval(
                "SELECT sum(pg_total_relation_size(tideflow_segment_table(s.bus_id, s.segment_no)"
                "::regclass))::bigint FROM tideflow_segments s "
                "JOIN tideflow_buses b ON b.id = s.bus_id "
                "WHERE b.name = $1 AND s.end_offset <= b.next_offset",
                live_bus,
            )
            clock.advance(2 * 86400)
            started = time.perf_counter()
            archived = await store.archive_once()
            archive_seconds = time.perf_counter() - started
            info = await store.get_bus(archived_bus)
            assert info.archived is not None
            archive_bytes = info.archived.size_bytes

            rates: dict[str, list[float]] = {"live": [], "archive_cold": [], "archive_warm": []}
            for _ in range(args.rounds):
                count, seconds = await read_whole(store, live_bus, args.read_batch)
                assert count == args.events
                rates["live"].append(count / seconds)
                store.archive_files = ArchiveFiles(cache_bytes=args.cache_mb * 1024 * 1024)
                count, seconds = await read_whole(store, archived_bus, args.read_batch)
                assert count == args.events
                rates["archive_cold"].append(count / seconds)
                count, seconds = await read_whole(store, archived_bus, args.read_batch)
                rates["archive_warm"].append(count / seconds)
        finally:
            for bus in (live_bus, archived_bus):
                await store.delete_bus(bus)
            await store.stop()
    if folder is not None:
        folder.cleanup()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "events": args.events,
        "segment_events": args.segment,
        "archived_segments": archived,
        "archive_to": "temporary local folder" if args.to is None else args.to,
        "bytes_per_event": {
            "postgresql": round(live_bytes / full, 1),
            "archive": round(archive_bytes / full, 1),
            "ratio_archive_to_postgresql": round(archive_bytes / live_bytes, 3),
        },
        "archive_events_per_s": round(full / archive_seconds),
        "read_events_per_s": {
            "live_median": round(medians["live"]),
            "archive_cold_median": round(medians["archive_cold"]),
            "archive_warm_median": round(medians["archive_warm"]),
            "ratio_cold_to_live": round(medians["archive_cold"] / medians["live"], 3),
            "ratio_warm_to_live": round(medians["archive_warm"] / medians["live"], 3),
            "rounds": {name: [round(v) for v in values] for name, values in rates.items()},
        },
        "read_batch": args.read_batch,
        "load_average": os.getloadavg(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--segment", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--read-batch", type=int, default=1000)
    parser.add_argument("--cache-mb", type=int, default=256)
    parser.add_argument("--to", default=None, help="archive here instead of a temporary folder")
    result = asyncio.run(main(parser.parse_args()))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
