"""Workflow time through a real server: parked sleeps and timeouts are timers in ``GET /timers``.

The server is ``create_app`` with ``tideflow serve``'s composition (one timer
service shared by delayed events, schedules and the runtime's wake-ups) on
the ``pg_url`` database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.auth import home_auth
from tideflow.api.app import create_app
from tideflow.api.testserver import serve_app
from tideflow.serve import open_system
from tideflow.settings import Settings

YAML = {"content-type": "application/yaml"}
WAKE = {"kind": "tideflow.instance.wake", "state": "all"}

SLEEPER = """\
id: long-nap
version: "1"
specVersion: "0.8"
start: Nap
states:
  - name: Nap
    type: sleep
    duration: PT1H
    end: true
"""

IMPATIENT = """\
id: impatient
version: "1"
specVersion: "0.8"
start: Ready
events:
  - name: go
    type: com.example.go
    source: /tests
states:
  - name: Ready
    type: inject
    data: {ready: true}
    transition: Wait
  - name: Wait
    type: event
    onEvents:
      - eventRefs: [go]
    timeouts:
      eventTimeout: PT0.5S
    end: true
"""


@pytest.fixture
async def client(pg_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=pg_url, home=tmp_path), open_system)
    async with (
        serve_app(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers=home_auth(tmp_path)) as http,
    ):
        for text in (SLEEPER, IMPATIENT):
            deployed = await http.post("/workflows", content=text, headers=YAML)
            assert deployed.status_code == 201, deployed.text
        yield http


async def _wake_timers(client: httpx.AsyncClient, instance_id: str) -> list[dict[str, Any]]:
    timers = (await client.get("/timers", params=WAKE)).json()["timers"]
    return [t for t in timers if t["payload"]["instance"] == instance_id]


async def _until_timer(client: httpx.AsyncClient, instance_id: str) -> dict[str, Any]:
    """Poll the server's timers (its own progress; there is no clock to drive)."""
    async with asyncio.timeout(20):
        while not (found := await _wake_timers(client, instance_id)):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    (timer,) = found
    return timer


async def test_a_parked_sleep_is_listed_in_timers(client: httpx.AsyncClient) -> None:
    started = (await client.post("/workflows/long-nap/instances", json={})).json()
    timer = await _until_timer(client, started["id"])
    assert timer["state"] == "pending"
    assert timer["idempotencyKey"] == f"{started['id']}/1/Nap/sleep"
    ahead = datetime.fromisoformat(timer["dueAt"]) - datetime.fromisoformat(timer["createdAt"])
    assert ahead > timedelta(minutes=59)
    shown = (await client.get(f"/instances/{started['id']}")).json()
    assert shown["status"] == "waiting"
    metrics = (await client.get("/metrics")).text  # counted in the database
    assert 'tideflow_instances{status="waiting"} 1.0' in metrics.splitlines()
    cancelled = await client.post(f"/instances/{started['id']}/cancel")
    assert cancelled.json()["status"] == "cancelled"


async def test_an_event_timeout_fires_through_the_timer_service(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/workflows/impatient/instances", json={}, params={"wait": 20})
    done = response.json()
    assert done["status"] == "completed", done
    assert done["output"] == {"ready": True}
    (timer,) = await _wake_timers(client, done["id"])
    assert timer["state"] == "fired"
    assert timer["attempts"] == 1
    assert timer["idempotencyKey"].startswith(f"{done['id']}/1/Wait")
