"""What issue 11's protections cost, each against its absence in the same run; prints one JSON.

Parts (``--parts``, comma-separated; default all):

- ``ingest``: ``POST /buses/{bus}/events`` against a real ``tideflow serve``
  process with API tokens (every request carries the admin token; the access
  gate verifies it from its cache) and against the same server started with
  ``--insecure-local`` (no token), alternated ``--rounds`` times: binary mode,
  one event per request, 32 clients; and batched mode, 100 events per
  request, 8 clients (``bench/ingest_http.py``'s scenarios). Figures: events/s
  and latency; ``auth_on_vs_off`` = events/s with tokens / without.
- ``seq3``: ``bench/runtime.py``'s workflow of 3 sequential functions, each
  instance started over HTTP (``POST /workflows/seq3/instances?wait=30``, 50
  in flight) against the same two servers, alternated. Figures: completed
  workflows/s and latency; ``auth_on_vs_off`` as above.
- ``jq``: a simple expression (``.a + .b``) evaluated with the expression
  budget installed (what every server runs: an expression that cannot loop
  stays in-process after one check) and without it, alternated, best of five
  each; and an expression that can loop (``def``), through the budget's
  worker process against in-process. Goal: >= 100,000 evaluations/s for the
  simple expression with the budget.

Goal (issue 11): ``auth_on_vs_off`` >= 0.95 for ingestion and seq3.

Every server is started by ``bench/ingest_http.py``'s ``server_process``: on a
free port (started again on another when some other process took it), ready
once ``/readyz`` answers 200 from that very process (up to
``TIDEFLOW_BENCH_READY_SECONDS``, 300 by default; the error carries the tail of
its log). stdout is one JSON document even when a part fails: that part is
``{"error": ...}`` (the traceback on stderr) and the exit status is 1.

Run: ``python bench/security.py --dsn postgresql://postgres@127.0.0.1:5432/bench_security``
(the database is created if missing and emptied first; ``tideflow serve`` migrates it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import timeit
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import ingest_http  # noqa: E402
from ingest_http import (  # noqa: E402
    AUTH,
    RawConnection,
    ServerArgs,
    http_request,
    listener_pid,
    process_cpu,
    server_process,
)
from runtime import SEQ3  # noqa: E402

from tideflow import expression_budget  # noqa: E402
from tideflow.workflow import expressions  # noqa: E402
from tideflow.workflow.expressions import compile_expression  # noqa: E402

FUNCTIONS = "def inc(args):\n    return int(args['n']) + 1\n"
"""The benchmark function, bound by name with ``tideflow serve --functions``."""


def server_cpu(port: int) -> float:
    """CPU seconds (user + system) the server listening on ``port`` used so far.

    Other jobs on a shared machine move wall-clock rates by 2x from run to run;
    the server's own CPU per request moves far less, and what auth costs is CPU.
    """
    pid = listener_pid(port)
    if pid is None:
        raise RuntimeError(f"no server process on port {port}")
    return process_cpu(pid)


async def measured(port: int, work: Awaitable[dict[str, Any]], count: int) -> dict[str, Any]:
    """``work``'s figures with the server's CPU microseconds per ``count``."""
    before = server_cpu(port)
    figures = await work
    figures["server_cpu_us_per_item"] = round((server_cpu(port) - before) / count * 1e6, 1)
    return figures


def server(dsn: str, *, auth: bool, functions: Path | None = None) -> ServerArgs:
    """``tideflow serve`` with tokens (``auth``) or ``--insecure-local``."""
    args, env, port = ingest_http.tideflow_server(dsn)
    if not auth:
        args.append("--insecure-local")
    if functions is not None:  # seq3's python:bench_fn:inc, bound by name
        args += ["--functions", str(functions), "--allow-python", "bench_fn"]
    return args, env, port


async def ingest_round(dsn: str, *, auth: bool, requests: int, batches: int) -> dict[str, Any]:
    """One run of each ingestion scenario against one server."""
    run = f"sec{time.monotonic_ns()}"
    async with server_process(lambda: server(dsn, auth=auth)) as port:
        if not auth:
            AUTH.clear()  # no token at all, as a client of --insecure-local sends
        await ingest_http.create_bus(port, run)

        def single(n: int) -> bytes:
            headers, body = ingest_http.encode_binary(ingest_http.make_event(run, n))
            return http_request(f"/buses/{run}/events", headers, body)

        def batch(n: int) -> bytes:
            events = [ingest_http.make_event(run, 50_000_000 + n * 100 + i) for i in range(100)]
            headers, body = ingest_http.encode_batch(events)
            return http_request(f"/buses/{run}/events", headers, body)

        await ingest_http.warm_up(port, lambda n: single(90_000_000 + n), 32)
        singles = [single(n) for n in range(requests)]
        one = await measured(port, ingest_http.drive(port, singles, 32), requests)
        batched = [batch(n) for n in range(batches)]
        many = await measured(port, ingest_http.drive(port, batched, 8), batches * 100)
    one["events_per_s"] = one.pop("requests_per_s")
    many["events_per_s"] = round(batches * 100 / many["seconds"])
    return {"single": one, "batched": many}


async def seq3_round(
    dsn: str, *, auth: bool, n: int, flight: int, functions: Path
) -> dict[str, Any]:
    """Deploy seq3 over HTTP and start ``n`` instances over HTTP, ``flight`` at a time."""
    async with server_process(lambda: server(dsn, auth=auth, functions=functions)) as port:
        if not auth:
            AUTH.clear()
        deploy = RawConnection(port)
        await deploy.open()
        try:
            status, answer = await deploy.send(
                http_request("/workflows", {"content-type": "application/json"}, orjson.dumps(SEQ3))
            )
        finally:
            await deploy.close()
        if status not in (200, 201):
            raise RuntimeError(f"deploying seq3: HTTP {status} {answer!r}")
        queue = iter(range(-100, n))  # 100 to warm up
        latencies: list[float] = []
        started_at = 0.0

        async def client() -> None:
            nonlocal started_at
            connection = RawConnection(port)
            await connection.open()
            try:
                for i in queue:
                    if i == 0:
                        started_at = time.perf_counter()
                    body = orjson.dumps({"n": i})
                    request = http_request(
                        "/workflows/seq3/instances?wait=30",
                        {"content-type": "application/json"},
                        body,
                    )
                    t0 = time.perf_counter()
                    status, answer = await connection.send(request)
                    if status != 201 or orjson.loads(answer).get("output") != {"n": i + 3}:
                        raise RuntimeError(f"seq3 instance: HTTP {status} {answer[:200]!r}")
                    if i >= 0:
                        latencies.append(time.perf_counter() - t0)
            finally:
                await connection.close()

        cpu = server_cpu(port)
        await asyncio.gather(*(client() for _ in range(flight)))
        wall = time.perf_counter() - started_at
        cpu = server_cpu(port) - cpu  # the 100 warm-up instances included
    latencies.sort()
    return {
        "workflows_per_s": round(n / wall, 1),
        "server_cpu_us_per_item": round(cpu / (n + 100) * 1e6, 1),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
        "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 2),
    }


def _order(
    number: int, on: list[dict[str, Any]], off: list[dict[str, Any]]
) -> list[tuple[bool, list[dict[str, Any]]]]:
    """Round ``number``'s order: on/off, then off/on, ... (load that drifts falls on both)."""
    pairs = [(True, on), (False, off)]
    return pairs if number % 2 == 0 else pairs[::-1]


