"""How the cost grows with the work (issue 13); prints one JSON document.

Every part runs against a real ``tideflow serve`` subprocess (``--insecure-local``)
on a fresh database of the PostgreSQL server the run uses, clients on
keep-alive HTTP/1.1 connections (``bench/ingest_http.py``). Each part
compares its sizes with its smallest size in the same run.

Parts (``--parts``, comma-separated; default all):

- ``parked``: for each size in ``--parked`` (default ``10000,100000``; the issue's
  full run is ``10000,100000,1000000``, by hand), that many instances wait,
  each for an event with its own correlation key. They are created in-process
  while no server runs. ``--park seed`` (default): the runtime parks one
  instance (key ``k0``) and the others are its copies
  (``tideflow.runtime.seeding.seed_parked``: in SQL, 10,000 per transaction,
  the rows the runtime writes when it parks an instance on that input --
  ``tests/integration/test_seeded_instances.py`` compares them table by
  table); ``--park runtime``: each one is started and parked by the runtime
  (``DurableRuntime.start_instances``, batches of 100; ~120/s on the loaded
  machine, so 1M would take hours). Then a server is started and ``--probes``
  (200) keys are signalled one at a time: a ``GET /instances/{id}?wait=30``
  is opened, the event POSTed to ``/events``, and the latency is the POST's
  send to the long poll's answer. Sizes are cumulative (the 100,000 run adds
  90,000 to the 10,000). Also: database size per parked instance
  (``pg_database_size`` growth / instances; copies leave none of the dead
  row versions a real start's updates leave until vacuum).
  Goal: p99 at the largest size within 2x of the smallest.
- ``subscriptions``: ingestion throughput (``POST /buses/{bus}/events``,
  batched mode, 100 events a request, 8 clients; and binary mode, one event
  a request, 32 clients) with 1, 10 and 100 subscriptions on the bus. The
  subscriptions' filter matches none of the events (so every subscription
  reads and filters every event, and nothing measures a sink); the figure
  includes whether they caught up (their lag when the ingestion ended).
  Goal: 100 subscriptions keep >= 0.5 of one's events/s.
- ``buses``: the same ingestion (batched, and one event a request) spread over
  1 and 100 buses (one such subscription each). Goal: 100 buses keep >= 0.8 of
  one's events/s in both modes (one group commit serves every bus: a batch over
  many buses is one transaction of four statements).
- ``versions``: instance start rate (``POST /workflows/{id}/instances``, 50
  clients, a workflow of one inject state) with 1 deployed version against
  1,000 versions of the workflow (the latest started) and against 1,000
  workflows (started round-robin, each warmed once). Goal: >= 0.9 of one.

Run: ``python bench/scale.py`` (an embedded PostgreSQL in a temporary
directory) or with ``TIDEFLOW_BENCH_DATABASE_URL=postgresql://...``; the
full parked run: ``python bench/scale.py --parts parked --parked 10000,100000,1000000``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import ingest_http  # noqa: E402
from http_path import JSON, KEYED, clients, deploy, probe, report, served, server_cpu  # noqa: E402
from ingest_http import RawConnection, http_request, process_cpu  # noqa: E402
from runtime import _fresh_db, _pct  # noqa: E402

PROBES_WARM = 10


async def _park(url: str, start: int, count: int) -> None:
    """``count`` instances of :data:`KEYED` (keys ``k{start}``...) parked by the runtime."""
    from tideflow.db import create_pool
    from tideflow.runtime.hosts.durable import DurableRuntime

    pool = await create_pool(url, min_size=4, max_size=16)
    rt = DurableRuntime(pool)
    await rt.start()
    try:
        chunks = iter(range(start, start + count, 100))

        async def starter() -> None:
            for first in chunks:
                last = min(start + count, first + 100)
                inputs = [{"key": f"k{i}"} for i in range(first, last)]
                await rt.start_instances("keyed", inputs)
                while rt.running > 2000:  # noqa: ASYNC110 -- hold memory: let runners park
                    await asyncio.sleep(0.01)

        await asyncio.gather(*(starter() for _ in range(8)))
        while rt.running:  # noqa: ASYNC110 -- runners end on their own
            await asyncio.sleep(0.05)
    finally:
        await rt.stop()
        await pool.close()


async def _seed(url: str, start: int, count: int) -> None:
    """``count`` parked instances (keys ``k{start}``...): ``k0`` parked by the runtime, the
    others its copies (``tideflow.runtime.seeding``: the rows the runtime writes for them)."""
    from tideflow.db import create_pool
    from tideflow.runtime.seeding import seed_parked

    if start == 0:
        await _park(url, 0, 1)
        start, count = 1, count - 1
    template = (await _ids_of(url, ["k0"]))["k0"]
    pool = await create_pool(url, min_size=1, max_size=2)
    try:
        await seed_parked(pool, template, "k0", [f"k{i}" for i in range(start, start + count)])
    finally:
        await pool.close()


async def _db_size(url: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CHECKPOINT")
        return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
    finally:
        await conn.close()


async def _ids_of(url: str, keys: list[str]) -> dict[str, str]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT input->>'key' AS key, id FROM tideflow_instances"
            " WHERE workflow_id = 'keyed' AND input->>'key' = ANY($1::text[])",
            keys,
        )
    finally:
        await conn.close()
    return {r["key"]: r["id"] for r in rows}


async def parked(server: str, sizes: list[int], probes: int, how: str) -> dict[str, Any]:
    url = await _fresh_db(server, "bench_scale_parked", False)
    async with served(url, None, "parked") as port:
        await deploy(port, KEYED)  # the correlation subscription comes with the deploy
    before = await _db_size(url)
    have = 0
    runs: list[dict[str, Any]] = []
    for size in sizes:
        began = time.perf_counter()
        await (_seed if how == "seed" else _park)(url, have, size - have)
        parking = time.perf_counter() - began
        have = size
        grown = await _db_size(url) - before
        # probe keys spread over the parked range, each used once
        step = max(1, size // (probes + PROBES_WARM))
        # k0 is the template of the copies of the next sizes: it must stay parked
        keys = [f"k{i}" for i in range(1, size, step)][: probes + PROBES_WARM]
        keys = [k for k in keys if not any(k in r["probed"] for r in runs)]
        ids = await _ids_of(url, keys)
        async with served(url, None, "parked") as port:
            latencies = await probe(port, ids, keys, PROBES_WARM)
        runs.append(
            {
                "parked": size,
                "park_per_s": round((size - (runs[-1]["parked"] if runs else 0)) / parking, 1),
                "p50_ms": round(_pct(latencies, 0.5) * 1000, 2),
                "p99_ms": round(_pct(latencies, 0.99) * 1000, 2),
                "db_bytes_per_parked_instance": round(grown / size),
                "probed": keys,
            }
        )
    for run in runs:
        run.pop("probed")
    ratio = round(runs[-1]["p99_ms"] / runs[0]["p99_ms"], 2)
    return {
        "parked_by": how,
        "probes_per_size": probes,
        "runs": runs,
        "p99_largest_vs_smallest": ratio,
        "goal": "p99 at the largest size within 2x of the smallest",
        "goal_met": ratio <= 2,
    }


async def _bus(port: int, name: str, subscriptions: int) -> None:
    connection = RawConnection(port)
    await connection.open()
    try:
        status, answer = await connection.send(
            http_request("/buses", JSON, orjson.dumps({"name": name}))
        )
        if status != 201:
            raise RuntimeError(f"bus: HTTP {status} {answer!r}")
        for _ in range(subscriptions):
            body = {
                "bus": name,
                "filters": [{"exact": {"type": "bench.never"}}],
                "sink": "http://127.0.0.1:9/never",
            }
            status, answer = await connection.send(
                http_request("/subscriptions", JSON, orjson.dumps(body))
            )
            if status != 201:
                raise RuntimeError(f"subscription: HTTP {status} {answer!r}")
    finally:
        await connection.close()


async def _lag(url: str) -> int:
    """Events the subscriptions have still to read (sum over subscriptions)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval(
                "SELECT coalesce(sum(greatest(b.next_offset - 1 - s.committed_offset, 0)), 0)"
                " FROM tideflow_subscriptions s JOIN tideflow_buses b ON b.name = s.bus"
            )
        )
    finally:
        await conn.close()


