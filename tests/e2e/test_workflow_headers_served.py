"""``$WORKFLOW.headers``: the start request's headers, through ``tideflow serve``.

SonataFlow exposes the headers of the HTTP request that started an instance as
``$WORKFLOW.headers`` (docs/spec-coverage.md, S4). An instance started with
``POST /workflows/{id}/instances`` (or its ``:batch``) sees them, names
lower-cased, a repeated header's values concatenated, credentials left out; an
instance started by an event sees ``{}``. Both dialects.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.served import serve_process

ECHO = """\
id: {id}
version: "1"
specVersion: "0.8"
start: Echo
states:
  - name: Echo
    type: operation
    actions: []
    stateDataFilter:
      output: '${{ {{source: $WORKFLOW.headers["x-request-source"], headers: $WORKFLOW.headers}} }}'
    end: true
"""

ON_EVENT = """\
id: headers-on-event
version: "1"
specVersion: "0.8"
start: Wait
events:
  - name: go
    type: headers.go
    source: /tests
    kind: consumed
states:
  - name: Wait
    type: event
    onEvents:
      - eventRefs: [go]
    stateDataFilter:
      output: "${ {headers: $WORKFLOW.headers} }"
    end: true
"""

YAML = {"content-type": "application/yaml"}
SENT = [
    ("X-Request-Source", "billing"),
    ("X-Multi", "a"),
    ("X-Multi", "b"),
    ("Cookie", "session=s3cr3t"),
    ("X-CSRF-Token", "c5rf"),
    ("X-Api-Key", "k3y"),
    ("X-Client-Secret", "sh"),
    ("Proxy-Authorization", "Basic cHJveHk="),
]


def _ended(http: httpx.Client, instance_id: str) -> dict[str, Any]:
    """Poll the instance until it ended (the server's own progress: no clock)."""
    deadline = time.monotonic() + 30
    while True:
        shown: dict[str, Any] = http.get(f"/instances/{instance_id}").json()
        if shown["status"] not in ("running", "waiting"):
            return shown
        assert time.monotonic() < deadline, shown
        time.sleep(0.05)


def _check(output: dict[str, Any]) -> None:
    assert output["source"] == "billing"
    headers = output["headers"]
    assert headers["x-request-source"] == "billing"
    assert headers["x-multi"] == "ab"  # SonataFlow joins a repeated header's values
    assert "authorization" not in headers  # the client's bearer token
    for name in ("cookie", "x-csrf-token", "x-api-key", "x-client-secret", "proxy-authorization"):
        assert name not in headers, name
    assert headers["content-type"] == "application/json"


@pytest.mark.timeout(120)
def test_workflow_headers_are_the_start_request_ones(pg_url: str, tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    with serve_process(pg_url, tmp_path / "home") as served, served.client() as http:
        assert "authorization" in {k.lower() for k in http.headers}
        for workflow_id, params in (("echo-sf", {"dialect": "sonataflow"}), ("echo-strict", {})):
            body = ECHO.format(id=workflow_id)
            deployed = http.post("/workflows", content=body, headers=YAML, params=params)
            assert deployed.status_code == 201, deployed.text
            # The fast path (?wait) and the batch start.
            started = http.post(
                f"/workflows/{workflow_id}/instances",
                params={"wait": "20"},
                json={},
                headers=httpx.Headers(SENT),
            )
            assert started.status_code == 201, started.text
            assert started.json()["status"] == "completed", started.json()
            _check(started.json()["output"])
            batch = http.post(
                f"/workflows/{workflow_id}/instances:batch",
                json={"inputs": [{}]},
                headers=httpx.Headers(SENT),
            )
            assert batch.status_code == 201, batch.text
            (one,) = batch.json()["instances"]
            _check(_ended(http, one["id"])["output"])
            # Not in the status API.
            shown = http.get(f"/instances/{one['id']}").json()
            assert "headers" not in shown
            assert "billing" not in str(shown["input"])

        assert http.post("/workflows", content=ON_EVENT, headers=YAML).status_code == 201
        # Binary mode: the event's attributes and a header of the /events request are
        # not the started instance's headers.
        binary = {"ce-specversion": "1.0", "ce-id": "go-1", "ce-source": "/tests"}
        binary |= {"ce-type": "headers.go", "x-request-source": "bus"}
        posted = http.post("/events", json={"n": 1}, headers=binary)
        assert posted.status_code in (200, 201, 202), posted.text
        deadline = time.monotonic() + 30
        while not (found := http.get("/instances", params={"workflow": "headers-on-event"}).json())[
            "instances"
        ]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        ended = _ended(http, found["instances"][0]["id"])
        assert ended["status"] == "completed", ended
        assert ended["output"] == {"headers": {}}