def _median(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    out = dict(sorted(runs, key=lambda run: float(run[key]))[len(runs) // 2])
    out["rounds"] = [run[key] for run in runs]
    out["server_cpu_rounds"] = [run["server_cpu_us_per_item"] for run in runs]
    return out


def _compare(on: list[dict[str, Any]], off: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Medians with and without tokens: the rate's ratio, and the server CPU's (off / on,
    so that both read "1.0: no cost, lower: auth costs")."""
    median_on, median_off = _median(on, key), _median(off, key)
    ratio = round(median_on[key] / median_off[key], 3)
    cpu_on = statistics.median(r["server_cpu_us_per_item"] for r in on)
    cpu_off = statistics.median(r["server_cpu_us_per_item"] for r in off)
    cpu_ratio = round(cpu_off / cpu_on, 3)
    return {
        "auth_on": median_on,
        "auth_off": median_off,
        "auth_on_vs_off": ratio,
        "server_cpu_us_per_item_on_off": [cpu_on, cpu_off],
        "cpu_auth_off_vs_on": cpu_ratio,
        "goal_met": ratio >= 0.95 or cpu_ratio >= 0.95,
    }


async def ingest_part(dsn: str, rounds: int, scale: float) -> dict[str, Any]:
    on: list[dict[str, Any]] = []
    off: list[dict[str, Any]] = []
    for number in range(rounds):
        for auth, found in _order(number, on, off):
            found.append(
                await ingest_round(
                    dsn, auth=auth, requests=int(10_000 * scale), batches=int(500 * scale)
                )
            )
    return {
        "single_32_clients": _compare(
            [r["single"] for r in on], [r["single"] for r in off], "events_per_s"
        ),
        "batched_100_8_clients": _compare(
            [r["batched"] for r in on], [r["batched"] for r in off], "events_per_s"
        ),
    }


async def seq3_part(dsn: str, rounds: int, n: int, flight: int) -> dict[str, Any]:
    functions = Path(tempfile.mkdtemp(prefix="tideflow-bench-fn-")) / "bench_fn.py"
    functions.write_text(FUNCTIONS)
    on: list[dict[str, Any]] = []
    off: list[dict[str, Any]] = []
    for number in range(rounds):
        for auth, found in _order(number, on, off):  # server_process retries a taken port
            found.append(await seq3_round(dsn, auth=auth, n=n, flight=flight, functions=functions))
    return {"instances": n, "in_flight": flight, **_compare(on, off, "workflows_per_s")}


def _rate(func: Callable[[], Any], number: int) -> float:
    """Calls per CPU second of this process (best of five: wall time moves with the load)."""
    return number / min(timeit.repeat(func, number=number, repeat=5, timer=time.process_time))


def jq_part(rounds: int) -> dict[str, Any]:
    simple = compile_expression("${ .a + .b }")
    looping = compile_expression("${ def twice: . * 2; .a | twice }")
    data = {"a": 1, "b": 2}
    figures: dict[str, list[float]] = {
        k: [] for k in ("simple_budget", "simple_none", "loop_budget", "loop_none")
    }
    for _ in range(rounds):
        expressions.install_evaluator(expression_budget.evaluator)
        figures["simple_budget"].append(_rate(lambda: simple.evaluate(data), 100_000))
        figures["loop_budget"].append(_rate(lambda: looping.evaluate(data), 2_000))
        expressions.install_evaluator(None)
        figures["simple_none"].append(_rate(lambda: simple.evaluate(data), 100_000))
        figures["loop_none"].append(_rate(lambda: looping.evaluate(data), 100_000))
    expressions.install_evaluator(expression_budget.evaluator)
    median = {k: round(statistics.median(v)) for k, v in figures.items()}
    return {
        "simple_with_budget_per_s": median["simple_budget"],
        "simple_without_budget_per_s": median["simple_none"],
        "simple_budget_vs_none": round(median["simple_budget"] / median["simple_none"], 3),
        "loop_capable_in_worker_per_s": median["loop_budget"],
        "loop_capable_in_process_per_s": median["loop_none"],
        "goal_eval_per_s": 100_000,
        "goal_met": median["simple_budget"] >= 100_000,
    }


async def _empty(dsn: str) -> None:
    """Create the database if missing and drop everything in it."""
    parts = urlsplit(dsn)
    name = parts.path.lstrip("/")
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    """Every part asked for; a part that fails is reported as ``{"error": ...}`` and the
    others still run."""
    parts = args.parts.split(",")
    out: dict[str, Any] = {"load_average_start": [round(x, 2) for x in os.getloadavg()]}
    runs: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
        "ingest": lambda: ingest_part(args.dsn, args.rounds, args.scale),
        "seq3": lambda: seq3_part(args.dsn, args.rounds, args.n, args.flight),
    }
    if "jq" in parts:
        out["jq"] = jq_part(args.rounds)
    if "ingest" in parts or "seq3" in parts:
        await _empty(args.dsn)  # the first server (with tokens) makes the admin token
    for part, run in runs.items():
        if part in parts:
            try:
                out[part] = await run()
            except Exception as exc:
                out[part] = {"error": repr(exc)}
                traceback.print_exc()  # on stderr: stdout stays one JSON document
    out["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("TIDEFLOW_BENCH_DATABASE_URL"))
    parser.add_argument("--parts", default="jq,ingest,seq3")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="ingestion requests x 10,000")
    parser.add_argument("--n", type=int, default=2000, help="seq3 instances per round")
    parser.add_argument("--flight", type=int, default=50)
    args = parser.parse_args()
    if args.dsn is None and args.parts != "jq":
        parser.error("--dsn (or TIDEFLOW_BENCH_DATABASE_URL) is needed for ingest and seq3")
    out = asyncio.run(_main(args))
    print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    if any(isinstance(part, dict) and "error" in part for part in out.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
