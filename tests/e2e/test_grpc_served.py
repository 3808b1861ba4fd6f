"""gRPC calls end to end: 0.8 ``rpc`` functions and DSL 1.0 ``call: grpc``.

A real gRPC server on 127.0.0.1 (tests/support/grpc_server.py) answers a real
``tideflow serve`` whose ``--workflows`` folder holds the proto files, a
SonataFlow-style ``application.properties`` naming the server, and both
definitions; the same 0.8 definition also runs under ``tideflow run
--dialect sonataflow``. A definition sent over HTTP may not name a local
proto file, and a folder definition whose proto lacks the method is not
deployed (the log says why).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.grpc_server import PROTO_DIR, GrpcServer, start_grpc_server
from tests.support.served import LOCAL, auth_for, copied_database, serve_process, start_and_wait

GREETING_08 = """
id: greeting
version: '1.0'
specVersion: '0.8'
name: Greeting over gRPC
start: Greet
functions:
  - name: sayHello
    type: rpc
    operation: greeter.proto#Greeter#SayHello
errors:
  - name: unknown
    code: NOT_FOUND
states:
  - name: Greet
    type: operation
    actions:
      - functionRef:
          refName: sayHello
          arguments:
            name: ${ .name }
        actionDataFilter:
          results: ${ .message }
          toStateData: ${ .greeting }
    onErrors:
      - errorRef: unknown
        transition: Unknown
    end: true
  - name: Unknown
    type: inject
    data:
      greeting: nobody here
    end: true
"""

GREETING_10 = """
document: {dsl: '1.0.3', namespace: test, name: greetings, version: '1.0.0'}
do:
  - greet:
      call: grpc
      with:
        proto: {endpoint: greeter.proto}
        service: {name: greeting.Greeter, host: 127.0.0.1, port: PORT}
        method: ListGreetings
        arguments: {name: '${ .name }', times: 2}
      output:
        as: '${ map(.message) }'
"""

WRONG_METHOD = GREETING_08.replace("id: greeting\n", "id: wrong\n").replace("#SayHello", "#Wave")


@pytest.fixture(scope="module")
def grpc_server() -> Iterator[GrpcServer]:
    with start_grpc_server() as running:
        yield running


@pytest.fixture
def folder(tmp_path: Path, grpc_server: GrpcServer) -> Path:
    found = tmp_path / "resources"
    found.mkdir()
    for name in ("greeter.proto", "common.proto"):
        shutil.copy(PROTO_DIR / name, found / name)
    (found / "application.properties").write_text(
        f"quarkus.grpc.clients.Greeter.host=127.0.0.1\nquarkus.grpc.clients.Greeter.port="
        f"{grpc_server.port}\n"
    )
    (found / "greeting.sw.yaml").write_text(GREETING_08)
    (found / "greetings.yaml").write_text(GREETING_10.replace("PORT", str(grpc_server.port)))
    (found / "wrong.sw.yaml").write_text(WRONG_METHOD)
    return found


@pytest.fixture
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    name = f"t_{_db_names[0]}_grpc_served"
    async with copied_database(pg_server_url, pg_template, name) as url:
        yield url


def test_a_server_runs_rpc_functions_and_grpc_calls(
    database: str, folder: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with serve_process(
        database, home, "--workflows", str(folder), "--dialect", "sonataflow", *LOCAL
    ) as server:
        greeted = start_and_wait(server.url, "greeting", {"name": "Ada"})
        assert greeted["status"] == "completed", greeted
        assert greeted["output"]["greeting"] == "Hello Ada"
        unknown = start_and_wait(server.url, "greeting", {"name": "nobody"})
        assert unknown["output"]["greeting"] == "nobody here"  # NOT_FOUND, caught by its code
        streamed = start_and_wait(server.url, "test.greetings", {"name": "Bo"})
        assert streamed["status"] == "completed", streamed
        assert streamed["output"] == ["Hello Bo #1", "Hello Bo #2"]
        missing = httpx.get(f"{server.url}/workflows/wrong", headers=auth_for(server.url))
        assert missing.status_code == 404
        sent = httpx.post(
            f"{server.url}/workflows",
            content=GREETING_08.replace("id: greeting", "id: sent"),
            headers={"content-type": "application/yaml", **auth_for(server.url)},
            timeout=30,
        )
        log = server.log.read_text()
    assert "has no method 'Wave'" in log  # the folder's definition that was not deployed
    assert sent.status_code == 422, sent.text
    [error] = sent.json()["errors"]
    assert error["path"] == "functions[0].operation"
    assert "local proto file" in error["message"]


async def test_tideflow_run_calls_the_server_named_by_the_properties(folder: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tideflow.cli", "run", str(folder / "greeting.sw.yaml"),
        "--input", json.dumps({"name": "Cy"}), "--dialect", "sonataflow",
        env={**os.environ}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert json.loads(out)["greeting"] == "Hello Cy"
