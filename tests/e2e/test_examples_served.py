"""Every example in examples/workflows runs through the HTTP API of a real server.

One ``tideflow serve --workflows examples/workflows`` process (on a database
copied from the migrated template, as the ``pg_url`` fixture does) serves the
module: the examples are deployed on start, each is started with its input
through ``POST /workflows/{id}/instances`` and must end with the output it
gives under ``tideflow run`` (``NAME.output.json``). Like
``tests/e2e/test_examples.py``, the server gets ``--functions`` (the weather
stand-in) and ``--server`` (the examples' ``http://localhost:8080`` services
run by the test). Events of ``NAME.events.jsonl`` are posted to ``POST /events``
once the instance waits for them; the dispatcher's correlation index hands
them to the waiting instance.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.served import LOCAL, Served, copied_database, serve_process
from tests.support.services import Services, start_services

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "workflows"
NAMES = sorted(p.name.removesuffix(".yaml") for p in EXAMPLES.glob("*.yaml"))
WITH_EVENTS = {n for n in NAMES if (EXAMPLES / f"{n}.events.jsonl").exists()}
FINAL = {"completed", "failed", "cancelled"}


@pytest.fixture(scope="module")
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    """A fresh migrated database for the whole module (the ``pg_url`` recipe, module-wide)."""
    name = f"t_{_db_names[0]}_served_examples"
    async with copied_database(pg_server_url, pg_template, name) as url:
        yield url


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with start_services() as running:
        yield running


@pytest.fixture(scope="module")
def server(
    database: str, services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("serve")
    args = ["--workflows", str(EXAMPLES)]
    args += ["--functions", str(EXAMPLES / "weather-override.functions.py")]
    args += ["--server", f"http://localhost:8080={services.base_url}"]
    with serve_process(database, home, *args, *LOCAL) as running:
        yield running


def workflow_id(name: str) -> str:
    doc = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    return str(doc.get("id") or doc["key"])


def poll(client: httpx.Client, instance_id: str, done: set[str], seconds: float = 60) -> Any:
    """The instance once its status is in ``done`` (the server runs on its own clock)."""
    deadline = time.monotonic() + seconds
    while True:
        shown = client.get(f"/instances/{instance_id}").json()
        if shown["status"] in done or time.monotonic() > deadline:
            return shown
        time.sleep(0.05)


def run_through_api(client: httpx.Client, name: str) -> Any:
    data = json.loads((EXAMPLES / f"{name}.input.json").read_text())
    path = f"/workflows/{workflow_id(name)}/instances"
    if name not in WITH_EVENTS:
        response = client.post(path, json=data, params={"wait": 60})
        assert response.status_code == 201, response.text
        return response.json()
    response = client.post(path, json=data)
    assert response.status_code == 201, response.text
    instance_id = response.json()["id"]
    assert poll(client, instance_id, FINAL | {"waiting"})["status"] == "waiting"
    for line in (EXAMPLES / f"{name}.events.jsonl").read_text().splitlines():
        if line.strip():
            headers = {"content-type": "application/cloudevents+json"}
            sent = client.post("/events", content=line.encode(), headers=headers)
            assert sent.status_code == 202, sent.text
    return poll(client, instance_id, FINAL)


def test_every_example_is_deployed_on_start(server: Served) -> None:
    with server.client() as client:
        listed = {w["id"] for w in client.get("/workflows").json()["workflows"]}
    assert listed == {workflow_id(name) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_example_gives_its_output_through_the_api(
    name: str, server: Served, services: Services
) -> None:
    services.state.reset()
    with server.client(timeout=90) as client:
        instance = run_through_api(client, name)
    expected = json.loads((EXAMPLES / f"{name}.output.json").read_text())
    assert instance["status"] == "completed", (instance, server.output()[-2000:])
    assert instance["output"] == expected
