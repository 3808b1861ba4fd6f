"""DSL 1.0 ``run: script`` on a real ``tideflow serve``: refused unless the operator allows scripts.

Without ``--allow-scripts`` a definition with a Python script is a 422 at the
script's path (code of any kind would run with the server's rights); with it,
the script runs in its own bounded process and the instance completes with
its output, a JavaScript one (under the machine's Node.js) as well.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.served import auth_for, copied_database, serve_process

YAML = {"content-type": "application/yaml"}
SCRIPTED = """
document: {dsl: '1.0.3', namespace: test, name: scripted, version: '1.0.0'}
do:
  - compute:
      run:
        script:
          language: python
          arguments: ['${ .name }']
          code: |
            import sys
            print("hello", sys.argv[1])
"""
JS = """
document: {dsl: '1.0.3', namespace: test, name: js, version: '1.0.0'}
do:
  - compute:
      run:
        script:
          language: js
          arguments: ['${ .name }']
          code: |
            console.log("hi", process.argv[2])
"""


@pytest.fixture
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    name = f"t_{_db_names[0]}_scripts_served"
    async with copied_database(pg_server_url, pg_template, name) as url:
        yield url


def deploy(url: str, text: str) -> httpx.Response:
    return httpx.post(
        f"{url}/workflows", content=text, headers={**YAML, **auth_for(url)}, timeout=30
    )


def error_paths(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    return [e["path"] for e in response.json()["errors"]]


def test_a_server_refuses_scripts_unless_allowed_then_runs_them(
    database: str, tmp_path: Path
) -> None:
    with serve_process(database, tmp_path) as server:
        refused = deploy(server.url, SCRIPTED)
        assert error_paths(refused) == ["do[0].compute.run.script"]
        assert "--allow-scripts" in refused.json()["errors"][0]["message"]
        assert error_paths(deploy(server.url, JS)) == ["do[0].compute.run.script"]
    with serve_process(database, tmp_path, "--allow-scripts") as server:
        assert deploy(server.url, SCRIPTED).status_code == 201
        assert deploy(server.url, JS).status_code == 201
        done = {
            name: httpx.post(
                f"{server.url}/workflows/test.{name}/instances",
                json={"name": "ada"},
                params={"wait": 60},
                timeout=90,
                headers=auth_for(server.url),
            )
            for name in ("scripted", "js")
        }
    for answer in done.values():
        assert answer.status_code == 201, answer.text
        assert answer.json()["status"] == "completed", answer.text
    assert done["scripted"].json()["output"] == "hello ada\n"
    assert done["js"].json()["output"] == "hi ada\n"
