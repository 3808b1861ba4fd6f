"""Deploys resolve references at the edge: a slow reference server stalls nothing else,
and instances run the document that was validated, whatever the server answers later.

A real server (uvicorn on 127.0.0.1, the app's own lifespan composing every
service) on a fresh PostgreSQL database; the reference server is a stand-in
on 127.0.0.1 that holds a request until the test lets it go.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.auth import home_auth
from tests.support.refserver import RefServer, ref_server
from tideflow.api.app import create_app
from tideflow.api.testserver import serve_app
from tideflow.serve import open_system
from tideflow.settings import Settings

YAML = {"content-type": "application/yaml"}
EVENT = {"specversion": "1.0", "id": "e-1", "source": "/tests", "type": "com.example.ping"}


def functions(operation: str) -> str:
    return json.dumps(
        {"functions": [{"name": "calc", "type": "expression", "operation": operation}]}
    )


def definition(functions_url: str) -> str:
    return f"""\
id: calc
version: "1"
specVersion: "0.8"
start: Calc
functions: {functions_url}
states:
  - name: Calc
    type: operation
    actions:
      - functionRef: calc
        actionDataFilter:
          toStateData: .result
    end: true
"""


@pytest.fixture
async def client(pg_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        Settings(database_url=pg_url, home=tmp_path, egress_allow=("127.0.0.1",)), open_system
    )
    async with (
        serve_app(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers=home_auth(tmp_path)) as http,
    ):
        yield http


@pytest.fixture
async def refs() -> AsyncIterator[RefServer]:
    async with ref_server() as server:
        yield server


async def test_a_slow_reference_does_not_stall_ingestion(
    client: httpx.AsyncClient, refs: RefServer
) -> None:
    refs.documents["/functions.json"] = functions(".n + 1")
    release = refs.held["/functions.json"] = asyncio.Event()
    deploy = asyncio.create_task(
        client.post("/workflows", content=definition(f"{refs.url}/functions.json"), headers=YAML)
    )
    await asyncio.wait_for(refs.asked.wait(), 20)  # the deploy is fetching its reference
    async with httpx.AsyncClient(
        base_url=str(client.base_url), timeout=30, headers=dict(client.headers)
    ) as other:
        acked = await other.post(
            "/events", json=EVENT, headers={"content-type": "application/cloudevents+json"}
        )
        listed = await other.get("/workflows")
    assert acked.status_code == 202, acked.text
    assert listed.status_code == 200
    # answered while the reference server still held the deploy's request
    assert not release.is_set()
    assert not deploy.done()
    release.set()
    deployed = await deploy
    assert deployed.status_code == 201, deployed.text


async def test_instances_run_what_was_validated_not_what_the_server_answers_now(
    client: httpx.AsyncClient, refs: RefServer
) -> None:
    refs.documents["/functions.json"] = functions(".n + 1")
    deployed = await client.post(
        "/workflows", content=definition(f"{refs.url}/functions.json"), headers=YAML
    )
    assert deployed.status_code == 201, deployed.text
    refs.documents["/functions.json"] = functions(".n + 100")  # changed after the deploy
    started = await client.post("/workflows/calc/instances", json={"n": 1}, params={"wait": 20})
    assert started.status_code == 201, started.text
    body = started.json()
    assert body["status"] == "completed", body
    assert body["output"]["result"] == 2
    assert refs.requests == ["/functions.json"]  # fetched once, at the deploy
    source = await client.get("/workflows/calc/versions/1")
    assert f"functions: {refs.url}/functions.json" in source.text  # the source as submitted
