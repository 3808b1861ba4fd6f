"""A real ``tideflow serve`` process for end-to-end tests.

``with serve_process(database_url, *args) as server:`` starts ``python -m
tideflow.cli serve`` on a free port of 127.0.0.1 with
``TIDEFLOW_DATABASE_URL`` set, waits until ``/healthz`` answers, and stops it
with SIGINT (a graceful shutdown) when the block ends. Its output goes to a
log file whose tail is shown when the server fails to start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tideflow.api.testserver import free_port

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60.0


@dataclass(frozen=True)
class Served:
    """A running server."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """What the server printed so far."""
        return self.log.read_text(errors="replace")


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tideflow serve exited {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
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


@contextmanager
def serve_process(database_url: str, home: Path, *args: str) -> Iterator[Served]:
    """Run ``tideflow serve ARGS`` against ``database_url`` until the block ends."""
    port = free_port()
    env = {**os.environ, "TIDEFLOW_DATABASE_URL": database_url, "TIDEFLOW_HOME": str(home)}
    env.pop("TIDEFLOW_SERVER", None)
    log = home / f"serve-{port}.log"
    command = [sys.executable, "-m", "tideflow.cli", "serve", "--port", str(port), *args]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log)
        yield Served(url, process, log)
    finally:
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