async def _backends(url: str) -> set[int]:
    """The server processes of the database's connections (the bench's own aside)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return {row[0] for row in rows}


def _cpu(pids: set[int]) -> float:
    """CPU seconds of ``pids`` (one gone meanwhile counts 0: the pool rarely closes one)."""
    total = 0.0
    for pid in pids:
        try:
            total += process_cpu(pid)
        except OSError:
            continue
    return total


async def _stored(url: str, buses: list[str]) -> int:
    """Events stored on ``buses``."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval(
                "SELECT coalesce(sum(next_offset - 1), 0) FROM tideflow_buses"
                " WHERE name = ANY($1::text[])",
                buses,
            )
        )
    finally:
        await conn.close()


async def _ingest(
    server: str, buses: int, subscriptions: int, batches: int, singles: int, single_warmup: int = 0
) -> dict[str, Any]:
    url = await _fresh_db(server, f"bench_scale_ingest_{buses}_{subscriptions}", False)
    async with served(url, None, "ingest") as port:
        names = [f"b{i}" for i in range(buses)]
        for name in names:
            await _bus(port, name, subscriptions)
        await asyncio.sleep(1)  # the subscriptions' readers are up

        # Distinct ids in each phase: a single's id equal to a warm-up event's on its bus
        # would be a duplicate (acknowledged, nothing written) -- on one bus all of them were.
        def batch(n: int) -> bytes:
            events = [ingest_http.make_event("b", n * 100 + i) for i in range(100)]
            headers, body = ingest_http.encode_batch(events)
            return http_request(f"/buses/{names[n % buses]}/events", headers, body)

        def single(n: int) -> bytes:
            headers, body = ingest_http.encode_binary(ingest_http.make_event("s", n))
            return http_request(f"/buses/{names[n % buses]}/events", headers, body)

        await ingest_http.drive(port, [batch(10**6 + n) for n in range(20)], 8)  # warm-up
        many = await ingest_http.drive(port, [batch(n) for n in range(batches)], 8)
        if single_warmup:  # connections that have each bus's partitions in their caches
            warm = [single(10**7 + n) for n in range(single_warmup)]
            await ingest_http.drive(port, warm, 32)
        backends = await _backends(url)
        cpu = server_cpu(port), _cpu(backends)
        one = await ingest_http.drive(port, [single(n) for n in range(singles)], 32)
        backends |= await _backends(url)  # and those the pool opened meanwhile (from 0)
        server_ms, db_ms = ((server_cpu(port) - cpu[0]) * 1000, (_cpu(backends) - cpu[1]) * 1000)
        await asyncio.sleep(1.2)  # offsets past skipped events only are committed every second
        lag = await _lag(url)
        stored = await _stored(url, names)
    sent = (20 + batches) * 100 + single_warmup + singles
    if stored != sent:  # a duplicate id would measure no write
        raise RuntimeError(f"{stored} events stored, {sent} sent")
    return {
        "buses": buses,
        "subscriptions_per_bus": subscriptions,
        "batched_events_per_s": round(batches * 100 / many["seconds"]),
        "single_events_per_s": round(singles / one["seconds"]),
        "single_p99_ms": one.get("p99_ms"),
        "single_server_cpu_ms_per_event": round(server_ms / singles, 3),
        "single_db_cpu_ms_per_event": round(db_ms / singles, 3),
        "subscription_lag_at_end": lag,
    }


