"""HTTP ingestion figures for ``bench/ingest.py`` (also runnable alone).

Scenarios, each against a real server *process* (uvicorn with uvloop and
httptools, one worker) on the same database:

* ``http_batched``: batched mode, 100 events per request, 8 concurrent clients,
  against ``tideflow serve``, to a fresh bus (like the store scenarios).
* ``http_single``: binary mode, one event per request, 32 concurrent clients,
  durable (acknowledged after commit, ``synchronous_commit`` on), each run to
  a fresh bus, against ``tideflow serve`` and two naive servers measured in
  the same run -- the same app, HTTP fast path and codec, but one ``INSERT``
  and one commit per request (:func:`naive_app`):

  * ``naive-log``: the naive design of this store: the same log table, the
    offset taken from the bus row in the same statement (so offsets stay
    gap-free in commit order, as the store guarantees). The goal compares
    with this one.
  * ``naive-plain``: a plain table with a ``bigserial`` and a unique key for
    dedup; it gives up gap-free commit-order offsets, so PostgreSQL can
    commit requests in parallel. Shown for context.

The load generator is a minimal HTTP/1.1 keep-alive client on asyncio
streams (httpx would be the bottleneck on a 2-core machine), run in this
process under uvloop.

Servers start on a free port (again on another when some other process took it)
and are used once ``/readyz`` answers 200 from that very process (up to
``TIDEFLOW_BENCH_READY_SECONDS``, 300 by default); see :func:`server_process`.

Run alone: ``python bench/ingest_http.py --dsn postgresql://postgres@localhost/bench``
(prints one JSON document; ``{"error": ...}`` and exit status 1 when a scenario failed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tideflow.api.access import AccessGate, AccessPolicy  # noqa: E402
from tideflow.api.fastpath import IngestFastPath  # noqa: E402
from tideflow.api.testserver import free_port  # noqa: E402
from tideflow.eventstore.gateway import encode_event  # noqa: E402
from tideflow.eventstore.store import Appended  # noqa: E402
from tideflow.http_binding import encode_batch, encode_binary  # noqa: E402

NAIVE_SCHEMA = """
DROP TABLE IF EXISTS bench_naive_events;
CREATE TABLE bench_naive_events (
    offset_ bigserial PRIMARY KEY,
    bus text NOT NULL,
    source text NOT NULL,
    event_id text NOT NULL,
    event json NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (bus, source, event_id)
);
"""
# The naive design of *this* store: one INSERT per event into the same log,
# its offset taken from the bus row in the same statement (the row stays
# locked until commit, which is what keeps offsets gap-free in commit order).
NAIVE_LOG_BUS = """
WITH bus AS (
    INSERT INTO tideflow_buses (name, segment_size) VALUES ($1, 1000000) RETURNING id
)
SELECT tideflow_ensure_segments(id, 1000000) FROM bus
"""
NAIVE_LOG_INSERT = """
WITH bus AS (
    UPDATE tideflow_buses SET next_offset = next_offset + 1 WHERE name = $1
    RETURNING id, next_offset - 1 AS event_offset
)
INSERT INTO tideflow_events (bus_id, event_offset, ce_source, ce_id, ce_key, stored_at, event)
SELECT id, event_offset, $2, $3, $4, now(), $5::json FROM bus
RETURNING event_offset
"""
NAIVE_INSERT = """
INSERT INTO bench_naive_events (bus, source, event_id, event)
VALUES ($1, $2, $3, $4::json)
ON CONFLICT (bus, source, event_id) DO NOTHING
RETURNING offset_
"""


def make_event(run: str, n: int) -> dict[str, Any]:
    """A realistic small event (~350 bytes in JSON)."""
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


AUTH: dict[str, str] = {}
"""The ``Authorization`` header for the server running now (``tideflow serve``'s admin token)."""
HOME = tempfile.mkdtemp(prefix="tideflow-bench-")
"""``TIDEFLOW_HOME`` of the tideflow servers: where the first admin token is saved."""


def http_request(path: str, headers: dict[str, str], body: bytes) -> bytes:
    """The bytes of one HTTP/1.1 POST (with the running server's token, if it needs one)."""
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in {**headers, **AUTH}.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class RawConnection:
    """One keep-alive HTTP/1.1 connection; requests one after another."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()

    async def send(self, request: bytes) -> tuple[int, bytes]:
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        start = lower.index(b"content-length:") + 15
        length = int(lower[start : lower.index(b"\r\n", start)])
        return status, await self.reader.readexactly(length)


READY_SECONDS = float(os.environ.get("TIDEFLOW_BENCH_READY_SECONDS", "300"))
"""How long a server may take to answer ``/readyz`` (a start on a loaded machine, migrations
included, has taken over a minute)."""

ServerArgs = tuple[list[str], dict[str, str], int]
"""A server's command line (after the interpreter), environment and port."""


class PortTaken(RuntimeError):
    """Another process listens on the port picked for the server."""


def listener_pid(port: int) -> int | None:
    """The pid of the process listening on TCP ``port`` of this machine (Linux ``/proc``)."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            for row in rows.readlines()[1:]:
                fields = row.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    sockets.add(f"socket:[{fields[9]}]")
    for pid in filter(str.isdigit, os.listdir("/proc")) if sockets else ():
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in sockets:
                    return int(pid)
    return None


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _ready(port: int) -> bool:
    """Whether the server on ``port`` answers ``GET /readyz`` with 200."""
    connection = RawConnection(port)
    try:
        await connection.open()
        request = b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        status, _ = await asyncio.wait_for(connection.send(request), 10)
    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
        return False
    finally:
        await connection.close()
    return status == 200


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""


@contextlib.asynccontextmanager
async def server_process(start: Callable[[], ServerArgs]) -> AsyncIterator[int]:
    """Start a server subprocess; yield its port once it is ready; stop it afterwards.

    ``start()`` gives the command line on a free port; when another process
    took that port meanwhile (it listens there, or the server exits while
    someone else answers), the server is started again on another, up to five
    times. Ready: ``/readyz`` answers 200 from the process started here (its
    pid owns the listening socket) -- ``tideflow serve`` also has saved its
    first admin token by then. Stopped with SIGINT (it drains), killed if it
    hangs. Its output goes to a log file whose tail is in every error.

    Raises:
        RuntimeError: It exited or was not ready within ``READY_SECONDS``.
    """
    for attempt in range(5):
        args, env, port = start()
        try:
            async with _one_server(args, env, port):
                yield port
            return
        except PortTaken as exc:
            print(f"{exc}; attempt {attempt + 1} of 5", file=sys.stderr)
    raise RuntimeError("no free port for the server after 5 attempts")


@contextlib.asynccontextmanager
async def _one_server(args: list[str], env: dict[str, str], port: int) -> AsyncIterator[None]:
    out, name = tempfile.mkstemp(prefix=f"tideflow-bench-{port}-", suffix=".log")
    log = Path(name)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, *args, env=env, stdout=out, stderr=out
        )
    finally:
        os.close(out)
    try:
        await _until_ready(process, port, log, tideflow=env.get("TIDEFLOW_HOME") == HOME)
        AUTH.clear()
        if env.get("TIDEFLOW_HOME") == HOME:  # tideflow serve: its first admin token
            token = (Path(HOME) / "admin-token").read_text().strip()
            AUTH["Authorization"] = f"Bearer {token}"
        yield
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)  # uvicorn shuts down gracefully
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
                await process.wait()
    os.unlink(name)  # kept when the server failed: its path is in the error


async def _until_ready(
    process: asyncio.subprocess.Process, port: int, log: Path, *, tideflow: bool
) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        owner = listener_pid(port)
        if owner is not None and owner != process.pid:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise PortTaken(f"port {port} is taken by process {owner}")
        if process.returncode is not None:
            raise RuntimeError(
                f"the server exited with {process.returncode} before it was ready "
                f"(log {log}):\n{_tail(log)}"
            )
        token_saved = not tideflow or (Path(HOME) / "admin-token").exists()
        if owner == process.pid and token_saved and await _ready(port):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(
        f"the server on port {port} was not ready (GET /readyz 200) within "
        f"{READY_SECONDS:.0f} s (TIDEFLOW_BENCH_READY_SECONDS; log {log}):\n{_tail(log)}"
    )


def tideflow_server(dsn: str) -> ServerArgs:
    """``tideflow serve`` on a free port against ``dsn``."""
    port = free_port()
    env = {**os.environ, "TIDEFLOW_DATABASE_URL": dsn, "PYTHONPATH": ROOT, "TIDEFLOW_HOME": HOME}
    return ["-m", "tideflow.cli", "serve", "--port", str(port)], env, port


def naive_server(dsn: str, pool_size: int, mode: str) -> ServerArgs:
    """The naive server (this file, ``naive-serve``) on a free port."""
    port = free_port()
    args = [os.path.abspath(__file__), "naive-serve", "--dsn", dsn, "--port", str(port)]
    args += ["--pool-size", str(pool_size), "--mode", mode]
    return args, {**os.environ, "PYTHONPATH": ROOT}, port


async def drive(port: int, requests: list[bytes], clients: int) -> dict[str, Any]:
    """Send ``requests`` over ``clients`` connections; time each request."""
    queue = iter(requests)
    latencies: list[float] = []
    failures: list[int] = []

    async def client() -> None:
        connection = RawConnection(port)
        await connection.open()
        try:
            for request in queue:
                started = time.perf_counter()
                status, _ = await connection.send(request)
                latencies.append(time.perf_counter() - started)
                if status != 202:
                    failures.append(status)
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. HTTP {failures[0]}")
    latencies.sort()
    return {
        "requests": len(requests),
        "seconds": round(elapsed, 3),
        "requests_per_s": round(len(requests) / elapsed, 1),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
        "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 2),
        "mean_ms": round(1000 * statistics.fmean(latencies), 2),
    }


async def warm_up(port: int, build: Callable[[int], bytes], clients: int) -> None:
    await drive(port, [build(n) for n in range(clients * 10)], clients)


async def http_batched(
    dsn: str, *, events: int = 100_000, per_request: int = 100, clients: int = 8
) -> dict[str, Any]:
    """Batched mode against ``tideflow serve``, to a fresh bus: events/s, latency per request."""
    run = f"hb{time.monotonic_ns()}"

    def build(n: int) -> bytes:
        batch = [make_event(run, n * per_request + i) for i in range(per_request)]
        headers, body = encode_batch(batch)
        return http_request(f"/buses/{run}/events", headers, body)

    async with server_process(lambda: tideflow_server(dsn)) as port:
        await create_bus(port, run)
        await warm_up(port, lambda n: build(10_000_000 + n), clients)
        figures = await drive(port, [build(n) for n in range(events // per_request)], clients)
    figures["events_per_s"] = round(events / figures["seconds"])
    return {"scenario": f"HTTP batched, {per_request}/request, {clients} clients", **figures}


DESIGNS: dict[str, str] = {
    "tideflow": "tideflow (group commit)",
    "naive-log": "naive, same log (INSERT + commit per request, gap-free offsets)",
    "naive-plain": "naive, plain table (INSERT + commit per request, no gap-free offsets)",
}


async def http_single(
    dsn: str, *, requests: int = 10_000, clients: int = 32, design: str = "tideflow"
) -> dict[str, Any]:
    """Binary mode, one event per request, ``clients`` concurrent, to a fresh bus."""
    run = f"hs{time.monotonic_ns()}"
    path = f"/buses/{run}/events"

    def build(n: int) -> bytes:
        headers, body = encode_binary(make_event(run, n))
        return http_request(path, headers, body)

    if design == "tideflow":
        start = functools.partial(tideflow_server, dsn)
    else:  # the naive servers get the pool size tideflow serve uses (10)
        await prepare_naive(dsn, design, run)
        start = functools.partial(naive_server, dsn, 10, design.removeprefix("naive-"))
    async with server_process(start) as port:
        if design == "tideflow":
            await create_bus(port, run)
        await warm_up(port, lambda n: build(10_000_000 + n), clients)
        figures = await drive(port, [build(n) for n in range(requests)], clients)
    figures["events_per_s"] = figures.pop("requests_per_s")
    return {"scenario": f"HTTP binary single, {clients} clients, {DESIGNS[design]}", **figures}


async def prepare_naive(dsn: str, design: str, bus: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        if design == "naive-log":
            await conn.execute(NAIVE_LOG_BUS, bus)
        elif design == "naive-plain":
            await conn.execute(NAIVE_SCHEMA)
    finally:
        await conn.close()


async def create_bus(port: int, name: str) -> None:
    connection = RawConnection(port)
    await connection.open()
    try:
        body = orjson.dumps({"name": name})
        status, answer = await connection.send(
            http_request("/buses", {"content-type": "application/json"}, body)
        )
        if status != 201:
            raise RuntimeError(f"creating bus {name}: HTTP {status} {answer!r}")
    finally:
        await connection.close()


class NaiveStore:
    """The naive designs: one INSERT, one commit (autocommit) per event.

    ``log``: into the store's own log, offset from the bus row (gap-free, like
    the real store). ``plain``: into a plain table with a ``bigserial`` and a
    unique key (dedup, but offsets neither gap-free nor in commit order).
    """

    def __init__(self, dsn: str, pool_size: int, mode: str) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self.mode = mode
        self.pool: Any = None

    async def append(self, bus: str, events: Any) -> list[Appended]:
        acks = []
        async with self.pool.acquire() as conn:
            for index, event in enumerate(events):
                source, event_id, key, text = encode_event(event, index)
                if self.mode == "log":
                    offset = await conn.fetchval(NAIVE_LOG_INSERT, bus, source, event_id, key, text)
                else:
                    offset = await conn.fetchval(NAIVE_INSERT, bus, source, event_id, text)
                acks.append(Appended(bus=bus, offset=offset or 0, duplicate=offset is None))
        return acks

    async def get_bus(self, name: str) -> object:
        return name


def naive_app(dsn: str, pool_size: int, mode: str) -> Any:
    """The naive server: the same app, HTTP fast path and codec; only the storage differs."""
    store = NaiveStore(dsn, pool_size, mode)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store.pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
        yield
        await store.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/readyz")
    async def ready() -> dict[str, str]:  # what server_process waits for, as tideflow serve has
        return {"status": "ok"}

    app.add_middleware(IngestFastPath, resolve=lambda scope: (store, 1024 * 1024))
    no_tokens = AccessPolicy(names=None, verifier=None, insecure_local=True)
    app.add_middleware(AccessGate, resolve=lambda scope: no_tokens)  # as --insecure-local
    return app


Limit = Callable[[], Awaitable[float]]
"""Measures the raw COPY limit now (events/s); bench/ingest.py passes one."""


async def run_all(
    dsn: str, *, scale: float = 1.0, rounds: int = 3, limit: Limit | None = None
) -> list[dict[str, Any]]:
    """Every HTTP scenario against ``dsn`` (migrated by ``tideflow serve``).

    Other jobs on the machine move every figure, so scenarios are compared
    with baselines measured next to them: each batched round sits between two
    measures of the raw COPY ``limit`` (their mean is its limit), and the
    single-event scenario runs ours and both naive designs in turn, ``rounds``
    times; medians are reported with every round. The single-event goal
    compares with ``naive-log``, the naive design of the same store (same log,
    same gap-free offsets); ``naive-plain`` gives up that guarantee.
    """
    return [
        await _batched_rounds(dsn, int(100_000 * scale), rounds, limit),
        *await _single_rounds(dsn, int(10_000 * scale), rounds),
    ]


async def _batched_rounds(
    dsn: str, events: int, rounds: int, limit: Limit | None
) -> dict[str, Any]:
    runs = []
    for _ in range(rounds):
        before = await limit() if limit else 0.0
        run = await http_batched(dsn, events=events)
        if limit:
            run["limit_events_per_s"] = round((before + await limit()) / 2)
            run["of_adjacent_limit"] = round(run["events_per_s"] / run["limit_events_per_s"], 2)
        runs.append(run)
    key = "of_adjacent_limit" if limit else "events_per_s"
    median = sorted(runs, key=lambda run: float(run[key]))[len(runs) // 2]
    median["rounds_events_per_s"] = [run["events_per_s"] for run in runs]
    if limit:
        median["of_adjacent_limit_rounds"] = [run["of_adjacent_limit"] for run in runs]
        median["goal"] = "of_adjacent_limit >= 0.25"
        median["goal_met"] = median["of_adjacent_limit"] >= 0.25
    return median


async def _single_rounds(dsn: str, requests: int, rounds: int) -> list[dict[str, Any]]:
    runs: dict[str, list[dict[str, Any]]] = {design: [] for design in DESIGNS}
    for _ in range(rounds):
        for design, found in runs.items():
            found.append(await http_single(dsn, requests=requests, design=design))
    medians = {design: _median_run(found) for design, found in runs.items()}
    for design, median in medians.items():
        median["rounds_events_per_s"] = [run["events_per_s"] for run in runs[design]]
    ours = medians["tideflow"]
    for design in ("naive-log", "naive-plain"):
        key = "vs_" + design.replace("-", "_")
        ours[key] = round(ours["events_per_s"] / medians[design]["events_per_s"], 2)
    ours["goal"] = "vs_naive_log >= 1.5"
    ours["goal_met"] = ours["vs_naive_log"] >= 1.5
    return list(medians.values())


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda run: float(run["events_per_s"]))[len(runs) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="bench", choices=["bench", "naive-serve"])
    parser.add_argument("--dsn", default=os.environ.get("TIDEFLOW_BENCH_DATABASE_URL"))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--pool-size", type=int, default=10, help="naive server's pool")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mode", choices=["log", "plain"], default="log", help="naive design")
    args = parser.parse_args()
    if not args.dsn:
        parser.error("--dsn (or TIDEFLOW_BENCH_DATABASE_URL) is required")
    if args.command == "naive-serve":
        import uvicorn

        uvicorn.run(
            naive_app(args.dsn, args.pool_size, args.mode),
            host="127.0.0.1",
            port=args.port,
            loop="uvloop",
            http="httptools",
            log_level="warning",
            access_log=False,
        )
        return
    import uvloop

    try:
        results: Any = uvloop.run(run_all(args.dsn, scale=args.scale, rounds=args.rounds))
    except Exception as exc:  # still one JSON document on stdout, saying what failed
        print(orjson.dumps({"error": repr(exc)}, option=orjson.OPT_INDENT_2).decode())
        raise SystemExit(1) from exc
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
