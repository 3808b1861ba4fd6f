"""DSL 1.0 ``run: script`` on a real ``tideflow serve``: refused unless the operator allows scripts.

Without ``--allow-scripts`` a definition with a Python script is a 422 at the
script's path (code of any kind would run with the server's rights); with it,
the script runs in its own bounded process and the instance completes with
its output. JavaScript is refused at the language's path either way.
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
JS = SCRIPTED.replace("name: scripted", "name: js").replace("language: python", "language: js")


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
        assert error_paths(deploy(server.url, JS)) == ["do[0].compute.run.script.language"]
    with serve_process(database, tmp_path, "--allow-scripts") as server:
        assert deploy(server.url, SCRIPTED).status_code == 201
        assert error_paths(deploy(server.url, JS)) == ["do[0].compute.run.script.language"]
        done = httpx.post(
            f"{server.url}/workflows/test.scripted/instances",
            json={"name": "ada"},
            params={"wait": 60},
            timeout=90,
            headers=auth_for(server.url),
        )
    assert done.status_code == 201, done.text
    assert done.json()["status"] == "completed", done.text
    assert done.json()["output"] == "hello ada\n"
