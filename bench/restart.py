"""Restart recovery of ``tideflow serve`` (issue 12); prints one JSON document.

``--instances`` instances (default 30) of a workflow that sleeps ``--sleep``
seconds (default 2, in memory: leased by the server) are started; once every
one sleeps, the server is stopped and started again, and the script measures
how long after the new server is ready (``/readyz`` 200) the last instance
completes, and how late each completed past its sleep's due time (the API's
``startedAt`` + sleep -> ``endedAt``). Each mode runs on a fresh embedded
PostgreSQL in a temporary home (``--database-url`` to use a server instead),
one after the other, every one with ``--lease`` seconds (default 30, the lease
before issue 12; a restart slower than a short lease would find it run out):

- ``sigkill``: SIGKILL, restart on the same port and home (the same node id,
  which takes its own leases back at once);
- ``sigterm``: SIGTERM (a drain: leases released), the same restart;
- ``baseline_sigkill_other_node``: the behaviour before issue 12 -- SIGKILL,
  then a restart under another node id (``--node-id``, as the random lease owner
  of old): the instances wait for their leases to run out.

Run: ``python bench/restart.py [--instances 30] [--sleep 2] [--rounds 1]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tideflow.auth.first_token import read_token_file  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """One ``tideflow serve`` process."""

    def __init__(self, home: Path, port: int, env: dict[str, str], *args: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = home / f"serve-{time.monotonic_ns()}.log"
        command = [sys.executable, "-m", "tideflow.cli", "serve", "--port", str(port), *args]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
        self.spawned = time.monotonic()
        self.ready = self._wait_ready()
        token = read_token_file(home)
        self.auth = {"authorization": f"Bearer {token}"} if token else {}

    def _wait_ready(self) -> float:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return time.monotonic()
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"serve never ready:\n{self.log.read_text()[-3000:]}")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.auth, timeout=120)

    def stop(self, sig: signal.Signals) -> float:
        """Send ``sig``; seconds until the process ended."""
        began = time.monotonic()
        self.process.send_signal(sig)
        self.process.wait(120)
        return time.monotonic() - began


def _nap(seconds: float) -> dict[str, Any]:
    return {
        "id": "nap",
        "version": "1",
        "specVersion": "0.8",
        "start": "Nap",
        "states": [
            {"name": "Nap", "type": "sleep", "duration": f"PT{seconds}S", "transition": "Done"},
            {"name": "Done", "type": "inject", "data": {"woke": True}, "end": True},
        ],
    }


def _start_napping(server: Server, instances: int, sleep: float) -> list[str]:
    with server.client() as http:
        http.post("/workflows", json=_nap(sleep)).raise_for_status()
        inputs = [{"n": n} for n in range(instances)]
        batch = http.post("/workflows/nap/instances:batch", json={"inputs": inputs})
        batch.raise_for_status()
        ids = [row["id"] for row in batch.json()["instances"]]
        for instance_id in ids:
            while http.get(f"/instances/{instance_id}").json()["currentState"] != "Nap":
                time.sleep(0.02)
    return ids


def _when(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _mode(args: argparse.Namespace, sig: signal.Signals, other_node: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tf-restart-") as tmp:
        home = Path(tmp)
        env = {**os.environ, "TIDEFLOW_HOME": str(home)}
        for name in ("TIDEFLOW_DATABASE_URL", "TIDEFLOW_NODE_ID", "TIDEFLOW_LEASE_SECONDS"):
            env.pop(name, None)
        if args.database_url:
            env["TIDEFLOW_DATABASE_URL"] = args.database_url
        env["TIDEFLOW_LEASE_SECONDS"] = str(args.lease)
        port = _free_port()
        first = Server(home, port, env, "--node-id", "bench-a")
        ids = _start_napping(first, args.instances, args.sleep)
        stopped_in = first.stop(sig)
        again = Server(home, port, env, "--node-id", "bench-b" if other_node else "bench-a")
        lateness: list[float] = []
        with again.client() as http:
            for instance_id in ids:
                row = http.get(f"/instances/{instance_id}", params={"wait": 60}).json()
                if row["status"] != "completed":
                    raise RuntimeError(f"{instance_id} did not complete: {row}")
                due = _when(row["startedAt"]) + args.sleep
                lateness.append(_when(row["endedAt"]) - due)
        last = time.monotonic()
        log = again.log.read_text()
        again.stop(signal.SIGTERM)
        found = next((line for line in log.splitlines() if ": ready in " in line), "")
        return {
            "signal": sig.name,
            "restart_node": "another node id" if other_node else "the same node id",
            "lease_seconds": args.lease,
            "stop_seconds": round(stopped_in, 3),
            "restart_to_ready_seconds": round(again.ready - again.spawned, 3),
            "ready_to_last_completed_seconds": round(last - again.ready, 3),
            "lateness_seconds": {
                "min": round(min(lateness), 3),
                "median": round(statistics.median(lateness), 3),
                "max": round(max(lateness), 3),
            },
            "ready_line": found.split("INFO:", 1)[-1].strip(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=30)
    parser.add_argument("--sleep", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    modes: dict[str, list[dict[str, Any]]] = {}
    plan = [("sigkill", signal.SIGKILL, False), ("sigterm", signal.SIGTERM, False)]
    if not args.skip_baseline:
        plan.append(("baseline_sigkill_other_node", signal.SIGKILL, True))
    load_before = [round(x, 2) for x in os.getloadavg()]
    for _ in range(args.rounds):
        for name, sig, other in plan:
            modes.setdefault(name, []).append(_mode(args, sig, other))
    print(
        json.dumps(
            {
                "benchmark": "restart recovery (issue 12)",
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "load_average_before": load_before,
                    "load_average_after": [round(x, 2) for x in os.getloadavg()],
                },
                "date": datetime.now().astimezone().isoformat(timespec="seconds"),
                "instances": args.instances,
                "sleep_seconds": args.sleep,
                "database": "server" if args.database_url else "embedded PostgreSQL",
                "modes": modes,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
