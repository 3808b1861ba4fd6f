"""Spec coverage through a real server: a version deployed with ``?dialect=sonataflow``.

The issue lets the API's deploy take the dialect as a query parameter; the
instances of that version must then run with SonataFlow's leniencies
(docs/spec-coverage.md, S2). A real server (uvicorn on 127.0.0.1 with the
app's own lifespan) on a fresh PostgreSQL database from ``pg_url``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.auth import home_auth
from tideflow.api.app import create_app
from tideflow.api.testserver import serve_app
from tideflow.serve import open_system
from tideflow.settings import Settings

YAML = {"content-type": "application/yaml"}


def definition(workflow_id: str) -> str:
    return f"""\
id: {workflow_id}
version: "1"
specVersion: "0.8"
functions:
  - name: echo
    type: expression
    operation: "{{got: $who}}"
states:
  - name: Each
    type: foreach
    inputCollection: ${{ [.name] }}
    iterationParam: who
    outputCollection: ${{ .got }}
    actions:
      - functionRef: echo
        actionDataFilter: {{results: .got}}
    end: true
"""


@pytest.fixture
async def client(pg_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=pg_url, home=tmp_path), open_system)
    async with (
        serve_app(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers=home_auth(tmp_path)) as http,
    ):
        yield http


async def _run(client: httpx.AsyncClient, workflow_id: str) -> object:
    started = await client.post(
        f"/workflows/{workflow_id}/instances", json={"name": "Ada"}, params={"wait": 20}
    )
    assert started.status_code == 201, started.text
    body = started.json()
    assert body["status"] == "completed", body
    return body["output"]


async def test_a_version_deployed_with_the_dialect_runs_with_its_leniencies(
    client: httpx.AsyncClient,
) -> None:
    plain = await client.post("/workflows", content=definition("plain"), headers=YAML)
    lenient = await client.post(
        "/workflows",
        content=definition("lenient"),
        headers=YAML,
        params={"dialect": "sonataflow"},
    )
    assert (plain.status_code, lenient.status_code) == (201, 201), plain.text + lenient.text
    # SonataFlow's foreach element is the jq variable $who; 0.8's is .who in the data
    assert await _run(client, "plain") == {"name": "Ada", "got": []}
    assert await _run(client, "lenient") == {"name": "Ada", "got": ["Ada"]}
