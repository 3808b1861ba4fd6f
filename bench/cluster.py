"""Several ``tideflow serve`` processes on one database (issue 12): what grows with N.

Measured with 1, 2 and 3 real ``tideflow serve`` processes on one fresh
database each time (the 1-process figures are the baseline of the same run):

- **subscription delivery**: 30 subscriptions on one bus, each to a local HTTP
  sink (an asyncio server in this process on 127.0.0.1); ``--events`` events
  appended in batches through the first process; events delivered per second
  from the first append until every subscription has every event;
- **event -> instance**: an event-started workflow, ``--starts`` events
  through the first process; instances completed per second until all have;
- **takeover after SIGKILL** (3 processes): ``--kills`` times, one process
  other than the first is killed; the time until ``GET /cluster`` shows every
  unit owned by the survivors, and until an event appended right after the
  kill has reached every subscription; the process is then restarted under
  its node id and the bench waits until it has its share back.

Prints JSON. ``python bench/cluster.py [--server URL] [--events N] [--starts N]
[--kills N] [--processes 1,2,3]`` (``--events 0`` or ``--starts 0`` leaves that part out;
the takeovers need the delivery part); ``--server`` is a PostgreSQL server (default
``TIDEFLOW_TEST_DATABASE_URL`` or ``postgresql://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
SUBSCRIPTIONS = 30
BUS = "bench"
GREET = """\
id: bench-greet
version: '1.0'
specVersion: '0.8'
start: Wait
events:
  - name: Hello
    type: com.example.bench.hello
    source: /bench
