"""Graceful shutdown of ``tideflow serve``: nothing in flight is lost.

A server is stopped (SIGINT, as Ctrl-C or a deploy would) while instances are
in the middle of a slow function call; a new server on the same database
finishes every one of them with the right output.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.served import auth_for, copied_database, serve_process, stop

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"

SLOW = """\
id: slow-steps
version: "1"
specVersion: "0.8"
start: First
functions:
  - name: slow
    type: custom
    operation: python:example_functions:slow
states:
  - name: First
    type: operation
    actions:
      - functionRef:
          refName: slow
          arguments:
            seconds: 1.5
        actionDataFilter:
          toStateData: ${ .first }
    transition: Second
  - name: Second
    type: operation
    actions:
      - functionRef:
          refName: slow
          arguments:
            seconds: 0.2
        actionDataFilter:
          toStateData: ${ .second }
    end: true
"""


@pytest.fixture
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    name = f"t_{_db_names[0]}_serve_shutdown"
    async with copied_database(pg_server_url, pg_template, name) as url:
        yield url


def shown(url: str, instance_id: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(
        f"{url}/instances/{instance_id}", timeout=10, headers=auth_for(url)
    ).json()
    return body


def test_instances_in_flight_at_shutdown_finish_after_restart(
    database: str, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "slow-steps.yaml").write_text(SLOW)
    shutil.copy(EXAMPLES / "example_functions.py", flows / "example_functions.py")
    with serve_process(database, tmp_path, "--workflows", str(flows)) as first:
        ids = [
            httpx.post(
                f"{first.url}/workflows/slow-steps/instances",
                json={"n": n},
                headers=auth_for(first.url),
            ).json()["id"]
            for n in range(5)
        ]
        deadline = time.monotonic() + 20
        while shown(first.url, ids[-1])["currentState"] != "First":
            assert time.monotonic() < deadline, "the instances never started"
            time.sleep(0.02)
        assert stop(first.process) == 0  # while their first call is in flight
    with serve_process(database, tmp_path, "--workflows", str(flows)) as second:
        deadline = time.monotonic() + 30
        for instance_id in ids:
            while (now := shown(second.url, instance_id))["status"] != "completed":
                assert now["status"] in ("running", "waiting"), now
                assert time.monotonic() < deadline, f"{instance_id} did not finish: {now}"
                time.sleep(0.05)
            assert now["output"] == {
                "n": ids.index(instance_id),
                "first": {"slept": 1.5},
                "second": {"slept": 0.2},
            }