def _compared(runs: list[dict[str, Any]], goal: str, at_least: float) -> dict[str, Any]:
    """The runs with the last one's events/s against the first's."""
    ratio = round(runs[-1]["batched_events_per_s"] / runs[0]["batched_events_per_s"], 2)
    single = round(runs[-1]["single_events_per_s"] / runs[0]["single_events_per_s"], 2)
    return {
        "runs": runs,
        "batched_last_vs_first": ratio,
        "single_last_vs_first": single,
        "goal": goal,
        "goal_met": ratio >= at_least,
    }


async def subscriptions(server: str, batches: int, singles: int) -> dict[str, Any]:
    runs = [await _ingest(server, 1, count, batches, singles) for count in (1, 10, 100)]
    return _compared(runs, "100 subscriptions >= 0.5 of one (batched)", 0.5)


async def buses(server: str, batches: int, singles: int, warmup: int = 0) -> dict[str, Any]:
    runs = [await _ingest(server, count, 1, batches, singles, warmup) for count in (1, 100)]
    compared = _compared(runs, "100 buses >= 0.8 of one (batched, and one event a request)", 0.8)
    compared["goal_met"] = compared["goal_met"] and compared["single_last_vs_first"] >= 0.8
    return compared


def _tiny(workflow_id: str, version: str) -> dict[str, Any]:
    return {
        "id": workflow_id,
        "version": version,
        "specVersion": "0.8",
        "start": "S",
        "states": [{"name": "S", "type": "inject", "data": {"v": version}, "end": True}],
    }


