"""The DSL 1.0 examples that ``tideflow run`` runs, through a real ``tideflow serve``.

One server (``--server`` sends the examples' public services to the local
stand-ins) serves the module. Each example of
``tests/e2e/test_sw1_examples.py``'s ``RUNNABLE`` is deployed with ``POST
/workflows`` -- under a version of its own, since several examples share a
``namespace.name`` -- started through the API, given its CloudEvents on
``POST /events`` one by one, each once it waits (an event posted while a
listen is between two waits is kept for it; one that arrives as a new wait
opens while older ones are kept may be taken first, so the order is only
checked this way), and must end with the output it has under ``tideflow run``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.test_sw1_examples import CHILD, FAULTING, RUNNABLE, SECRETS, TRIGGER
from tests.support.agents import TOKEN, WORKFLOW, agents_in_thread
from tests.support.served import LOCAL, Served, copied_database, serve_process
from tests.support.sw1 import EXAMPLES, needs_sw1
from tests.support.sw1_services import start_stand_ins

FINAL = {"completed", "failed", "cancelled"}
SERVED = sorted(
    name
    for name, (data, _, _) in RUNNABLE.items()
    if isinstance(data, dict) and name != "run-subflow.yaml"
)
"""The examples run here; the others, with the reason:

- ``run-subflow``: its sub-workflow is not in the corpus; it is deployed
  first by :func:`test_run_subflow_runs_its_deployed_child_when_served`
  (``tideflow run`` gets it with ``--workflows``);
- ``set``, ``set-expression``, ``schedule-event-driven``: their input is the
  list of events that started them (``schedule.on``), and ``POST
  /workflows/{id}/instances`` takes an object: they are started by posting
  their event (:func:`test_example_started_by_its_event_when_served`).
