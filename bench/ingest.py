"""Event store ingestion figures (issue 4), in one run against one database.

Scenarios are ``async def scenario(ctx) -> dict`` functions. Those in
``SCENARIOS`` run in every one of ``--rounds`` interleaved rounds (fresh buses
each round; the median round is reported with every round's rate); those in
``ONCE`` (the HTTP figures) run once afterwards. Add a scenario by adding a
function to either.

* ``limit_copy`` -- the limit: raw asyncpg ``copy_records_to_table`` of the
  same events, already encoded and numbered, into the same table shape (a
  segment of a bus created by the store: same columns, same indexes), one
  transaction per ``--limit-batch`` events (10,000: the store's largest
  transaction). No lock, no dedup lookup, no offset bookkeeping.
* ``limit_copy_encoding`` -- for context, the same with JSON encoding inside the timing.
* ``store_append`` -- ``PostgresEventStore.append`` of the same events in
  batches of ``--batch``, ``--writers`` concurrent callers (group commit merges
  them), acknowledged after commit. Includes JSON encoding, the bus lock,
  dedup lookup, COPY and the offset update. Goal: >= 50% of the limit.
* ``store_read`` -- reading the whole bus in order, ``--read-batch`` per
  call, events decoded to dicts. Goal: >= 100,000 events/s.
* ``http`` (with ``--http``) -- the HTTP figures of ``bench/ingest_http.py``.

Uses ``TIDEFLOW_DATABASE_URL`` if set, else the embedded server in
``TIDEFLOW_HOME`` (default: the user data directory). The buses it creates
are deleted at the end. Prints JSON.

    python bench/ingest.py [--events 100000] [--rounds 5] [--batch 1000] [--writers 8] [--http]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tideflow.db import open_database  # noqa: E402
from tideflow.eventstore.codec import encode_event  # noqa: E402
from tideflow.eventstore.gateway import PostgresEventStore  # noqa: E402
from tideflow.eventstore.segments import segment_table  # noqa: E402
from tideflow.settings import Settings  # noqa: E402

COLUMNS = ("bus_id", "event_offset", "ce_source", "ce_id", "ce_key", "stored_at", "event")


def make_event(run: str, n: int) -> dict[str, Any]:
    """A realistic small CloudEvent (~350 bytes as JSON), as bench/ingest_http.py sends."""
    return {
        "specversion": "1.0",
        "id": f"{run}-{n}",
        "source": "/bench/orders",
        "type": "com.example.order.created",
        "time": "2026-01-01T00:00:00Z",
        "subject": f"order-{n}",
        "datacontenttype": "application/json",
        "region": "eu-west",
        "data": {"order": n, "customer": f"c-{n % 977}", "items": [1, 2, 3], "total": 99.5},
    }


@dataclass
class Context:
    """What scenarios share: the database, the store, the options, earlier results."""

    dsn: str
    pool: Any
    store: PostgresEventStore
    args: argparse.Namespace
    run: str
    round: int = 0
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    buses: list[str] = field(default_factory=list)
    buses_by_purpose: dict[str, str] = field(default_factory=dict)

    async def new_bus(self, purpose: str) -> str:
        name = f"bench-{self.run}-{self.round}-{purpose}"
        await self.store.create_bus(name)
        self.buses.append(name)
        return name

    def events(self, tag: str) -> list[dict[str, Any]]:
        return [make_event(f"{self.run}{self.round}{tag}", n) for n in range(self.args.events)]


def start_timing() -> float:
    """Collect, then freeze the harness's own objects (the prepared events) out of the
    cyclic GC's sight, so no scenario pays for scanning them; start the clock."""
    gc.collect()
    gc.freeze()
    return time.perf_counter()


def rate(count: int, seconds: float) -> dict[str, Any]:
    return {"events": count, "seconds": round(seconds, 3), "events_per_s": round(count / seconds)}


async def _limit(ctx: Context, *, encode_in_timing: bool) -> dict[str, Any]:
    bus = await ctx.new_bus("limit-enc" if encode_in_timing else "limit")
    bus_id = await ctx.pool.fetchval("SELECT id FROM tideflow_buses WHERE name = $1", bus)
    table = segment_table(bus_id, 0)
    now = datetime.now(UTC)
    events = ctx.events("E" if encode_in_timing else "L")
    size = ctx.args.limit_batch

    def records(chunk: list[dict[str, Any]], first: int) -> list[tuple[Any, ...]]:
        out = []
        for offset, event in enumerate(chunk, start=first):
            source, event_id, key, text = encode_event(event, 0)
            out.append((bus_id, offset, source, event_id, key, now, text))
        return out

    chunks = [events[i : i + size] for i in range(0, len(events), size)]
    ready = None if encode_in_timing else [records(c, i * size + 1) for i, c in enumerate(chunks)]
    started = start_timing()
    async with ctx.pool.acquire() as conn:
        for i, chunk in enumerate(chunks):
            rows = ready[i] if ready is not None else records(chunk, i * size + 1)
            async with conn.transaction():
                await conn.copy_records_to_table(table, records=rows, columns=COLUMNS)
    return rate(len(events), time.perf_counter() - started)


async def limit_copy(ctx: Context) -> dict[str, Any]:
    """The limit: raw COPY of pre-encoded, pre-numbered records into a segment of the same shape."""
    figures = await _limit(ctx, encode_in_timing=False)
    name = f"limit: raw copy_records_to_table, {ctx.args.limit_batch}/transaction"
    return {"scenario": name, **figures}


async def limit_copy_encoding(ctx: Context) -> dict[str, Any]:
    """For context: the same raw COPY with JSON encoding and key hashing inside the timing."""
    figures = await _limit(ctx, encode_in_timing=True)
    name = f"raw copy_records_to_table incl. encoding, {ctx.args.limit_batch}/transaction"
    return {"scenario": name, **figures}


