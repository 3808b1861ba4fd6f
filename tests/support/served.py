"""A real ``tideflow serve`` process for end-to-end tests.

``with serve_process(database_url, *args) as server:`` starts ``python -m
tideflow.cli serve`` on a free port of 127.0.0.1 with
``TIDEFLOW_DATABASE_URL`` set, waits until ``/healthz`` answers, and stops it
with SIGINT (a graceful shutdown) when the block ends. Its output goes to a
log file whose tail is shown when the server fails to start.

The server needs a token: ``server.token`` is the first admin token it saved
in its home (or the one passed in, for a second server on a database that
already has tokens); ``server.auth`` is the header that carries it, and
``server.client()`` an httpx client that sends it.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tideflow.api.testserver import free_port
from tideflow.auth.first_token import read_token_file

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60.0
LOCAL = ("--allow-egress", "127.0.0.1")
"""``serve`` flags for a server whose workflows or sinks call services on this
machine: the egress policy refuses loopback addresses otherwise."""


@dataclass(frozen=True)
class Served:
    """A running server."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    token: str = ""
    home: Path | None = None
    verify: ssl.SSLContext | bool = True

    @property
    def auth(self) -> dict[str, str]:
        """The ``Authorization`` header with the server's token (none for ``--insecure-local``)."""
        return {"authorization": f"Bearer {self.token}"} if self.token else {}

    def client(self, timeout: float = 30) -> httpx.Client:
        """An httpx client on the server's URL that sends its token."""
        return httpx.Client(
            base_url=self.url, timeout=timeout, headers=self.auth, verify=self.verify
        )

    def async_client(self, timeout: float = 30) -> httpx.AsyncClient:
        """An async httpx client on the server's URL that sends its token."""
        return httpx.AsyncClient(
            base_url=self.url, timeout=timeout, headers=self.auth, verify=self.verify
        )

    def output(self) -> str:
        """What the server printed so far."""
        return self.log.read_text(errors="replace")


def _wait_healthy(
    url: str, process: subprocess.Popen[bytes], log: Path, verify: ssl.SSLContext | bool = True
) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tideflow serve exited {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2, verify=verify).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"tideflow serve did not become healthy:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """Stop the server gracefully (SIGINT, as Ctrl-C); kill it if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    return process.returncode


_TOKENS: dict[str, str] = {}


def auth_for(url: str) -> dict[str, str]:
    """The ``Authorization`` header for a running server's base URL (or a URL under it)."""
    for base, token in _TOKENS.items():
        if url == base or url.startswith(base + "/"):
            return {"authorization": f"Bearer {token}"} if token else {}
    raise KeyError(f"no server running at {url}")


def start_and_wait(url: str, workflow_id: str, data: Any) -> dict[str, Any]:
    """Start an instance of ``workflow_id`` on a served process and wait (60 s) for its end."""
    response = httpx.post(
        f"{url}/workflows/{workflow_id}/instances",
        json=data,
        params={"wait": 60},
        timeout=90,
        headers=auth_for(url),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@contextmanager
def serve_process(
    database_url: str | None,
    home: Path,
    *args: str,
    token: str | None = None,
    ca_cert: Path | None = None,
    port: int | None = None,
) -> Iterator[Served]:
    """Run ``tideflow serve ARGS`` against ``database_url`` until the block ends.

    ``database_url`` ``None``: the embedded PostgreSQL in ``home``. ``token`` is
    for a server whose database already has tokens made by a server with
    another home; by default the first admin token saved in ``home`` is used.
    ``ca_cert``: the server speaks HTTPS (``--tls-cert`` in ``args``) with a
    certificate this authority (or self-signed one) issued. ``port``: this one
    rather than a free one (a restart with the same node id).
    """
    port = port or free_port()
    env = {**os.environ, "TIDEFLOW_HOME": str(home)}
    if database_url is not None:
        env["TIDEFLOW_DATABASE_URL"] = database_url
    for name in (
        "TIDEFLOW_SERVER",
        "TIDEFLOW_TOKEN",
        "TIDEFLOW_INSECURE_LOCAL",
        "TIDEFLOW_EGRESS_ALLOW",
        "TIDEFLOW_NODE_ID",
        *(("TIDEFLOW_DATABASE_URL",) if database_url is None else ()),
    ):
        env.pop(name, None)
    log = home / f"serve-{port}.log"
    command = [sys.executable, "-m", "tideflow.cli", "serve", "--port", str(port), *args]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    url = f"{'https' if ca_cert else 'http'}://127.0.0.1:{port}"
    verify = ssl.create_default_context(cafile=ca_cert) if ca_cert else True
    try:
        _wait_healthy(url, process, log, verify)
        served = Served(url, process, log, token or read_token_file(home) or "", home, verify)
        _TOKENS[url] = served.token
        yield served
    finally:
        _TOKENS.pop(url, None)
        stop(process)


@asynccontextmanager
async def copied_database(server_url: str, template: str, name: str) -> AsyncIterator[str]:
    """A database copied from ``template`` (what ``pg_url`` does), for a wider scope."""
    import asyncpg

    from tests.conftest import with_database

    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        yield with_database(server_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


class HealthProber:
    """A second client asking ``/healthz`` over and over until :meth:`stop`, recording each
    status and latency.

    It is a process of its own (``tests/support/healthz_probe.py``): a thread
    here would share the GIL with the test's own work and count that work's
    pauses as the server's latency. Its answers are read at :meth:`stop`.
    """

    def __init__(self, url: str, pause: float = 0.02) -> None:
        self.url = url
        self.pause = pause
        self.answers: list[int] = []
        self.latencies: list[float] = []
        self.sent: list[float] = []
        """When each request was sent (``time.monotonic()``: the machine's clock, which
        the prober process shares with this one)."""
        self._out = Path(tempfile.mkstemp(prefix="healthz-", suffix=".txt")[1])
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start asking; returns once the prober runs."""
        command = [sys.executable, "-m", "tests.support.healthz_probe", self.url]
        self._process = subprocess.Popen([*command, str(self._out), str(self.pause)], cwd=ROOT)
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self._out.read_text():
            if self._process.poll() is not None or time.monotonic() > deadline:
                code = self._process.returncode
                raise RuntimeError(f"the /healthz prober did not start ({code})")
            time.sleep(0.01)

    @property
    def slowest(self) -> float:
        """The longest answer read so far (at :meth:`stop`), in seconds."""
        return max(self.latencies, default=0.0)

    def stop(self) -> None:
        """Stop asking (after the request in flight) and read every answer."""
        process = self._process
        if process is None:
            return
        self._process = None
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        for line in self._out.read_text().splitlines()[1:]:
            sent, latency, status = line.split()
            self.sent.append(float(sent))
            self.latencies.append(float(latency))
            self.answers.append(int(status))
        self._out.unlink()

    def summary(self, since: float = 0.0, until: float = float("inf")) -> str:
        """Count, median, 99th percentile and slowest latency, in ms, and the statuses
        (of the requests sent between ``since`` and ``until``, monotonic times)."""
        picked = [
            (latency, status)
            for sent, latency, status in zip(self.sent, self.latencies, self.answers, strict=True)
            if since <= sent < until
        ]
        ordered = sorted(latency for latency, _ in picked) or [0.0]
        statuses = sorted({status for _, status in picked})
        p50 = ordered[len(ordered) // 2] * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        over = sum(1 for latency in ordered if latency >= 0.1)
        return (
            f"/healthz: {len(picked)} answers {statuses}, "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, slowest {ordered[-1] * 1000:.1f} ms, "
            f"{over} at or over 100 ms"
        )
