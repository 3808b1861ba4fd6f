"""Make the upgrade fixture: a database made by the *previous release's* code, instances waiting.

    git -C . worktree add --detach /tmp/previous <commit of the previous release>
    python -m tests.support.upgrade_fixture --previous /tmp/previous \\
        --server postgresql://postgres@127.0.0.1:5432/postgres \\
        > tests/golden/upgrade/previous_release.sql

It starts the previous release's ``tideflow serve`` (``python -m tideflow.cli serve``
run from ``--previous``, so that checkout's code and migrations, not this one's)
on a new database, deploys :data:`WORKFLOWS` and starts one instance of each
through its HTTP API, waits until each sleeps or waits for its event, kills the
server with SIGKILL (a sleep held in memory stays leased to the dead process)
and prints ``pg_dump --inserts`` of the database, without session settings or
comments, so that any PostgreSQL from 15 on restores it with plain statements.
This module imports nothing of ``tideflow``: it only drives the old server.
``tests/e2e/test_upgrade.py`` restores the dump and starts *this* code on it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

DATABASE = "tideflow_upgrade_fixture"

SHORT_SLEEP = {
    "id": "upgrade.short-sleep",
    "version": "1",
    "specVersion": "0.8",
    "start": "Nap",
    "states": [
        {"name": "Nap", "type": "sleep", "duration": "PT3S", "transition": "Done"},
        {"name": "Done", "type": "inject", "data": {"woke": "short"}, "end": True},
    ],
}
"""A sleep the durable host holds in memory (at most 5 s): leased to the killed process."""

LONG_SLEEP = {
    "id": "upgrade.long-sleep",
    "version": "1",
    "specVersion": "0.8",
    "start": "Nap",
    "states": [
        {"name": "Nap", "type": "sleep", "duration": "PT20S", "transition": "Done"},
        {"name": "Done", "type": "inject", "data": {"woke": "long"}, "end": True},
    ],
}
"""A parked sleep: the instance waits for a wake-up timer in tideflow_timers."""

EVENT_WAIT = {
    "id": "upgrade.event-wait",
    "version": "1",
    "specVersion": "0.8",
    "start": "Await",
    "events": [{"name": "Go", "type": "com.example.upgrade.go", "source": "/upgrade"}],
    "states": [
        {
            "name": "Await",
            "type": "event",
            "onEvents": [{"eventRefs": ["Go"], "eventDataFilter": {"toStateData": "${ .go }"}}],
            "end": True,
        }
    ],
}
"""A 0.8 event state: an open wait in the correlation index."""

LISTEN = {
    "document": {"dsl": "1.0.0", "namespace": "upgrade", "name": "listen", "version": "1.0.0"},
    "do": [
        {"wait": {"listen": {"to": {"one": {"with": {"type": "com.example.upgrade.dsl1"}}}}}},
        {"done": {"set": {"heard": "${ .[0].word }"}}},
    ],
}
"""A DSL 1.0 listen task: the other interpreter's journal."""

WORKFLOWS = (SHORT_SLEEP, LONG_SLEEP, EVENT_WAIT, LISTEN)
WAITING = {"upgrade.short-sleep": "running"}
"""Status each instance is left in (``waiting`` unless named)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _workflow_id(definition: dict[str, Any]) -> str:
    if "document" in definition:
        return f"{definition['document']['namespace']}.{definition['document']['name']}"
    return str(definition["id"])


def _wait_status(client: httpx.Client, instance_id: str, status: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body = client.get(f"/instances/{instance_id}").json()
        if body["status"] == status and (status != "running" or body.get("currentState")):
            return
        time.sleep(0.1)
    raise RuntimeError(f"instance {instance_id} never reached {status}: {body}")


def _drive(url: str) -> dict[str, str]:
    """Deploy the workflows, start one instance of each, wait until each waits."""
    started: dict[str, str] = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        for definition in WORKFLOWS:
            reply = client.post(
                "/workflows",
                content=json.dumps(definition),
                headers={"content-type": "application/json"},
            )
            reply.raise_for_status()
            workflow_id = _workflow_id(definition)
            reply = client.post(f"/workflows/{workflow_id}/instances", json={"n": 1})
            reply.raise_for_status()
            started[workflow_id] = reply.json()["id"]
        for workflow_id, instance_id in started.items():
            _wait_status(client, instance_id, WAITING.get(workflow_id, "waiting"))
    return started


def _dump(url: str) -> str:
    dump = subprocess.run(
        ["pg_dump", "--inserts", "--no-owner", "--no-privileges", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    dropped = re.compile(r"^(SET |SELECT pg_catalog\.set_config|\\restrict|\\unrestrict|--)")
    lines = [line for line in dump.splitlines() if not dropped.match(line)]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--previous", type=Path, required=True, help="previous release checkout")
    parser.add_argument("--server", required=True, help="PostgreSQL server URL (its postgres db)")
    args = parser.parse_args(argv)
    previous = args.previous.resolve()
    rev_parse = ["git", "-C", str(previous), "rev-parse", "HEAD"]
    commit = subprocess.run(rev_parse, check=True, capture_output=True, text=True).stdout.strip()
    database = urlunsplit(urlsplit(args.server)._replace(path="/" + DATABASE))
    subprocess.run(["psql", args.server, "-qc", f"DROP DATABASE IF EXISTS {DATABASE}"], check=True)
    subprocess.run(["psql", args.server, "-qc", f"CREATE DATABASE {DATABASE}"], check=True)
    port = _free_port()
    home = Path(tempfile.mkdtemp(prefix="tideflow-upgrade-"))
    env = {
        **os.environ,
        "PYTHONPATH": str(previous),
        "TIDEFLOW_DATABASE_URL": database,
        "TIDEFLOW_HOME": str(home),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "tideflow.cli", "serve", "--insecure-local", "--port", str(port)],
        cwd=previous,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(home / "serve.log").open("wb"),
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError((home / "serve.log").read_text()[-3000:])
            time.sleep(0.2)
        started = _drive(url)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(10)
    header = (
        f"-- The upgrade fixture (tests/support/upgrade_fixture.py): made by tideflow at commit\n"
        f"-- {commit} (the previous release), killed while these instances waited:\n"
        + "".join(f"--   {wf}: {iid}\n" for wf, iid in started.items())
    )
    sys.stdout.write(header + "\n" + _dump(database))
    subprocess.run(["psql", args.server, "-qc", f"DROP DATABASE {DATABASE} WITH (FORCE)"])


if __name__ == "__main__":
    main()
