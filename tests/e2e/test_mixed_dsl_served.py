"""A 0.8 and a 1.0 workflow on one ``tideflow serve``, talking through the default bus.

``examples/mixed``: ``ask-approval`` (DSL 1.0) emits a request and listens for
the decision; ``approver`` (0.8) starts on the request and produces the
decision. Both are deployed from the folder on start; one ``POST`` starts the
1.0 instance and the rest happens between the two workflows. The 1.0
workflow alone also runs through ``tideflow run`` with the decision in
``--events``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.served import Served, copied_database, serve_process

ROOT = Path(__file__).resolve().parents[2]
MIXED = ROOT / "examples" / "mixed"
FINAL = {"completed", "failed", "cancelled"}


@pytest.fixture(scope="module")
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    name = f"t_{_db_names[0]}_mixed_dsl"
    async with copied_database(pg_server_url, pg_template, name) as url:
        yield url


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("serve")
    with serve_process(database, home, "--workflows", str(MIXED)) as running:
        yield running


def poll(client: httpx.Client, path: str, done: Any, seconds: float = 60) -> Any:
    """GET ``path`` until ``done(body)`` holds (the server runs on its own clock)."""
    deadline = time.monotonic() + seconds
    while True:
        body = client.get(path).json()
        if done(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_both_versions_are_deployed_from_one_folder(server: Served) -> None:
    with server.client() as client:
        listed = client.get("/workflows").json()["workflows"]
    assert {(w["id"], w["version"]) for w in listed} == {
        ("examples.ask-approval", "1.0.0"),
        ("approver", "1.0"),
    }


@pytest.mark.parametrize(("amount", "status"), [(120, "approved"), (900, "rejected")])
def test_the_10_workflow_gets_its_answer_from_the_08_one(
    server: Served, amount: int, status: str
) -> None:
    with server.client() as client:
        started = client.post("/workflows/examples.ask-approval/instances", json={"amount": amount})
        assert started.status_code == 201, started.text
        instance = poll(
            client, f"/instances/{started.json()['id']}", lambda b: b["status"] in FINAL
        )
        approvers = client.get("/instances", params={"workflow": "approver"}).json()["instances"]
    assert instance["status"] == "completed", (instance, server.output()[-2000:])
    assert instance["output"] == {"status": status, "by": "approver (0.8)"}
    assert any(a["status"] == "completed" for a in approvers)


def test_the_10_workflow_runs_alone_with_tideflow_run() -> None:
    command = [sys.executable, "-m", "tideflow.cli", "run", str(MIXED / "ask-approval.yaml"),
               "--input", f"@{MIXED / 'ask-approval.input.json'}",
               "--events", str(MIXED / "ask-approval.events.jsonl")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    expected = json.loads((MIXED / "ask-approval.output.json").read_text())
    assert json.loads(done.stdout) == expected
