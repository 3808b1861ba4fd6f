"""The default catalog on a real ``tideflow serve``: a ``--workflows`` folder's ``catalog/``.

A definition deployed from the folder calls ``greet:1.0.0@default`` and its
instances run the cataloged function; the same definition sent over HTTP
names no folder, so its catalog call is a 422 at the call's path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.integration.test_default_catalog import GREET
from tests.support.served import auth_for, copied_database, serve_process

CALLER = """
document: {dsl: '1.0.3', namespace: test, name: cataloged, version: '1.0.0'}
do:
  - hi:
      call: greet:1.0.0@default
      with: {name: '${ .who }'}
"""


@pytest.fixture
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    name = f"t_{_db_names[0]}_catalog_served"
    async with copied_database(pg_server_url, pg_template, name) as url:
        yield url


def test_a_folder_definition_runs_its_default_catalog_function(
    database: str, tmp_path: Path
) -> None:
    folder = tmp_path / "workflows"
    (folder / "catalog" / "functions" / "greet" / "1.0.0").mkdir(parents=True)
    (folder / "catalog" / "functions" / "greet" / "1.0.0" / "function.yaml").write_text(GREET)
    (folder / "cataloged.yaml").write_text(CALLER)
    home = tmp_path / "home"
    home.mkdir()
    with serve_process(database, home, "--workflows", str(folder)) as server:
        headers = auth_for(server.url)
        done = httpx.post(
            f"{server.url}/workflows/test.cataloged/instances",
            json={"who": "ada"},
            params={"wait": 60},
            timeout=90,
            headers=headers,
        )
        over_http = httpx.post(
            f"{server.url}/workflows",
            content=CALLER.replace("name: cataloged", "name: sent"),
            headers={**headers, "content-type": "application/yaml"},
            timeout=30,
        )
    assert done.status_code == 201, done.text
    assert (done.json()["status"], done.json()["output"]) == (
        "completed",
        {"greeting": "hello ada"},
    )
    assert over_http.status_code == 422, over_http.text
    assert [e["path"] for e in over_http.json()["errors"]] == ["do[0].hi.call"]
