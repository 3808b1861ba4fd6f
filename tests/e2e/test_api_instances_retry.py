"""``POST /instances/{id}/retry`` on a real server: a failed instance runs again from its
failed step, replaying its journal -- the step before it is not called again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.served import LOCAL, Served, serve_process
from tests.support.services import Services, start_services

pytestmark = pytest.mark.timeout(180)  # a server started for the test, on a shared machine


def _definition(doc_url: str) -> str:
    return f"""\
id: retry-from-failed-step
version: '1.0'
specVersion: '0.8'
start: First
functions:
  - name: flaky
    operation: {doc_url}#flaky
states:
  - name: First
    type: operation
    actions:
      - functionRef: {{refName: flaky, arguments: {{key: first, failures: 0}}}}
        actionDataFilter: {{toStateData: '${{ .first }}'}}
    transition: Second
  - name: Second
    type: operation
    actions:
      - functionRef: {{refName: flaky, arguments: {{key: second, failures: 2}}}}
        actionDataFilter: {{toStateData: '${{ .second }}'}}
    end: true
"""


@pytest.fixture
def services() -> Iterator[Services]:
    with start_services() as running:
        yield running


@pytest.fixture
def server(pg_url: str, tmp_path: Path) -> Iterator[Served]:
    with serve_process(pg_url, tmp_path, *LOCAL) as running:
        yield running


def _wait(http: httpx.Client, instance_id: str) -> dict[str, object]:
    response = http.get(f"/instances/{instance_id}", params={"wait": 30})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_a_failed_instance_retries_from_its_failed_step(
    server: Served, services: Services
) -> None:
    with server.client() as http:
        deployed = http.post(
            "/workflows",
            content=_definition(services.pets_doc_url),
            headers={"content-type": "application/yaml"},
        )
        assert deployed.status_code == 201, deployed.text
        started = http.post("/workflows/retry-from-failed-step/instances", json={})
        instance_id = started.json()["id"]
        failed = _wait(http, instance_id)
        assert failed["status"] == "failed", failed
        assert failed["error"]["state"] == "Second"  # type: ignore[index]

        again = http.post(f"/instances/{instance_id}/retry")
        assert again.status_code == 200, again.text
        assert again.json()["status"] == "running"
        assert _wait(http, instance_id)["status"] == "failed"  # the 2nd call fails too

        http.post(f"/instances/{instance_id}/retry").raise_for_status()
        done = _wait(http, instance_id)
        assert done["status"] == "completed", done
        assert done["output"] == {"first": {"attempts": 1}, "second": {"attempts": 3}}
        assert done["error"] is None
        assert services.state.calls == {"first": 1, "second": 3}  # First never ran again

        refused = http.post(f"/instances/{instance_id}/retry")
        assert refused.status_code == 409
        assert "not failed" in refused.json()["detail"]
        assert http.post("/instances/no-such-instance/retry").status_code == 404