states:
  - name: Wait
    type: event
    onEvents:
      - eventRefs: [Hello]
        eventDataFilter:
          toStateData: ${ .hello }
    end: true
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sink:
    """A minimal HTTP/1.1 keep-alive sink: counts deliveries per path and event id."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.seen: dict[str, set[str]] = {}
        self.changed = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                await reader.readexactly(int(headers.get("content-length", "0")))
                self.counts[path] += 1
                self.seen.setdefault(path, set()).add(headers.get("ce-id", ""))
                self.changed.set()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def reached(self, event_id: str) -> int:
        return sum(1 for ids in self.seen.values() if event_id in ids)

    async def until(self, predicate: Any, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not predicate():
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the sink did not get what was expected")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 0.2))


class Server:
    """One ``tideflow serve`` process."""

    def __init__(self, dsn: str, node: str, home: Path, extra: tuple[str, ...] = ()) -> None:
        self.dsn, self.node, self.home = dsn, node, home
        self.extra = extra
        """More ``serve`` arguments (``--workflows``, ``--connectors``, ...)."""
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    async def start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "TIDEFLOW_DATABASE_URL": self.dsn, "TIDEFLOW_HOME": str(self.home)}
        for name in ("TIDEFLOW_TOKEN", "TIDEFLOW_SERVER", "TIDEFLOW_INSECURE_LOCAL"):
            env.pop(name, None)
        command = [sys.executable, "-m", "tideflow.cli", "serve", "--port", str(port)]
        command += ["--node-id", self.node, "--allow-egress", "127.0.0.1", *self.extra]
        log = (self.home / f"serve-{port}.log").open("wb")
        self.process = await asyncio.to_thread(
            subprocess.Popen, command, cwd=ROOT, env=env, stdout=log, stderr=log
        )
        async with httpx.AsyncClient() as client:
            for _ in range(1200):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        return
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.node} exited; see {self.home}")
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.node} did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()


async def fresh_database(server: str, name: str) -> str:
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = server.rpartition("/")
    return f"{base}/{name}"


async def start_cluster(dsn: str, count: int, root: Path) -> list[Server]:
    servers = []
    for i in range(count):
        home = root / f"n{i}"
        home.mkdir(parents=True, exist_ok=True)
        server = Server(dsn, f"n{i}", home)
        await server.start()  # one at a time: the first migrates and makes the token
        servers.append(server)
    return servers


def token(servers: list[Server]) -> dict[str, str]:
    text = (servers[0].home / "admin-token").read_text().strip()
    return {"authorization": f"Bearer {text}"}


async def cluster_owned(client: httpx.AsyncClient, url: str, nodes: set[str]) -> bool:
    """Every unit owned, by exactly ``nodes``, within one of a fair share."""
    found = (await client.get(f"{url}/cluster")).json()
    owned = {n["id"]: len(n["units"]) for n in found["nodes"]}
    if set(owned) != nodes or found["unowned"]:
        return False
    return max(owned.values()) - min(owned.values()) <= 1


async def wait_owned(client: httpx.AsyncClient, url: str, nodes: set[str]) -> float:
    started = time.monotonic()
    while not await cluster_owned(client, url, nodes):
        if time.monotonic() - started > 120:
            raise TimeoutError(f"units not owned by {nodes}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def batch(prefix: str, start: int, count: int, kind: str = "t") -> bytes:
    return json.dumps(
        [
            {"specversion": "1.0", "id": f"{prefix}-{i}", "source": "/bench", "type": kind,
             "data": {"i": i, "hello": {"i": i}}}
            for i in range(start, start + count)
        ]
    ).encode()  # fmt: skip


async def post(client: httpx.AsyncClient, url: str, bus: str, body: bytes) -> None:
    headers = {"content-type": "application/cloudevents-batch+json"}
    response = await client.post(f"{url}/buses/{bus}/events", content=body, headers=headers)
    response.raise_for_status()


async def delivery(servers: list[Server], sink: Sink, sink_url: str, events: int) -> float:
    """Events delivered per second by ``servers`` to 30 subscriptions."""
    first = servers[0].url
    async with httpx.AsyncClient(headers=token(servers), timeout=60) as client:
        (await client.post(f"{first}/buses", json={"name": BUS})).raise_for_status()
        for i in range(SUBSCRIPTIONS):
            body = {"bus": BUS, "sink": f"{sink_url}/s{i}"}
            (await client.post(f"{first}/subscriptions", json=body)).raise_for_status()
        await wait_owned(client, first, {s.node for s in servers})
        started = time.monotonic()
        for start in range(0, events, 500):
            await post(client, first, BUS, batch("d", start, min(500, events - start)))
        total = SUBSCRIPTIONS * events
        await sink.until(lambda: sum(sink.counts.values()) >= total, 600)
        return total / (time.monotonic() - started)


def cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU seconds of ``pids`` so far (``None``: no ``/proc`` to read)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / os.sysconf("SC_CLK_TCK")


async def backend_pids(conn: asyncpg.Connection) -> list[int]:
    """The PostgreSQL backends the servers hold now (read in ``/proc`` when PostgreSQL runs
    on this machine; connections opened later are not counted)."""
    rows = await conn.fetch(
        "SELECT pid FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    return [int(row["pid"]) for row in rows]


async def starts(
    servers: list[Server], dsn: str, count: int, settle: bool = True
) -> tuple[float, dict[str, float]]:
    """Instances started from events and completed per second (``settle``: once the
    partitions are shared out; else at once, while units may still move), and the CPU
    milliseconds per instance of the ``serve`` processes and of their backends meanwhile."""
    first = servers[0].url
    async with httpx.AsyncClient(headers=token(servers), timeout=60) as client:
        if settle:
            await wait_owned(client, first, {s.node for s in servers})
        headers = {"content-type": "application/yaml"}
        (await client.post(f"{first}/workflows", content=GREET, headers=headers)).raise_for_status()
        conn = await asyncpg.connect(dsn)
        try:
            serving = [s.process.pid for s in servers if s.process is not None]
            backends = await backend_pids(conn)
            before = cpu_seconds(serving), cpu_seconds(backends)
            started = time.monotonic()
            kind = "com.example.bench.hello"
            for start in range(0, count, 500):
                body = batch("w", start, min(500, count - start), kind)
                await post(client, first, "default", body)
            query = "SELECT count(*) FROM tideflow_instances WHERE status = 'completed'"
            while await conn.fetchval(query) < count:
                if time.monotonic() - started > 600:
                    raise TimeoutError("instances did not complete")
                await asyncio.sleep(0.05)
            rate = count / (time.monotonic() - started)
            after = cpu_seconds(serving), cpu_seconds(backends)
            cpu = {
                name: round((a - b) * 1000 / count, 2)
                for name, b, a in zip(("serve", "backends"), before, after, strict=True)
                if a is not None and b is not None
            }
            return rate, cpu
        finally:
            await conn.close()


async def takeovers(servers: list[Server], sink: Sink, kills: int) -> dict[str, Any]:
    """Kill a process other than the first ``kills`` times; time the takeover."""
    first = servers[0].url
    owned, delivered = [], []
    async with httpx.AsyncClient(headers=token(servers), timeout=60) as client:
        nodes = {s.node for s in servers}
        for round_no in range(kills):
            victim = servers[1 + round_no % (len(servers) - 1)]
            await wait_owned(client, first, nodes)
            victim.kill()
            killed = time.monotonic()
            probe = f"k{round_no}-0"
            await post(client, first, BUS, batch(f"k{round_no}", 0, 1))
            await sink.until(lambda p=probe: sink.reached(p) >= SUBSCRIPTIONS, 120)
            delivered.append(time.monotonic() - killed)
            await wait_owned(client, first, nodes - {victim.node})
            owned.append(time.monotonic() - killed)
            await victim.start()  # the same node id: it gets its share back
    return {
        "kills": kills,
        "owned_by_survivors_s": _summary(owned),
        "probe_delivered_everywhere_s": _summary(delivered),
    }


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 3),
        "max": round(max(values), 3),
        "min": round(min(values), 3),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sink = Sink()
    sink_url = await sink.start()
    results: dict[str, Any] = {"delivery_events_per_s": {}, "starts_per_s": {}}
    for count in args.processes:
        dsn = await fresh_database(args.server, f"bench_cluster_{count}")
        with tempfile.TemporaryDirectory() as root:
            servers = await start_cluster(dsn, count, Path(root))
            try:
                sink.counts.clear()
                sink.seen.clear()
                if args.events:
                    rate = await delivery(servers, sink, sink_url, args.events)
                    results["delivery_events_per_s"][count] = round(rate)
                if args.starts:
                    rate, cpu = await starts(servers, dsn, args.starts, not args.unsettled)
                    results["starts_per_s"][count] = round(rate, 1)
                    results.setdefault("starts_cpu_ms_per_instance", {})[count] = cpu
                if count == 3 and args.kills and args.events:
                    results["takeover"] = await takeovers(servers, sink, args.kills)
            finally:
                for server in servers:
                    server.stop()
    for figure in ("delivery_events_per_s", "starts_per_s"):
        base = results[figure].get(1)
        if not base:
            continue
        results[figure + "_vs_1"] = {k: round(v / base, 2) for k, v in results[figure].items()}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get(
        "TIDEFLOW_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--server", default=default)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--starts", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument(
        "--processes",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2, 3],
        help="the cluster sizes measured, comma-separated (default 1,2,3)",
    )
    parser.add_argument(
        "--unsettled",
        action="store_true",
        help="post the starting events as soon as the processes are up, while the "
        "partitions may still move (default: once they are shared out)",
    )
    args = parser.parse_args()
    started = time.monotonic()
    results = asyncio.run(run(args))
    results["seconds"] = round(time.monotonic() - started)
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]
    results["args"] = vars(args) | {"server": "(given)"}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
