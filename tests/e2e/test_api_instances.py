"""Instances over HTTP: start (and wait), list, show, timeline, cancel, suspend, resume.

A real server (uvicorn on 127.0.0.1, the app's own lifespan composing the
event store, timers and the durable runtime) on a fresh PostgreSQL database
from the ``pg_url`` fixture.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
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

GREETER = """\
id: greeter
version: "1"
specVersion: "0.8"
start: Greet
states:
  - name: Greet
    type: inject
    data:
      greeting: Hello
    end: true
"""

FAILING = """\
id: failing
version: "1"
specVersion: "0.8"
start: Divide
functions:
  - name: boom
    type: expression
    operation: .missing.deeper | error("no way")
states:
  - name: Divide
    type: operation
    actions:
      - functionRef: boom
    end: true
"""

WAITER = """\
id: waiter
version: "1"
specVersion: "0.8"
start: Wait
events:
  - name: go
    type: com.example.go
    source: /tests
states:
  - name: Wait
    type: event
    onEvents:
      - eventRefs: [go]
    end: true
"""

SLEEPER = """\
id: sleeper
version: "1"
specVersion: "0.8"
start: Nap
states:
  - name: Nap
    type: sleep
    duration: PT1H
    end: true
"""


STEPS = """\
id: steps
version: "1"
specVersion: "0.8"
start: S1
states:
""" + "".join(
    f"""\
  - name: S{i}
    type: inject
    data:
      n{i}: {i}
    {"end: true" if i == 6 else f"transition: S{i + 1}"}
