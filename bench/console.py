"""Console pages with 100,000 instances in the database (issue 19); prints one JSON document.

A fresh database on a PostgreSQL server (``--database-url``, default the local
system server) gets ``--instances`` finished instances of ``hello-world`` (default
100,000, written by SQL, a tenth of them failed) and one instance with a
``--timeline``-entry timeline (default 1,000). A ``tideflow serve --insecure-local``
on it then answers each page ``--requests`` times (after 3 warm-ups), one request at
a time; the script prints the median and p95 of each, and -- as the baseline of the
same run -- the API calls each page is built from (the JSON the page renders).

Run: ``python bench/console.py [--instances 100000] [--timeline 1000] [--requests 40]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
TIMELINE_ID = "bench-console-timeline"

SEED = """
INSERT INTO tideflow_instances
  (id, workflow_id, version, status, current_state, input, data, output, error,
   started_at, updated_at, ended_at)
SELECT 'bench-' || lpad(n::text, 7, '0'), 'hello-world', '1.0',
       CASE WHEN n % 10 = 0 THEN 'failed' ELSE 'completed' END,
       NULL, jsonb_build_object('name', 'n' || n), jsonb_build_object('name', 'n' || n),
       CASE WHEN n % 10 = 0 THEN NULL ELSE jsonb_build_object('greeting', 'Hello n' || n) END,
       CASE WHEN n % 10 = 0 THEN '{"code": "BOOM", "message": "failed", "state": "Greet"}'::jsonb
            ELSE NULL END,
       now() - make_interval(secs => $1 - n), now() - make_interval(secs => $1 - n),
       now() - make_interval(secs => $1 - n)
FROM generate_series(1, $1::int) AS n
"""
ONE = """
INSERT INTO tideflow_instances
  (id, workflow_id, version, status, input, data, output, started_at, updated_at, ended_at)
VALUES ($1, 'hello-world', '1.0', 'completed', '{}', '{}', '{"done": true}', now(), now(), now())
"""
TIMELINE = """
INSERT INTO tideflow_timeline (instance_id, run_no, kind, step_key, state, detail, at)
SELECT $1, 1, CASE WHEN n % 2 = 1 THEN 'state.entered' ELSE 'state.left' END,
       'Greet/' || n, 'Greet', '{}'::jsonb, now() + make_interval(secs => n)
FROM generate_series(1, $2::int) AS n
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _times(client: httpx.Client, path: str, requests: int, expect: str = "") -> dict[str, Any]:
    for _ in range(3):
        client.get(path).raise_for_status()
    took = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        took.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        if expect:
            assert expect in response.text, (path, response.text[:300])
    took.sort()
    return {
        "median_ms": round(statistics.median(took), 1),
        "p95_ms": round(took[int(len(took) * 0.95) - 1], 1),
        "max_ms": round(took[-1], 1),
        "bytes": len(response.content),
    }


async def _seed(url: str, instances: int, timeline: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(SEED, instances)
        await conn.execute(ONE, TIMELINE_ID)
        await conn.execute(TIMELINE, TIMELINE_ID, timeline)
        await conn.execute("ANALYZE tideflow_instances; ANALYZE tideflow_timeline")
    finally:
        await conn.close()


async def _database(server_url: str, name: str, create: bool) -> str:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = server_url.rsplit("/", 1)[0]
    return f"{base}/{name}"


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"tideflow serve exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"tideflow serve did not start:\n{log.read_text()[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--timeline", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    name = f"tideflow_bench_console_{os.getpid()}"
    url = asyncio.run(_database(args.database_url, name, create=True))
    home = Path(tempfile.mkdtemp(prefix="tideflow-bench-console-"))
    port = _free_port()
    env = {**os.environ, "TIDEFLOW_HOME": str(home), "TIDEFLOW_DATABASE_URL": url}
    log = home / "serve.log"
    command = [sys.executable, "-m", "tideflow.cli", "serve", "--port", str(port),
               "--insecure-local", "--workflows", str(ROOT / "examples" / "workflows")]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    server = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(server, process, log)
        seeded = time.perf_counter()
        asyncio.run(_seed(url, args.instances, args.timeline))
        seed_s = time.perf_counter() - seeded
        n = args.requests
        with httpx.Client(base_url=server, timeout=60) as client:
            pages = {
                "instances_list_page": _times(client, "/ui/instances", n, "bench-"),
                "instances_list_failed_page": _times(
                    client, "/ui/instances?status=failed", n, "failed"
                ),
                "instance_page_1000_timeline": _times(
                    client, f"/ui/instances/{TIMELINE_ID}", n, "state.entered"
                ),
                "instance_live_part_1000_timeline": _times(
                    client, f"/ui/instances/{TIMELINE_ID}/live", n, "state.left"
                ),
                "workflow_page": _times(client, "/ui/workflows/hello-world", n, "bench-"),
                "workflows_page": _times(client, "/", n, "hello-world"),
            }
            baseline = {
                "api_instances_50": _times(client, "/instances?limit=50", n),
                "api_timeline_1000": _times(
                    client, f"/instances/{TIMELINE_ID}/timeline?limit=1000", n
                ),
            }
    finally:
        process.terminate()
        process.wait(30)
        asyncio.run(_database(args.database_url, name, create=False))
    print(json.dumps({
        "bench": "console",
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average": [round(x, 2) for x in os.getloadavg()]},
        "instances": args.instances,
        "timeline_entries": args.timeline,
        "seed_seconds": round(seed_s, 1),
        "requests_each": n,
        "pages": pages,
        "baseline_api": baseline,
        "goal_ms": 200,
        "all_pages_p95_under_goal": all(p["p95_ms"] < 200 for p in pages.values()),
    }, indent=2))


if __name__ == "__main__":
    main()
