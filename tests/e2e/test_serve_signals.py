"""SIGKILL, SIGTERM and SIGINT, each followed by a start, round after round on one data
directory with the embedded PostgreSQL (no ``TIDEFLOW_DATABASE_URL``).

After a graceful stop (SIGTERM as ``kill``, systemd, Kubernetes and ``docker
stop`` send it; SIGINT as Ctrl-C) the server exits 0 and no PostgreSQL is left
running: ``postmaster.pid`` is gone and its process too. After a SIGKILL the
PostgreSQL server stays up (nobody was there to stop it) and the dead pid
stays in ``pgdata/.handle_pids.json``; the next start joins that server, drops
the dead pid, and its own graceful stop still stops PostgreSQL. Every start
works: ``/readyz`` answers 200 without a token and an instance runs.

``TIDEFLOW_SIGNAL_ROUNDS`` sets the rounds: 1 by default (three starts, CI-sized),
the issue's figure is 10.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.served import Served, serve_process
from tideflow.api.testserver import free_port

ROUNDS = int(os.environ.get("TIDEFLOW_SIGNAL_ROUNDS", "1"))
pytestmark = [pytest.mark.slow, pytest.mark.timeout(60 + 60 * ROUNDS)]

HELLO = {
    "id": "hello",
    "version": "1",
    "specVersion": "0.8",
    "start": "Hi",
    "states": [{"name": "Hi", "type": "inject", "data": {"hi": True}, "end": True}],
}


def _postmaster(pgdata: Path) -> int | None:
    """The running PostgreSQL server's pid, or ``None`` when none runs on ``pgdata``."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except FileNotFoundError:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def _ends(pid: int, within: float = 10) -> bool:
    """Whether process ``pid`` ends (or is a zombie) within ``within`` seconds: ``pg_ctl
    stop`` returns once the server removed its pid file, a moment before it exits."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    yield home
    pid = _postmaster(home / "pgdata")
    if pid is not None:  # a failed test's leftover: stop it (immediate shutdown)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)


def _works(server: Served, run: int) -> None:
    """A start works: ready without a token, and an instance of a deployed workflow runs."""
    ready = httpx.get(f"{server.url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    with server.client() as http:
        if run == 0:
            assert http.post("/workflows", json=HELLO).status_code == 201
        ran = http.post("/workflows/hello/instances", json={"run": run}, params={"wait": 20})
        assert ran.status_code == 201, ran.text
        assert ran.json()["output"] == {"run": run, "hi": True}


def test_every_signal_then_a_start_round_after_round(home: Path) -> None:
    pgdata = home / "pgdata"
    port = free_port()
    run = 0
    for _ in range(ROUNDS):
        for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            with serve_process(None, home, port=port) as server:
                _works(server, run)
                run += 1
                postgres = _postmaster(pgdata)
                assert postgres is not None
                server.process.send_signal(sig)
                code = server.process.wait(60)
            log = server.output()
            handles = json.loads((pgdata / ".handle_pids.json").read_text())
            if sig == signal.SIGKILL:
                assert _postmaster(pgdata) == postgres  # left running: joined by the next start
                assert handles == [server.process.pid]  # the dead pid, dropped by the next start
                continue
            assert code == 0, log[-3000:]
            assert f"{sig.name}: draining" in log
            assert "stopped the embedded PostgreSQL" in log
            assert _postmaster(pgdata) is None, f"PostgreSQL still runs after {sig.name}"
            assert handles == []
            assert _ends(postgres), f"PostgreSQL's process {postgres} outlived its stop"