"""
    for i in range(1, 7)
)


@pytest.fixture
async def client(pg_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    # COUNTER calls python:builtins:len: allowed explicitly, as --allow-python builtins would
    settings = Settings(database_url=pg_url, home=tmp_path, python_modules=("builtins",))
    app = create_app(settings, open_system)
    async with (
        serve_app(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers=home_auth(tmp_path)) as http,
    ):
        for text in (GREETER, FAILING, WAITER, SLEEPER, STEPS):
            deployed = await http.post("/workflows", content=text, headers=YAML)
            assert deployed.status_code == 201, deployed.text
        yield http


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) >= {"type", "title", "detail"}
    return body


async def start(
    client: httpx.AsyncClient, workflow: str, data: Any = None, wait: float | None = None
) -> dict[str, Any]:
    params = {} if wait is None else {"wait": wait}
    response = await client.post(f"/workflows/{workflow}/instances", json=data, params=params)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/instances/{response.json()['id']}"
    body: dict[str, Any] = response.json()
    return body


async def until_status(client: httpx.AsyncClient, instance_id: str, status: str) -> dict[str, Any]:
    """Poll the status API (the server's own progress; there is no clock to drive)."""
    async with asyncio.timeout(20):
        while True:
            shown: dict[str, Any] = (await client.get(f"/instances/{instance_id}")).json()
            if shown["status"] == status:
                return shown
            await asyncio.sleep(0.05)


async def test_start_and_wait_returns_the_finished_instance(client: httpx.AsyncClient) -> None:
    done = await start(client, "greeter", {"name": "Ada"}, wait=20)
    assert done["status"] == "completed"
    assert done["output"] == {"name": "Ada", "greeting": "Hello"}
    assert done["workflowId"] == "greeter"
    assert done["version"] == "1"
    assert done["input"] == {"name": "Ada"}
    assert done["error"] is None
    assert done["parentId"] is None
    assert done["endedAt"] >= done["startedAt"]
    shown = (await client.get(f"/instances/{done['id']}")).json()
    assert shown == done
    keys = {"id", "workflowId", "version", "status", "currentState", "input", "data"}
    assert set(shown) >= keys | {"output", "error", "startedAt", "updatedAt", "endedAt"}


async def test_start_without_wait_answers_id_and_status(client: httpx.AsyncClient) -> None:
    started = await start(client, "greeter")
    assert set(started) == {"id", "status"}
    assert started["status"] in ("running", "completed")
    done = await until_status(client, started["id"], "completed")
    assert done["input"] == {}


async def test_failed_instance_reports_name_code_message_state(
    client: httpx.AsyncClient,
) -> None:
    failed = await start(client, "failing", {}, wait=20)
    assert failed["status"] == "failed"
    error = failed["error"]
    assert set(error) == {"name", "code", "message", "state"}  # no 1.0 `details` for 0.8
    assert error["state"] == "Divide"
    assert error["message"]


async def test_timeline_shows_states_and_actions_with_duration_and_attempt(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post("/workflows", content=COUNTER, headers=YAML)).status_code == 201
    done = await start(client, "counter", {}, wait=20)
    response = await client.get(f"/instances/{done['id']}/timeline")
    assert response.status_code == 200
    assert response.json()["id"] == done["id"]
    assert response.json()["next"] is None
    entries = response.json()["entries"]
    kinds = [(e["kind"], e["state"]) for e in entries]
    assert kinds[0] == ("state.entered", "Count"), kinds
    assert kinds[-1] == ("state.left", "Count"), kinds
    completed = next(e for e in entries if e["kind"] == "action.completed")
    assert completed["attempt"] == 1
    assert completed["durationMs"] >= 0
    assert all(e["at"] and e["run"] == 1 for e in entries)


async def test_list_filters_by_workflow_and_status_and_pages(client: httpx.AsyncClient) -> None:
    ids = [(await start(client, "greeter", {"n": n}, wait=20))["id"] for n in range(3)]
    failed = (await start(client, "failing", {}, wait=20))["id"]
    page = (await client.get("/instances", params={"workflow": "greeter", "limit": 2})).json()
    assert [i["id"] for i in page["instances"]] == [ids[2], ids[1]]  # the newest first
    rest = await client.get(
        "/instances", params={"workflow": "greeter", "limit": 2, "cursor": page["next"]}
    )
    assert [i["id"] for i in rest.json()["instances"]] == [ids[0]]
    assert rest.json()["next"] is None
    oldest: dict[str, str | int] = {"workflow": "greeter", "limit": 2, "order": "asc"}
    page = (await client.get("/instances", params=oldest)).json()
    assert [i["id"] for i in page["instances"]] == ids[:2]
    rest = await client.get("/instances", params={**oldest, "cursor": page["next"]})
    assert [i["id"] for i in rest.json()["instances"]] == ids[2:]
    assert rest.json()["next"] is None
    bad_order = await client.get("/instances", params={"order": "sideways"})
    assert bad_order.status_code in (400, 422), bad_order.text
    assert bad_order.json()["path"] == "query.order"
    only_failed = (await client.get("/instances", params={"status": "failed"})).json()
    assert [i["id"] for i in only_failed["instances"]] == [failed]
    bad = problem(await client.get("/instances", params={"status": "sleepy"}), 400)
    assert "sleepy" in bad["detail"]
    assert problem(await client.get("/instances", params={"cursor": "x"}), 400)["detail"]


async def test_cancel_a_waiting_instance_then_refuse_to_cancel_again(
    client: httpx.AsyncClient,
) -> None:
    waiting = await start(client, "waiter", {})
    await until_status(client, waiting["id"], "waiting")
    cancelled = await client.post(f"/instances/{waiting['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["endedAt"] is not None
    again = problem(await client.post(f"/instances/{waiting['id']}/cancel"), 409)
    assert "cancelled" in again["detail"]


async def test_suspend_and_resume_a_sleeping_instance(client: httpx.AsyncClient) -> None:
    sleeping = await start(client, "sleeper", {})
    await until_status(client, sleeping["id"], "waiting")
    suspended = await client.post(f"/instances/{sleeping['id']}/suspend")
    assert suspended.json()["status"] == "suspended", suspended.text
    again = await client.post(f"/instances/{sleeping['id']}/suspend")  # idempotent
    assert again.json()["status"] == "suspended"
    resumed = await client.post(f"/instances/{sleeping['id']}/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] in ("running", "waiting")
    await until_status(client, sleeping["id"], "waiting")  # replayed: still sleeping
    assert problem(await client.post(f"/instances/{sleeping['id']}/resume"), 409)
    cancelled = await client.post(f"/instances/{sleeping['id']}/cancel")
    assert cancelled.json()["status"] == "cancelled"


async def test_lifecycle_events_reach_their_bus(client: httpx.AsyncClient) -> None:
    done = await start(client, "greeter", {}, wait=20)
    async with asyncio.timeout(10):
        while True:
            page = await client.get("/buses/tideflow.lifecycle/events", params={"limit": 100})
            assert page.status_code == 200, page.text
            mine = [
                r["event"] for r in page.json()["events"] if r["event"]["subject"] == done["id"]
            ]
            if any(e["type"].endswith(".completed") for e in mine):
                break
            await asyncio.sleep(0.05)
    types = [e["type"] for e in mine]
    assert types[0] == "io.tideflow.instance.started"
    assert "io.tideflow.instance.state.entered" in types
    assert types[-1] == "io.tideflow.instance.completed"
    assert mine[0]["source"] == "/tideflow/workflows/greeter"


async def test_timeline_pages_cover_every_entry_once_in_order(client: httpx.AsyncClient) -> None:
    done = await start(client, "steps", {}, wait=20)
    assert done["status"] == "completed", done
    path = f"/instances/{done['id']}/timeline"
    whole = (await client.get(path, params={"limit": 5000})).json()
    assert whole["next"] is None
    assert len(whole["entries"]) >= 12
    for size in (1, 2, 3, 5):
        paged: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": size}
        while True:
            page = (await client.get(path, params=params)).json()
            assert 1 <= len(page["entries"]) <= size, (size, page)
            paged.extend(page["entries"])
            if page["next"] is None:
                break
            params = {"limit": size, "after": page["next"]}
        assert paged == whole["entries"], size


async def test_timeline_refuses_unknown_parameters_and_bad_cursors(
    client: httpx.AsyncClient,
) -> None:
    done = await start(client, "greeter", {}, wait=20)
    path = f"/instances/{done['id']}/timeline"
    unknown = problem(await client.get(path, params={"limit": 2, "cursor": "3"}), 422)
    assert unknown["path"] == "cursor"
    assert "cursor" in unknown["detail"]
    for params in ({"after": "x"}, {"after": "1.x"}, {"after": "9" * 30}, {"after": "-1"}):
        assert problem(await client.get(path, params=params), 400)["path"] == "after"
    for limit in (0, 5001, "many"):
        assert problem(await client.get(path, params={"limit": limit}), 400)
    beyond = (await client.get(path, params={"after": "999999"})).json()
    assert beyond == {"id": done["id"], "entries": [], "next": None}


async def test_unknown_things_are_404_and_bad_input_400(client: httpx.AsyncClient) -> None:
    assert problem(await client.get("/instances/nope"), 404)["type"] == "not-found"
    assert problem(await client.get("/instances/nope/timeline"), 404)
    assert problem(await client.post("/instances/nope/cancel"), 404)
    assert problem(await client.post("/workflows/nope/instances", json={}), 404)
    not_json = await client.post(
        "/workflows/greeter/instances",
        content=b"{oops",
        headers={"content-type": "application/json"},
    )
    assert "not JSON" in problem(not_json, 400)["detail"]
    a_list = await client.post("/workflows/greeter/instances", json=[1, 2])
    assert "JSON object" in problem(a_list, 400)["detail"]
    too_long = await client.post("/workflows/greeter/instances", json={}, params={"wait": 9999})
    assert problem(too_long, 422)["path"] == "wait"


async def test_deleted_workflow_starts_nothing_but_old_instances_stay(
    client: httpx.AsyncClient,
) -> None:
    done = await start(client, "greeter", {}, wait=20)
    assert (await client.delete("/workflows/greeter")).status_code == 204
    assert problem(await client.post("/workflows/greeter/instances", json={}), 404)
    assert (await client.get(f"/instances/{done['id']}")).json()["status"] == "completed"


def sample(text: str, name: str) -> float:
    """The value of one sample line of the Prometheus text format."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} in:\n{text}")


COUNTER = """\
id: counter
version: "1"
specVersion: "0.8"
start: Count
functions:
  - name: size
    type: custom
    operation: python:builtins:len
states:
  - name: Count
    type: operation
    actions:
      - functionRef:
          refName: size
          arguments: {a: 1, b: 2}
        actionDataFilter:
          toStateData: ${ .size }
    end: true
"""


async def test_metrics_count_instances_steps_and_events(client: httpx.AsyncClient) -> None:
    assert (await client.post("/workflows", content=COUNTER, headers=YAML)).status_code == 201
    counted = await start(client, "counter", {}, wait=20)
    assert counted["output"] == {"size": 2}, counted
    await start(client, "failing", {}, wait=20)
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert sample(text, 'tideflow_instance_lifecycle_total{kind="started"}') == 2
    assert sample(text, 'tideflow_instance_lifecycle_total{kind="completed"}') == 1
    assert sample(text, 'tideflow_instance_lifecycle_total{kind="failed"}') == 1
    assert sample(text, "tideflow_step_seconds_count") == 1  # the python: call
    assert sample(text, "tideflow_journal_commits") >= 1
    assert sample(text, 'tideflow_bus_events{bus="tideflow.lifecycle"}') >= 4
    assert "tideflow_journal_commit_seconds_bucket" in text
    sent = await client.post(
        "/events",
        json={"specversion": "1.0", "id": "m-1", "source": "/tests", "type": "com.example.m"},
        headers={"content-type": "application/cloudevents+json"},
    )
    assert sent.status_code == 202, sent.text
    after = (await client.get("/metrics")).text
    assert sample(after, 'tideflow_events_in_total{bus="default"}') == 1


def napper(version: str) -> str:
    return f"""\
id: napper
version: "{version}"
specVersion: "0.8"
start: Nap
states:
  - name: Nap
    type: sleep
    duration: PT1S
    transition: Mark
  - name: Mark
    type: inject
    data:
      ranVersion: "{version}"
    end: true
"""


async def test_running_instance_finishes_on_its_version_after_a_new_deploy(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post("/workflows", content=napper("1"), headers=YAML)).status_code == 201
    first = await start(client, "napper", {})
    assert (await client.post("/workflows", content=napper("2"), headers=YAML)).status_code == 201
    second = await start(client, "napper", {})
    old = await client.post("/workflows/napper/instances", json={}, params={"version": "1"})
    assert old.status_code == 201, old.text
    done_first = await until_status(client, first["id"], "completed")
    done_second = await until_status(client, second["id"], "completed")
    done_old = await until_status(client, old.json()["id"], "completed")
    assert (done_first["version"], done_first["output"]) == ("1", {"ranVersion": "1"})
    assert (done_second["version"], done_second["output"]) == ("2", {"ranVersion": "2"})
    assert done_old["output"] == {"ranVersion": "1"}


_RFC3339_ANY_OFFSET = re.compile(r'"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?([^"]*)"')


async def test_every_timestamp_in_the_api_is_utc_with_z(client: httpx.AsyncClient) -> None:
    done = await start(client, "greeter", {"n": 1}, wait=20)
    sleeping = (await start(client, "sleeper", {}))["id"]
    paths = [
        "/workflows",
        "/workflows/greeter",
        "/instances",
        f"/instances/{done['id']}",
        f"/instances/{done['id']}/timeline",
        f"/instances/{sleeping}",
        "/buses",
        "/buses/default",
        "/buses/tideflow.lifecycle",
        "/buses/tideflow.lifecycle/events",
        "/buses/tideflow.lifecycle/events/1",
        "/timers",
        "/subscriptions",
        "/cluster",
        "/tokens",
        "/connectors",
    ]
    seen, wrong = 0, []
    for path in paths:
        answer = await client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        for offset in _RFC3339_ANY_OFFSET.findall(answer.text):
            seen += 1
            if offset != "Z":
                wrong.append(f"{path}: a timestamp ends in {offset!r}, not Z")
    assert wrong == []
    assert seen > 10
