"""Issue 13's API: ``GET /instances/{id}?wait`` (a long poll), batch starts, and unknown
query parameters refused -- through a real ``tideflow serve`` process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_api_instances import GREETER, SLEEPER, WAITER, YAML, problem
from tests.support.auth import home_auth
from tests.support.served import Served, serve_process, stop
from tideflow.api.app import create_app
from tideflow.api.testserver import serve_app
from tideflow.serve import open_system
from tideflow.settings import Settings

CE = {"content-type": "application/cloudevents+json"}


@pytest.fixture
def server(pg_url: str, tmp_path: Path) -> Iterator[Served]:
    with serve_process(pg_url, tmp_path) as served:
        with served.client() as http:
            for text in (GREETER, WAITER, SLEEPER):
                deployed = http.post("/workflows", content=text, headers=YAML)
                assert deployed.status_code == 201, deployed.text
        yield served


def started(http: httpx.Client, workflow: str) -> str:
    response = http.post(f"/workflows/{workflow}/instances", json={})
    assert response.status_code == 201, response.text
    instance_id: str = response.json()["id"]
    return instance_id


async def test_a_long_poll_answers_when_the_event_ends_the_instance(server: Served) -> None:
    with server.client() as http:
        instance_id = started(http, "waiter")
    async with server.async_client(timeout=60) as http:
        poll = asyncio.create_task(http.get(f"/instances/{instance_id}", params={"wait": 60}))
        async with asyncio.timeout(30):  # the instance parks, then the event may end it
            while True:
                if (await http.get(f"/instances/{instance_id}")).json()["status"] == "waiting":
                    break
                await asyncio.sleep(0.05)
        event = {"specversion": "1.0", "id": "go-1", "source": "/tests", "type": "com.example.go"}
        assert (await http.post("/events", json=event, headers=CE)).status_code == 202
        answered = await poll
    assert answered.status_code == 200, answered.text
    assert answered.json()["id"] == instance_id
    assert answered.json()["status"] == "completed"
    assert answered.json()["endedAt"] is not None


def test_a_long_poll_that_runs_out_answers_the_instance_as_it_is(server: Served) -> None:
    with server.client() as http:
        instance_id = started(http, "sleeper")
        shown = http.get(f"/instances/{instance_id}", params={"wait": 0.3})
        assert shown.status_code == 200, shown.text
        assert shown.json()["id"] == instance_id
        assert shown.json()["status"] in ("running", "waiting")
        done = http.post("/workflows/greeter/instances", json={}, params={"wait": 20}).json()
        ended = http.get(f"/instances/{done['id']}", params={"wait": 60})
        assert ended.json() == done  # an ended instance is answered at once, unchanged


def test_wait_is_bounded_and_unknown_parameters_are_named(server: Served) -> None:
    with server.client() as http:
        instance_id = started(http, "sleeper")
        body = problem(http.get(f"/instances/{instance_id}", params={"wait": 61}), 422)
        assert body["path"] == "wait"
        assert "60" in body["detail"]
        assert problem(http.get(f"/instances/{instance_id}", params={"wait": -1}), 422)
        # one rule for a start's wait and a show's: the same bound, status and body
        for bad in (61, -1, "nan", "inf"):
            shown = problem(http.get(f"/instances/{instance_id}", params={"wait": bad}), 422)
            begun = http.post("/workflows/greeter/instances", json={}, params={"wait": bad})
            assert problem(begun, 422) == shown, bad
            assert shown["type"] == "invalid-parameter"
        assert http.post("/workflows/greeter/instances?wait=60", json={}).status_code == 201
        body = problem(http.get(f"/instances/{instance_id}?timeline"), 422)
        assert body["type"] == "unknown-parameter"
        assert body["path"] == "timeline"
        assert "'timeline'" in body["detail"]
        assert problem(http.get("/instances", params={"workflw": "x"}), 422)["path"] == "workflw"
        cancel = http.post(f"/instances/{instance_id}/cancel", params={"force": "1"})
        assert problem(cancel, 422)["path"] == "force"
        start = http.post("/workflows/greeter/instances", json={}, params={"wiat": 5})
        assert problem(start, 422)["path"] == "wiat"
        assert problem(http.get("/instances/nope", params={"wait": 1}), 404)
        listed = http.get("/instances", params={"workflow": "greeter"}).json()
        assert len(listed["instances"]) == 1  # only the start with wait=60: no refused one started


def test_a_batch_starts_every_input_in_order(server: Served) -> None:
    inputs = [{"n": i} for i in range(5)]
    with server.client() as http:
        response = http.post("/workflows/greeter/instances:batch", json={"inputs": inputs})
        assert response.status_code == 201, response.text
        instances = response.json()["instances"]
        assert [set(i) for i in instances] == [{"id", "status"}] * 5
        for instance, given in zip(instances, inputs, strict=True):
            ended = http.get(f"/instances/{instance['id']}", params={"wait": 30}).json()
            assert ended["input"] == given
            assert ended["status"] == "completed"
            assert ended["output"] == {**given, "greeting": "Hello"}


def test_a_bad_batch_is_named_and_starts_nothing(server: Served) -> None:
    batch = "/workflows/greeter/instances:batch"
    with server.client() as http:
        body = problem(http.post(batch, json={"inputs": [{}, [1], {}]}), 400)
        assert body["path"] == "inputs[1]"
        assert "inputs[1]" in body["detail"]
        deep: Any = {}
        for _ in range(200):
            deep = {"d": deep}
        body = problem(http.post(batch, json={"inputs": [{}, {}, deep]}), 413)
        assert "inputs[2]" in body["detail"]
        too_many = problem(http.post(batch, json={"inputs": [{}] * 101}), 400)
        assert "100" in too_many["detail"]
        assert problem(http.post(batch, json={"inputs": []}), 400)["path"] == "inputs"
        assert problem(http.post(batch, json=[{}]), 400)["path"] == "inputs"
        assert problem(http.post(batch, json={"inputs": [{}], "x": 1}), 400)["path"] == "x"
        assert problem(http.post("/workflows/nope/instances:batch", json={"inputs": [{}]}), 404)
        listed = http.get("/instances", params={"workflow": "greeter"}).json()
        assert listed["instances"] == []


def test_shutdown_answers_an_open_long_poll_instead_of_waiting_for_it(server: Served) -> None:
    with server.client() as http:
        instance_id = started(http, "sleeper")
    answers: list[httpx.Response] = []
    asking = threading.Event()

    def poll() -> None:
        with server.client(timeout=90) as http:
            asking.set()
            answers.append(http.get(f"/instances/{instance_id}", params={"wait": 60}))

    poller = threading.Thread(target=poll)
    poller.start()
    asking.wait()
    with server.client() as http:  # the poll is open once the server holds a connection for it
        http.get("/healthz")
    threading.Event().wait(0.5)  # let the long poll's request reach the server
    assert stop(server.process) == 0
    poller.join()
    assert answers[0].status_code == 200, answers[0].text
    assert answers[0].json()["status"] in ("running", "waiting")  # answered, not cut off
    assert "graceful shutdown exceeded" not in server.output()


async def test_a_client_that_goes_away_leaves_no_wait_behind(pg_url: str, tmp_path: Path) -> None:
    # in process (uvicorn on 127.0.0.1), to see the runtime's open waits
    app = create_app(Settings(database_url=pg_url, home=tmp_path), open_system)
    async with (
        serve_app(app) as url,
        httpx.AsyncClient(base_url=url, headers=home_auth(tmp_path), timeout=30) as http,
    ):
        assert (await http.post("/workflows", content=SLEEPER, headers=YAML)).status_code == 201
        instance_id = (await http.post("/workflows/sleeper/instances", json={})).json()["id"]
        runtime = app.state.services.runtime
        poll = asyncio.create_task(http.get(f"/instances/{instance_id}", params={"wait": 60}))
        async with asyncio.timeout(20):
            while True:
                if runtime.waiting_for_ends == 1:
                    break
                await asyncio.sleep(0.02)
        poll.cancel()  # the client closes its connection
        async with asyncio.timeout(20):
            while True:
                if runtime.waiting_for_ends == 0:
                    break
                await asyncio.sleep(0.02)
