"""The user's path over HTTP (issue 13), side by side with DBOS in the same run; prints one JSON.

Tideflow runs as a real ``tideflow serve`` subprocess (``--insecure-local``,
seq3's function bound with ``--functions``) on a fresh database of the
PostgreSQL server the run uses; the clients are keep-alive HTTP/1.1
connections (``bench/ingest_http.py``'s ``RawConnection``: the lightest
client, so the client's own CPU on the shared cores weighs least). DBOS runs
in-process in a subprocess (its users' path) on another fresh database of the
same server.

Parts (``--parts``, comma-separated; default all):

- ``seq3``: ``bench/runtime.py``'s workflow of 3 sequential ``python:``
  functions; ``--n`` instances (default 1,000), ``--flight`` (50) clients,
  each ``POST /workflows/seq3/instances?wait=30`` (the start waits for the
  result). Figures: workflows/s, p50/p99 of one request; 100 warm-up
  instances first. DBOS: ``bench/runtime.py``'s seq3. Goal: >= 5x DBOS's
  workflows/s, p99 <= 250 ms.
- ``sleep``: ``--sleepers`` instances (2,000) of a workflow sleeping 2 s,
  started over HTTP by 50 clients; wall = the first start to the last
  ``ended_at``; lateness is what the runtime journals when a sleep ends
  (``timer.fired``'s ``lateMs``). DBOS: ``bench/runtime.py``'s sleep (all
  started at once in-process). Goal: wall <= 4 s, p99 lateness <= 100 ms.
- ``event``: ``--events`` (200) instances wait, each for an event with its
  own correlation key; then one at a time: a ``GET /instances/{id}?wait=30``
  is opened, the event is POSTed to ``/events`` (binary mode), and the
  latency is the POST's send to the long poll's answer (``completed``).
  The workflow (``waiting``) begins with an inject state, so the event only
  answers the waits: ``--event-workflow keyed`` waits in its start state
  instead, which makes each probe event also start (and end) an instance of
  its own beside the one it resumes (the figures before 2026-12-06 19:00).
  DBOS: a workflow waiting in ``DBOS.recv_async``; latency is
  ``DBOS.send_async`` to ``handle.get_result()``. Goal: p50 <= DBOS's p50,
  p99 <= 30 ms.

``--profile DIR`` runs the server under ``py-spy record`` (if installed) and
leaves one collapsed-stack profile per part in ``DIR`` (``{part}.folded``: flamegraph.pl input).

Run: ``python bench/http_path.py`` (an embedded PostgreSQL in a temporary
directory), or with ``TIDEFLOW_BENCH_DATABASE_URL=postgresql://...`` to use a
running server (databases ``bench_http_*`` are dropped and created on it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import ingest_http  # noqa: E402
from ingest_http import AUTH, RawConnection, http_request  # noqa: E402
from runtime import SEQ3, SLEEP, _dbos, _fresh_db, _pct, _server, _settings  # noqa: E402

FUNCTIONS = "def inc(args):\n    return int(args['n']) + 1\n"
KEYED = {
    "id": "keyed",
    "version": "1",
    "specVersion": "0.8",
    "start": "Wait",
    "events": [
        {
            "name": "Go",
            "type": "bench.go",
            "source": "/bench",
            "correlation": [
                {"contextAttributeName": "benchkey", "contextAttributeValue": "${ .key }"}
            ],
        }
    ],
    "states": [
        {
            "name": "Wait",
            "type": "event",
            "onEvents": [{"eventRefs": ["Go"], "eventDataFilter": {"toStateData": "${ .got }"}}],
            "end": True,
        }
    ],
}
WAITING = {
    **KEYED,
    "id": "waiting",
    "start": "Begin",
    "states": [{"name": "Begin", "type": "inject", "data": {}, "transition": "Wait"}]
    + KEYED["states"],
}
"""KEYED started over HTTP only: its start state waits for nothing, so an event does not
start an instance of it (KEYED's start state is its wait: each event starts one too)."""
JSON = {"content-type": "application/json"}


def get_request(path: str) -> bytes:
    """The bytes of one HTTP/1.1 GET."""
    head = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"]
    head += [f"{name}: {value}" for name, value in AUTH.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")


@contextlib.asynccontextmanager
async def served(
    dsn: str, profile: Path | None, name: str, extra: Sequence[str] = ()
) -> AsyncIterator[int]:
    """A ``tideflow serve`` on ``dsn`` (optionally under py-spy; ``extra``: more of its
    arguments, such as ``--engine temporal ...``); yields its port."""
    functions = Path(tempfile.mkdtemp(prefix="tideflow-bench-fn-")) / "bench_fn.py"
    functions.write_text(FUNCTIONS)
    args, env, port = ingest_http.tideflow_server(dsn)
    args += ["--insecure-local", "--functions", str(functions), "--allow-python", "bench_fn"]
    args += extra
    env["TIDEFLOW_HOME"] = str(functions.parent)  # not ingest_http's: no admin token to read
    spy_out = profile / f"{name}.folded" if profile is not None else None
    async with _process(args, env, port):
        spy = None
        if spy_out is not None and shutil.which("py-spy"):
            spy = subprocess.Popen(  # noqa: ASYNC220 -- py-spy runs beside the bench
                ["py-spy", "record", "-f", "raw", "-o", str(spy_out), "-p", str(_pid_on(port))],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        try:
            yield port
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=60)


@contextlib.asynccontextmanager
async def _process(args: list[str], env: dict[str, str], port: int) -> AsyncIterator[None]:
    """The server subprocess, once it accepts connections (a start-up on a busy machine,
    migrations included, may take a minute); stopped with SIGINT (it drains) afterwards."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, env=env, stdout=asyncio.subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                if process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start ({process.returncode})") from None
                await asyncio.sleep(0.1)
                continue
            writer.close()
            break
        AUTH.clear()  # --insecure-local: no token
        yield
    finally:
        process.send_signal(signal.SIGINT)
        await process.wait()


def server_cpu(port: int) -> float:
    """CPU seconds (user + system) the server on ``port`` has used: a figure the other
    work on a shared machine moves far less than a rate."""
    with open(f"/proc/{_pid_on(port)}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pid_on(port: int) -> int:
    """The pid of the process listening on ``port`` (Linux ``/proc``)."""
    inode = None
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":
                inode = fields[9]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return int(pid)
    raise RuntimeError(f"no process listens on {port}")


async def deploy(port: int, doc: dict[str, Any]) -> None:
    connection = RawConnection(port)
    await connection.open()
    try:
        status, answer = await connection.send(http_request("/workflows", JSON, orjson.dumps(doc)))
    finally:
        await connection.close()
    if status not in (200, 201):
        raise RuntimeError(f"deploying {doc['id']}: HTTP {status} {answer!r}")


async def clients(port: int, count: int, work: Any) -> None:
    """Run ``work(connection)`` on ``count`` keep-alive connections."""

    async def one() -> None:
        connection = RawConnection(port)
        await connection.open()
        try:
            await work(connection)
        finally:
            await connection.close()

    await asyncio.gather(*(one() for _ in range(count)))


async def seq3(dsn: str, n: int, flight: int, profile: Path | None) -> dict[str, Any]:
    async with served(dsn, profile, "seq3") as port:
        await deploy(port, SEQ3)
        queue = iter(range(-100, n))  # 100 to warm up
        latencies: list[float] = []
        started_at = [0.0]

        async def work(connection: RawConnection) -> None:
            for i in queue:
                if i == 0:
                    started_at[0] = time.perf_counter()
                request = http_request(
                    "/workflows/seq3/instances?wait=30", JSON, orjson.dumps({"n": i})
                )
                t0 = time.perf_counter()
                status, answer = await connection.send(request)
                if status != 201 or orjson.loads(answer).get("output") != {"n": i + 3}:
                    raise RuntimeError(f"seq3 instance: HTTP {status} {answer[:200]!r}")
                if i >= 0:
                    latencies.append(time.perf_counter() - t0)

        cpu = server_cpu(port)
        await clients(port, flight, work)
        wall = time.perf_counter() - started_at[0]
        cpu = server_cpu(port) - cpu
    return {
        "instances": n,
        "in_flight": flight,
        "workflows_per_s": round(n / wall, 1),
        "server_cpu_ms_per_workflow": round(cpu / (n + 100) * 1000, 2),  # warm-up included
        "p50_ms": round(_pct(latencies, 0.5) * 1000, 2),
        "p99_ms": round(_pct(latencies, 0.99) * 1000, 2),
    }


async def sleep(dsn: str, n: int, flight: int, profile: Path | None) -> dict[str, Any]:
    import asyncpg

    async with served(dsn, profile, "sleep") as port:
        await deploy(port, SLEEP)
        queue = iter(range(n))
        ids: list[str] = []

        async def work(connection: RawConnection) -> None:
            for _ in queue:
                request = http_request("/workflows/sleep2/instances", JSON, b"{}")
                status, answer = await connection.send(request)
                if status != 201:
                    raise RuntimeError(f"sleep start: HTTP {status} {answer[:200]!r}")
                ids.append(orjson.loads(answer)["id"])

        begin_epoch = time.time()
        begin = time.perf_counter()
        cpu = server_cpu(port)
        await clients(port, flight, work)
        starting = time.perf_counter() - begin
        cpu = server_cpu(port) - cpu
        conn = await asyncpg.connect(dsn)
        try:
            while True:
                done = await conn.fetchval(
                    "SELECT count(*) FROM tideflow_instances WHERE id = ANY($1::text[])"
                    " AND ended_at IS NOT NULL",
                    ids,
                )
                if done >= n:
                    break
                await asyncio.sleep(0.1)
            last = await conn.fetchval(
                "SELECT max(ended_at) FROM tideflow_instances WHERE id = ANY($1::text[])", ids
            )
            completed = await conn.fetchval(
                "SELECT count(*) FROM tideflow_instances WHERE id = ANY($1::text[])"
                " AND status = 'completed'",
                ids,
            )
            late = await conn.fetch(
                "SELECT (coalesce(e->4, t.detail)->>'lateMs')::float AS late"
                " FROM tideflow_timeline t LEFT JOIN LATERAL jsonb_array_elements("
                "CASE WHEN t.kind = 'entries' THEN t.detail END) e ON true"
                " WHERE coalesce(e->>0, t.kind) = 'timer.fired'"
                " AND t.instance_id = ANY($1::text[])",
                ids,
            )
        finally:
            await conn.close()
    lateness = [float(r["late"]) for r in late]
    return {
        "instances": n,
        "starts_in_flight": flight,
        "completed": completed,
        "starting_s": round(starting, 3),
        "starts_per_s": round(n / starting, 1),
        "server_cpu_ms_per_start": round(cpu / n * 1000, 2),
        "wall_s": round(last.timestamp() - begin_epoch, 3),
        "p50_lateness_ms": round(_pct(lateness, 0.5), 1),
        "p99_lateness_ms": round(_pct(lateness, 0.99), 1),
    }


async def event(
    dsn: str,
    n: int,
    profile: Path | None,
    workflow: dict[str, Any] = WAITING,
    extra: Sequence[str] = (),
    gap: float = 0.0,
) -> dict[str, Any]:
    """``n`` instances started over HTTP, each waiting for its event; then one at a time:
    ``GET /instances/{id}?wait`` opened, the event POSTed, the time to the answer
    (:func:`probe`, ``gap`` seconds between one answer and the next event). ``extra``: more
    arguments of the server (``bench/temporal.py``'s ``served`` part runs it with ``--engine
    temporal``)."""
    import asyncpg

    async with served(dsn, profile, "event", extra) as port:
        await deploy(port, workflow)
        keys = [f"k{i}" for i in range(n)]
        ids: dict[str, str] = {}
        queue = iter(keys)

        async def start(connection: RawConnection) -> None:
            for key in queue:
                request = http_request(
                    f"/workflows/{workflow['id']}/instances", JSON, orjson.dumps({"key": key})
                )
                status, answer = await connection.send(request)
                if status != 201:
                    raise RuntimeError(f"keyed start: HTTP {status} {answer[:200]!r}")
                ids[key] = orjson.loads(answer)["id"]

        await clients(port, 20, start)
        conn = await asyncpg.connect(dsn)
        try:
            while (  # noqa: ASYNC110 -- polls the database
                await conn.fetchval(
                    "SELECT count(*) FROM tideflow_correlation_keys WHERE instance_id = ANY($1)",
                    list(ids.values()),
                )
                < n
            ):
                await asyncio.sleep(0.1)
        finally:
            await conn.close()
        latencies = await probe(port, ids, keys, 10, gap)
    return {
        "instances": n,
        "p50_ms": round(_pct(latencies, 0.5) * 1000, 2),
        "p99_ms": round(_pct(latencies, 0.99) * 1000, 2),
    }


async def probe(
    port: int, ids: dict[str, str], keys: list[str], warm: int, gap: float = 0.0
) -> list[float]:
    """Signal ``keys`` one at a time (``gap`` seconds apart after each answer); the POST ->
    long-poll answer latency of each."""
    poller, sender = RawConnection(port), RawConnection(port)
    await poller.open()
    await sender.open()
    latencies: list[float] = []
    try:
        for number, key in enumerate(keys):
            if gap:
                await asyncio.sleep(gap)
            headers = {
                "ce-specversion": "1.0", "ce-id": f"e-{key}", "ce-source": "/bench",
                "ce-type": "bench.go", "ce-benchkey": key, **JSON,
            }  # fmt: skip
            poll = asyncio.create_task(poller.send(get_request(f"/instances/{ids[key]}?wait=30")))
            await asyncio.sleep(0.005)  # the poll is in the server before the event
            t0 = time.perf_counter()
            status, _ = await sender.send(http_request("/events", headers, b'{"n":1}'))
            if status != 202:
                raise RuntimeError(f"event: HTTP {status}")
            status, answer = await poll
            took = time.perf_counter() - t0
            if status != 200 or orjson.loads(answer)["status"] != "completed":
                raise RuntimeError(f"long poll: HTTP {status} {answer[:200]!r}")
            if number >= warm:  # the first ``warm`` are not counted
                latencies.append(took)
    finally:
        await poller.close()
        await sender.close()
    return latencies


def dbos_event(url: str, n: int) -> dict[str, Any]:
    """Run in a subprocess: ``n`` DBOS workflows wait in ``recv``; send -> result, one at a time."""
    from dbos import DBOS

    DBOS(config={"name": "bench", "system_database_url": url, "run_admin_server": False})

    @DBOS.workflow()
    async def waiter() -> Any:
        return await DBOS.recv_async("go", 60)

    DBOS.launch()

    async def main() -> dict[str, Any]:
        handles = [await DBOS.start_workflow_async(waiter) for _ in range(n)]
        await asyncio.sleep(2)  # every workflow is in recv
        latencies: list[float] = []
        for number, handle in enumerate(handles):
            t0 = time.perf_counter()
            await DBOS.send_async(handle.get_workflow_id(), {"n": number}, "go")
            assert await handle.get_result() == {"n": number}
            if number >= 10:
                latencies.append(time.perf_counter() - t0)
        return {
            "p50_ms": round(_pct(latencies, 0.5) * 1000, 2),
            "p99_ms": round(_pct(latencies, 0.99) * 1000, 2),
        }

    try:
        return asyncio.run(main())
    finally:
        DBOS.destroy()


def _dbos_event(url: str, n: int) -> dict[str, Any]:
    args = [sys.executable, __file__, "--_dbos_event", url, "--events", str(n)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ratio(a: Any, b: Any) -> float | None:
    return round(a / b, 2) if isinstance(a, int | float) and isinstance(b, int | float) else None


async def _main(args: argparse.Namespace, server: str) -> dict[str, Any]:
    parts = args.parts.split(",")
    profile = Path(args.profile) if args.profile else None
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    if "seq3" in parts:
        tf = await seq3(
            await _fresh_db(server, "bench_http_seq3", False), args.n, args.flight, profile
        )
        dbos = (
            {}
            if args.no_dbos
            else _dbos(
                await _fresh_db(server, "bench_http_dbos_seq3", False), "seq3", args.n, args.flight
            )
        )
        ratio = _ratio(tf["workflows_per_s"], dbos.get("workflows_per_s"))
        out["seq3"] = {
            "tideflow_http": tf,
            "dbos": dbos,
            "tideflow_vs_dbos": ratio,
            "goal": ">= 5x DBOS workflows/s, p99 <= 250 ms",
            "goal_met": bool(ratio and ratio >= 5 and tf["p99_ms"] <= 250),
        }
    if "sleep" in parts:
        tf = await sleep(
            await _fresh_db(server, "bench_http_sleep", False), args.sleepers, 50, profile
        )
        dbos = (
            {}
            if args.no_dbos
            else _dbos(
                await _fresh_db(server, "bench_http_dbos_sleep", False), "sleep", args.sleepers, 50
            )
        )
        out["sleep"] = {
            "tideflow_http": tf,
            "dbos": dbos,
            "goal": "wall <= 4 s, p99 lateness <= 100 ms",
            "goal_met": tf["wall_s"] <= 4 and tf["p99_lateness_ms"] <= 100,
        }
    if "event" in parts:
        workflow = WAITING if args.event_workflow == "waiting" else KEYED
        tf = await event(
            await _fresh_db(server, "bench_http_event", False), args.events, profile, workflow
        )
        tf["workflow"] = workflow["id"]
        dbos = (
            {}
            if args.no_dbos
            else _dbos_event(await _fresh_db(server, "bench_http_dbos_event", False), args.events)
        )
        out["event"] = {
            "tideflow_http": tf,
            "dbos": dbos,
            "goal": "p50 <= DBOS send->result p50, p99 <= 30 ms",
            "goal_met": bool(
                isinstance(dbos.get("p50_ms"), float)
                and tf["p50_ms"] <= dbos["p50_ms"]
                and tf["p99_ms"] <= 30
            ),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="seq3,sleep,event")
    parser.add_argument("--n", type=int, default=1000, help="seq3 instances")
    parser.add_argument("--flight", type=int, default=50)
    parser.add_argument("--sleepers", type=int, default=2000)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument(
        "--event-workflow",
        choices=["waiting", "keyed"],
        default="waiting",
        help="keyed: the wait is the start state (each event starts an instance too)",
    )
    parser.add_argument("--no-dbos", action="store_true", help="Tideflow only (A/B runs)")
    parser.add_argument("--profile", default=None, help="directory for py-spy flame graphs")
    parser.add_argument("--_dbos_event", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._dbos_event:
        print(json.dumps(dbos_event(args._dbos_event, args.events)))
        return
    report(lambda server: _main(args, server))


def report(run: Callable[[str], Awaitable[dict[str, Any]]]) -> None:
    """Run ``run`` on the PostgreSQL server (embedded unless ``TIDEFLOW_BENCH_DATABASE_URL``)
    and print its figures as JSON with the machine, the load and the server's settings."""
    server, cleanup = _server()
    load = os.getloadavg()
    try:
        figures = asyncio.run(run(server))
        settings = asyncio.run(_settings(server))
    finally:
        cleanup()
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}"
    loads = [round(load[0], 2), round(os.getloadavg()[0], 2)]
    head = {"machine": machine, "load_average_start_end": loads, "postgres": settings}
    print(json.dumps({**head, **figures}, indent=2))


if __name__ == "__main__":
    main()
