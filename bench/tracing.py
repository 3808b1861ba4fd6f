"""Ingestion throughput with OpenTelemetry tracing off, on at 100% and on at 1% (issue 18).

Each configuration runs a real ``tideflow serve`` process (as ``bench/ingest_http.py`` does:
uvicorn, one worker) on the same database; the load is binary-mode single events, 32
concurrent keep-alive clients, each request its own ingestion span (the worst case for
tracing: one trace per event; batched requests make one per batch). The requests carry no
``traceparent``, so each is a new trace, sampled at the ratio. With tracing on the server
exports over OTLP/HTTP to a sink process on 127.0.0.1 (this file, ``otlp-sink``) that
answers every export with 200: exporting costs what it costs, nothing is dropped for
want of a collector.

The three configurations run in turns within each round (off, 100%, 1%), ``--rounds``
rounds; the median round of each is reported with the ratios against off in the same run.
Goal (issue 18): 1% sampling >= 0.95 of off.

Run: ``python bench/tracing.py --dsn postgresql://postgres@127.0.0.1:5432/postgres``
(prints JSON). The runs use a database of their own on that server, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ingest_http as ih

SCRIPT = os.path.abspath(__file__)

CONFIGS: dict[str, dict[str, str]] = {
    "off": {},
    "on_100": {"TIDEFLOW_OTEL": "1", "TIDEFLOW_OTEL_SAMPLE": "1"},
    "on_1": {"TIDEFLOW_OTEL": "1", "TIDEFLOW_OTEL_SAMPLE": "0.01"},
}


class _Sink(BaseHTTPRequestHandler):
    """Takes OTLP/HTTP exports: reads the body, answers 200 with an empty response."""

    exports = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        _Sink.exports += 1
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.asynccontextmanager
async def otlp_sink() -> AsyncIterator[int]:
    """The sink as its own process (its CPU is not the load generator's); yields its port."""
    port = ih.free_port()
    args = [SCRIPT, "otlp-sink", "--port", str(port)]
    process = await asyncio.create_subprocess_exec(sys.executable, *args)
    try:
        for _ in range(200):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            await asyncio.sleep(0.05)
        yield port
    finally:
        process.terminate()
        await process.wait()


async def one_run(dsn: str, config: str, sink: int, requests: int, clients: int) -> dict[str, Any]:
    """Single-event ingestion against ``tideflow serve`` with ``config``'s tracing."""
    run = f"tr{time.monotonic_ns()}"
    path = f"/buses/{run}/events"

    def build(n: int) -> bytes:
        headers, body = ih.encode_binary(ih.make_event(run, n))
        return ih.http_request(path, headers, body)

    def start() -> ih.ServerArgs:
        args, env, port = ih.tideflow_server(dsn)
        env = {**env, **CONFIGS[config]}
        for name in [n for n in env if n.startswith("OTEL_")]:
            del env[name]
        if CONFIGS[config]:
            env["TIDEFLOW_OTEL_ENDPOINT"] = f"http://127.0.0.1:{sink}/v1/traces"
        return args, env, port

    async with ih.server_process(start) as port:
        await ih.create_bus(port, run)
        await ih.warm_up(port, lambda n: build(10_000_000 + n), clients)
        figures = await ih.drive(port, [build(n) for n in range(requests)], clients)
    figures["events_per_s"] = figures.pop("requests_per_s")
    return {"config": config, **figures}


@contextlib.asynccontextmanager
async def fresh_database(dsn: str) -> AsyncIterator[str]:
    """A database of its own on ``dsn``'s server for the run (dropped afterwards): the
    servers migrate it and save its first admin token in the bench's home."""
    name = f"tideflow_bench_tracing_{time.monotonic_ns()}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def run_all(server: str, requests: int, clients: int, rounds: int) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {config: [] for config in CONFIGS}
    async with otlp_sink() as sink, fresh_database(server) as dsn:
        for _ in range(rounds):
            for config, found in runs.items():
                found.append(await one_run(dsn, config, sink, requests, clients))
    medians = {
        config: sorted(found, key=lambda r: float(r["events_per_s"]))[len(found) // 2]
        for config, found in runs.items()
    }
    for config, median in medians.items():
        median["rounds_events_per_s"] = [r["events_per_s"] for r in runs[config]]
    off = float(medians["off"]["events_per_s"])
    ratios = {f"{c}_vs_off": round(float(m["events_per_s"]) / off, 3) for c, m in medians.items()}
    return {
        "scenario": f"HTTP binary single events, {clients} clients, {requests} requests per run",
        "rounds": rounds,
        "medians": list(medians.values()),
        **ratios,
        "goal": "on_1_vs_off >= 0.95",
        "goal_met": ratios["on_1_vs_off"] >= 0.95,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="bench", choices=["bench", "otlp-sink"])
    parser.add_argument("--dsn", default=os.environ.get("TIDEFLOW_BENCH_DATABASE_URL"))
    parser.add_argument("--port", type=int, default=0, help="otlp-sink's port")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.command == "otlp-sink":
        ThreadingHTTPServer(("127.0.0.1", args.port), _Sink).serve_forever()
        return
    if not args.dsn:
        parser.error("--dsn (or TIDEFLOW_BENCH_DATABASE_URL) is required")
    import uvloop

    results = uvloop.run(run_all(args.dsn, args.requests, args.clients, args.rounds))
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