async def store_append(ctx: Context) -> dict[str, Any]:
    """The store's batch append, ``--writers`` concurrent callers."""
    bus = await ctx.new_bus("append")
    ctx.buses_by_purpose["append"] = bus
    events = ctx.events("A")
    size = ctx.args.batch
    batches = [events[i : i + size] for i in range(0, len(events), size)]
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)

    async def writer() -> None:
        while not queue.empty():
            await ctx.store.append(bus, queue.get_nowait())

    transactions = ctx.store._committer.batches
    started = start_timing()
    await asyncio.gather(*(writer() for _ in range(ctx.args.writers)))
    elapsed = time.perf_counter() - started
    figures = rate(len(events), elapsed)
    figures["transactions"] = ctx.store._committer.batches - transactions
    limit = ctx.results.get("limit_copy", {}).get("events_per_s")
    if limit:
        figures["of_limit"] = round(figures["events_per_s"] / limit, 2)
    name = f"store append, {size}/call, {ctx.args.writers} writers"
    return {"scenario": name, **figures}


async def store_read(ctx: Context) -> dict[str, Any]:
    """Read the appended bus in order, decoding every event."""
    bus = ctx.buses_by_purpose["append"]
    cursor, count = 0, 0
    started = start_timing()
    while True:
        events = await ctx.store.read(bus, cursor, ctx.args.read_batch)
        if not events:
            break
        count += len(events)
        cursor = events[-1].offset
    figures = rate(count, time.perf_counter() - started)
    return {"scenario": f"store read in order, {ctx.args.read_batch}/call", **figures}


async def http(ctx: Context) -> list[dict[str, Any]]:
    """The HTTP scenarios of bench/ingest_http.py against the same database."""
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import ingest_http  # type: ignore[import-not-found]  # bench/ is not a package

    async def limit_now() -> float:  # the limit again, next to each HTTP batched round
        ctx.round += 1
        return float((await limit_copy(ctx))["events_per_s"])

    results: list[dict[str, Any]] = await ingest_http.run_all(
        ctx.dsn, scale=ctx.args.http_scale, limit=limit_now
    )
    limit = ctx.results.get("limit_copy", {}).get("events_per_s")
    if limit:
        for result in results:
            result["of_limit"] = round(result["events_per_s"] / limit, 2)
    return results


Scenario = Callable[[Context], Awaitable[Any]]
SCENARIOS: dict[str, Scenario] = {
    "limit_copy": limit_copy,
    "limit_copy_encoding": limit_copy_encoding,
    "store_append": store_append,
    "store_read": store_read,
}
"""Run in every round, in this order; each returns a figure dict with ``events_per_s``."""

ONCE: dict[str, Scenario] = {"http": http}
"""Run once after the rounds (with ``--http``); each returns a list of figure dicts."""

GOALS = {"store_append": ("of_limit", 0.5), "store_read": ("events_per_s", 100_000)}


def summarize(rounds: list[dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per scenario: the median round (by events/s), every round's rate, and its goal."""
    out = []
    for name in rounds[0]:
        runs = [r[name] for r in rounds]
        ordered = sorted(runs, key=lambda f: f["events_per_s"])
        figures = dict(ordered[len(ordered) // 2])
        figures["events_per_s_rounds"] = [f["events_per_s"] for f in runs]
        if "of_limit" in figures:
            ratios = sorted(f["of_limit"] for f in runs)
            figures["of_limit"] = ratios[len(ratios) // 2]
            figures["of_limit_rounds"] = [f["of_limit"] for f in runs]
        if name in GOALS:
            key, goal = GOALS[name]
            figures["goal"] = f"{key} >= {goal}"
            figures["goal_met"] = figures[key] >= goal
        out.append(figures)
    return out


async def run_rounds(ctx: Context) -> list[dict[str, dict[str, Any]]]:
    rounds = []
    for number in range(ctx.args.rounds):
        ctx.round, ctx.results = number, {}
        for name, scenario in SCENARIOS.items():
            ctx.results[name] = await scenario(ctx)
        rounds.append(ctx.results)
        gc.unfreeze()
        for bus in ctx.buses:  # keep the database the same size from round to round
            await ctx.store.delete_bus(bus)
        ctx.buses.clear()
    return rounds


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings.from_env()
    async with open_database(settings, max_size=8) as database:
        store = PostgresEventStore(database.pool, segment_size=max(args.events, 1_000_000))
        await store.start()
        ctx = Context(database.dsn, database.pool, store, args, run=str(time.time_ns())[-8:])
        output: dict[str, Any] = {
            "database": database.describe(),
            "server_version": await database.pool.fetchval("SHOW server_version"),
            "events_per_round": args.events,
            "rounds": args.rounds,
        }
        try:
            rounds = await run_rounds(ctx)
            output["scenarios"] = summarize(rounds)
            if args.http:
                ctx.results = {"limit_copy": output["scenarios"][0]}
                for scenario in ONCE.values():
                    output["scenarios"].extend(await scenario(ctx))
        finally:
            for bus in ctx.buses:
                await store.delete_bus(bus)
            await store.stop()
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description="Event store ingestion figures (issue 4)")
    parser.add_argument("--events", type=int, default=100_000, help="events per scenario")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; medians")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--limit-batch", type=int, default=10_000, help="events per raw COPY")
    parser.add_argument("--read-batch", type=int, default=5000)
    parser.add_argument("--http", action="store_true", help="also run bench/ingest_http.py")
    parser.add_argument("--http-scale", type=float, default=1.0)
    args = parser.parse_args()
    output = asyncio.run(main_async(args))
    print(orjson.dumps(output, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
