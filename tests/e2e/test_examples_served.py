"""Every example in examples/workflows completes under ``tideflow serve``, as
``examples/README.md`` tells a new user to run it.

Two processes, started the README's way: ``tideflow demo-services`` (the REST,
GraphQL and OData services the examples call) and ``tideflow serve
--workflows examples/workflows`` with ``--functions`` (the weather stand-in)
and the egress rule the README gives. The demo services listen on a free port
rather than 8081 (tests run side by side), so both commands take the README's
"if 8081 is taken" form: ``--port N`` and ``--server
http://127.0.0.1:8081=http://127.0.0.1:N`` with ``--allow-egress 127.0.0.1:N``.

Every example is started at once through ``POST /workflows/{id}/instances``
(the server runs them side by side); those with ``NAME.events.jsonl`` get
their events through ``POST /events`` once they wait; each must end with its
``NAME.output.json``. ``examples/mixed`` and ``examples/connectors`` have
tests of their own (``test_mixed_dsl_served.py``, ``test_connectors_example.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.served import Served, copied_database, serve_process, stop
from tideflow.api.testserver import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "workflows"
NAMES = sorted(p.name.removesuffix(".yaml") for p in EXAMPLES.glob("*.yaml"))
WITH_EVENTS = {n for n in NAMES if (EXAMPLES / f"{n}.events.jsonl").exists()}
FINAL = {"completed", "failed", "cancelled"}
STRUCTURED = {"content-type": "application/cloudevents+json"}


@pytest.fixture(scope="module")
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    """A fresh migrated database for the whole module (the ``pg_url`` recipe, module-wide)."""
    name = f"t_{_db_names[0]}_served_examples"
    async with copied_database(pg_server_url, pg_template, name) as url:
        yield url


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``tideflow demo-services --port N`` running; yields ``N``."""
    port = free_port()
    log = tmp_path_factory.mktemp("demo") / "demo.log"
    command = [sys.executable, "-m", "tideflow.cli", "demo-services", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=os.environ, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/pets", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield port
    finally:
        stop(process)


@pytest.fixture(scope="module")
def server(database: str, demo: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("serve")
    args = ["--workflows", str(EXAMPLES)]
    args += ["--functions", str(EXAMPLES / "weather-override.functions.py")]
    args += ["--allow-egress", f"127.0.0.1:{demo}"]
    args += ["--server", f"http://127.0.0.1:8081=http://127.0.0.1:{demo}"]
    with serve_process(database, home, *args) as running:
        yield running


def workflow_id(name: str) -> str:
    doc = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    return str(doc.get("id") or doc["key"])


def poll(client: httpx.Client, instance_id: str, done: set[str]) -> Any:
    """The instance once its status is in ``done`` (the server runs on its own clock)."""
    deadline = time.monotonic() + 45
    while True:
        shown = client.get(f"/instances/{instance_id}").json()
        if shown["status"] in done or time.monotonic() > deadline:
            return shown
        time.sleep(0.05)


def run_example(server: Served, name: str) -> Any:
    """Start ``name`` with its input, send its events once it waits; the instance at its end."""
    data = json.loads((EXAMPLES / f"{name}.input.json").read_text())
    path = f"/workflows/{workflow_id(name)}/instances"
    with server.client(timeout=60) as client:
        if name not in WITH_EVENTS:
            response = client.post(path, json=data, params={"wait": 45})
            assert response.status_code == 201, response.text
            return response.json()
        response = client.post(path, json=data)
        assert response.status_code == 201, response.text
        instance_id = response.json()["id"]
        waiting = poll(client, instance_id, FINAL | {"waiting"})
        assert waiting["status"] == "waiting", waiting
        for line in (EXAMPLES / f"{name}.events.jsonl").read_text().splitlines():
            if line.strip():
                sent = client.post("/events", content=line.encode(), headers=STRUCTURED)
                assert sent.status_code == 202, sent.text
        return poll(client, instance_id, FINAL)


def run_all(server: Served, names: list[str]) -> dict[str, Any]:
    """Every example of ``names`` run at the same time; each one's instance at its end."""
    with ThreadPoolExecutor(len(names)) as pool:
        return dict(zip(names, pool.map(lambda n: run_example(server, n), names), strict=True))


@pytest.fixture(scope="module")
def ended(server: Served) -> dict[str, Any]:
    return run_all(server, NAMES)


def test_every_example_is_deployed_on_start(server: Served) -> None:
    with server.client() as client:
        listed = {w["id"] for w in client.get("/workflows").json()["workflows"]}
    assert listed == {workflow_id(name) for name in NAMES}
    assert len(NAMES) >= 19


@pytest.mark.parametrize("name", NAMES)
def test_example_gives_its_output_through_the_api(
    name: str, ended: dict[str, Any], server: Served
) -> None:
    instance = ended[name]
    expected = json.loads((EXAMPLES / f"{name}.output.json").read_text())
    assert instance["status"] == "completed", (instance, server.output()[-2000:])
    assert instance["output"] == expected


def test_a_second_run_of_the_service_examples_gives_the_same_output(
    ended: dict[str, Any], server: Served
) -> None:
    """The demo services answer the same whatever ran before (pets added by name once)."""
    again = ["pets-rest", "pets-graphql", "rest-shorthand", "products-odata", "retry-flaky"]
    for name, instance in run_all(server, again).items():
        expected = json.loads((EXAMPLES / f"{name}.output.json").read_text())
        assert (instance["status"], instance.get("output")) == ("completed", expected), name