async def _start_rate(server: str, name: str, docs: list[dict[str, Any]], n: int) -> dict[str, Any]:
    url = await _fresh_db(server, f"bench_scale_versions_{name}", False)
    async with served(url, None, "versions") as port:
        deploying = iter(docs)

        async def deployer(_: RawConnection) -> None:
            for doc in deploying:
                await deploy(port, doc)

        await clients(port, 8, deployer)
        targets = sorted({doc["id"] for doc in docs})
        paths = [f"/workflows/{targets[i % len(targets)]}/instances" for i in range(n)]
        warm = iter([f"/workflows/{t}/instances" for t in targets] + paths[:100])
        queue = iter(paths)

        async def work(connection: RawConnection) -> None:
            for path in queue:
                status, answer = await connection.send(http_request(path, JSON, b"{}"))
                if status != 201:
                    raise RuntimeError(f"start: HTTP {status} {answer[:200]!r}")

        async def warmer(connection: RawConnection) -> None:
            for path in warm:
                await connection.send(http_request(path, JSON, b"{}"))

        await clients(port, 50, warmer)
        began = time.perf_counter()
        await clients(port, 50, work)
        took = time.perf_counter() - began
    return {"deployed": name, "starts": n, "starts_per_s": round(n / took, 1)}


async def versions(server: str, n: int, count: int) -> dict[str, Any]:
    one = await _start_rate(server, "1", [_tiny("w", "1")], n)
    many_versions = await _start_rate(
        server, f"{count}_versions", [_tiny("w", str(v)) for v in range(1, count + 1)], n
    )
    many_workflows = await _start_rate(
        server, f"{count}_workflows", [_tiny(f"w{i}", "1") for i in range(count)], n
    )
    rv = round(many_versions["starts_per_s"] / one["starts_per_s"], 2)
    rw = round(many_workflows["starts_per_s"] / one["starts_per_s"], 2)
    return {
        "runs": [one, many_versions, many_workflows],
        "versions_vs_1": rv,
        "workflows_vs_1": rw,
        "goal": ">= 0.9 of one",
        "goal_met": rv >= 0.9 and rw >= 0.9,
    }


async def _main(args: argparse.Namespace, server: str) -> dict[str, Any]:
    parts = args.parts.split(",")
    out: dict[str, Any] = {}
    if "parked" in parts:
        sizes = [int(s) for s in args.parked.split(",")]
        out["parked"] = await parked(server, sizes, args.probes, args.park)
    if "subscriptions" in parts:
        out["subscriptions"] = await subscriptions(server, args.batches, args.singles)
    if "buses" in parts:
        out["buses"] = await buses(server, args.batches, args.singles, args.single_warmup)
    if "versions" in parts:
        out["versions"] = await versions(server, args.starts, args.versions)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="parked,subscriptions,buses,versions")
    parser.add_argument("--parked", default="10000,100000", help="cumulative sizes")
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument(
        "--park",
        choices=["seed", "runtime"],
        default="seed",
        help="seed: copies of one instance the runtime parked; runtime: each one parked by it",
    )
    parser.add_argument("--batches", type=int, default=300, help="batched requests (100 each)")
    parser.add_argument("--singles", type=int, default=3000, help="one-event requests")
    parser.add_argument(
        "--single-warmup",
        type=int,
        default=0,
        help="buses: one-event requests sent before the measured ones (each pooled connection "
        "loads a bus's partitions into its caches the first time it writes or reads the bus)",
    )
    parser.add_argument("--starts", type=int, default=2000)
    parser.add_argument("--versions", type=int, default=1000)
    args = parser.parse_args()
    report(lambda server: _main(args, server))


if __name__ == "__main__":
    main()