"""
STARTED_BY_EVENT = sorted(
    name for name, (data, _, _) in RUNNABLE.items() if isinstance(data, list)
)
_VERSION = re.compile(r"(\n\s+version:\s*)['\"]?([0-9][^'\"\s]*)['\"]?")


@pytest.fixture(scope="module")
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    name = f"t_{_db_names[0]}_sw1_examples"
    async with copied_database(pg_server_url, pg_template, name) as url:
        yield url


@pytest.fixture(scope="module")
def server(
    database: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: Any
) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("serve")
    with start_stand_ins() as redirects:
        args = [arg for origin, to in redirects.items() for arg in ("--server", f"{origin}={to}")]
        grants = ("--grant-secret", "examples.*=mySecret")  # the *-secret examples' policy
        scripts = "--allow-scripts"  # run-script-with-stdin-and-arguments (JavaScript)
        with serve_process(database, home, *args, *LOCAL, *grants, scripts) as running:
            yield running


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in SECRETS.items():  # the server reads TIDEFLOW_SECRET_* at start
            patch.setenv(name, value)
        yield patch


def deploy(client: httpx.Client, name: str) -> str:
    """Deploy the example under version ``<its version>-<file name>``; return its id."""
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    slug = re.sub(r"[^0-9A-Za-z-]", "-", name.removesuffix(".yaml"))
    text = _VERSION.sub(lambda m: f"{m.group(1)}'{m.group(2)}-{slug}'", text, count=1)
    response = client.post("/workflows", content=text, headers={"content-type": "application/yaml"})
    assert response.status_code == 201, response.text
    document = yaml.safe_load(text)["document"]
    assert response.json()["id"] == f"{document['namespace']}.{document['name']}"
    return str(response.json()["id"])


def poll(client: httpx.Client, instance_id: str, done: set[str], seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        shown = client.get(f"/instances/{instance_id}").json()
        if shown["status"] in done or time.monotonic() > deadline:
            return shown
        time.sleep(0.05)


def as_sent(name: str, event: dict[str, Any]) -> dict[str, Any]:
    """The CloudEvent as posted for example ``name``: ids of its own (the server keeps
    every event it took, and drops one whose source and id it has seen)."""
    return {"specversion": "1.0", **event, "id": f"{name}:{event['id']}"}


def run_served(client: httpx.Client, name: str, data: Any, events: list[dict[str, Any]]) -> Any:
    workflow_id = deploy(client, name)
    started = client.post(f"/workflows/{workflow_id}/instances", json=data)
    assert started.status_code == 201, started.text
    instance_id = started.json()["id"]
    for event in events:
        if poll(client, instance_id, FINAL | {"waiting"})["status"] in FINAL:
            break  # an `until` met before the last event: the rest are not for it
        headers = {"content-type": "application/cloudevents+json"}
        body = json.dumps(as_sent(name, event)).encode()
        sent = client.post("/events", content=body, headers=headers)
        assert sent.status_code == 202, sent.text
    return poll(client, instance_id, FINAL)


@needs_sw1
@pytest.mark.parametrize("name", SERVED)
def test_example_runs_to_its_output_when_served(name: str, server: Served) -> None:
    data, events, expected = RUNNABLE[name]
    with server.client(timeout=60) as client:
        instance = run_served(client, name, data, events)
    assert instance["status"] == "completed", (instance, server.output()[-3000:])
    output = instance["output"]
    if name.endswith("read-envelope.yaml"):  # its output is the events as posted
        expected = [as_sent(name, event) for event in expected]
    if isinstance(expected, dict) and expected.get("partial"):
        wanted = {k: v for k, v in expected.items() if k != "partial"}
        assert {k: output.get(k) for k in wanted} == wanted
    else:
        assert output == expected


@needs_sw1
@pytest.mark.parametrize("name", sorted(FAULTING))
def test_example_faults_when_served(name: str, server: Served) -> None:
    data, message = FAULTING[name]
    with server.client(timeout=60) as client:
        instance = run_served(client, name, data, [])
    assert instance["status"] == "failed"
    # the version is the example's own plus its file name (see deploy)
    slug = name.removesuffix(".yaml")
    assert message.replace(":0.1.0'", f":0.1.0-{slug}'") in instance["error"]["message"]


@needs_sw1
@pytest.mark.parametrize("name", STARTED_BY_EVENT)
def test_example_started_by_its_event_when_served(name: str, server: Served) -> None:
    """``schedule.on``: posting the event starts an instance whose input is ``[event]``."""
    (_, _, expected) = RUNNABLE[name]
    schedule = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))["schedule"]
    strategy = schedule.get("on", schedule.get(True))  # YAML reads the key `on` as true
    sent = as_sent(name, {**TRIGGER, "type": strategy["one"]["with"]["type"]})
    with server.client(timeout=60) as client:
        workflow_id = deploy(client, name)
        headers = {"content-type": "application/cloudevents+json"}
        posted = client.post("/events", content=json.dumps(sent).encode(), headers=headers)
        assert posted.status_code == 202, posted.text
        deadline = time.monotonic() + 60
        while True:
            listed = client.get("/instances", params={"workflow": workflow_id}).json()
            mine = [i for i in listed["instances"] if i["input"] == [sent]]
            if (mine and mine[0]["status"] in FINAL) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        instance = client.get(f"/instances/{mine[0]['id']}").json() if mine else None
    assert instance is not None, f"no instance of {workflow_id} for the event"
    assert instance["status"] == "completed", (instance, server.output()[-3000:])
    as_posted = json.loads(json.dumps(expected).replace(json.dumps(TRIGGER), json.dumps(sent)))
    assert instance["output"] == as_posted


@needs_sw1
def test_run_subflow_runs_its_deployed_child_when_served(server: Served) -> None:
    data, events, expected = RUNNABLE["run-subflow.yaml"]
    with server.client(timeout=60) as client:
        headers = {"content-type": "application/yaml"}
        child = client.post("/workflows", content=CHILD, headers=headers)
        assert child.status_code == 201, child.text
        instance = run_served(client, "run-subflow.yaml", data, events)
    assert instance["status"] == "completed", (instance, server.output()[-3000:])
    assert instance["output"] == expected


def test_a2a_and_mcp_calls_run_when_served(server: Served) -> None:
    with agents_in_thread() as agents, server.client(timeout=60) as client:
        yaml_text = {"content-type": "application/yaml"}
        deployed = client.post("/workflows", content=WORKFLOW, headers=yaml_text)
        assert deployed.status_code == 201, deployed.text
        data = {"base": agents.base, "token": TOKEN, "question": "served"}
        started = client.post(f"/workflows/{deployed.json()['id']}/instances", json=data)
        assert started.status_code == 201, started.text
        instance = poll(client, started.json()["id"], FINAL)
    assert instance["status"] == "completed", (instance, server.output()[-3000:])
    assert instance["output"] == {"answer": "echo: served", "sum": 3}
    assert agents.sessions == {"session-1": "ended"}
