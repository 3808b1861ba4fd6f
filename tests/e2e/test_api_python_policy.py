"""A real ``tideflow serve`` imports only the ``python:`` modules its policy allows.

Definitions sent over HTTP may name modules allowed with ``--allow-python``
(or ``TIDEFLOW_PYTHON_MODULES``) and modules in the ``--workflows`` folders;
anything else (``python:subprocess:run``) is a 422 at
``functions[i].operation``. A definition stored before the policy changed
fails its call with ``FORBIDDEN`` and imports nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.served import (
    Served,
    auth_for,
    copied_database,
    serve_process,
    start_and_wait,
    stop,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "workflows"
YAML = {"content-type": "application/yaml"}


def definition(workflow_id: str, operation: str, arguments: str = "{}") -> str:
    """One operation state calling one ``python:`` function, its result under ``.result``."""
    return f"""\
id: {workflow_id}
version: "1"
specVersion: "0.8"
start: Call
functions:
  - name: fn
    type: custom
    operation: {operation}
states:
  - name: Call
    type: operation
    actions:
      - functionRef:
          refName: fn
          arguments: {arguments}
        actionDataFilter:
          toStateData: ${{ .result }}
    end: true
"""


SHELL = definition("shell", "python:subprocess:run", '{"echo": 1, "pwned": 2}')
COPY = definition("copy", "python:copy:deepcopy", '{"a": 1}')
SQUARE = definition("square-over-http", "python:example_functions:square", '{"n": 7}')
HELPER = """\
from pathlib import Path

Path(__file__).with_name("imported.txt").write_text("imported")


def greet(args):
    return "hello " + args["name"]
"""


@pytest.fixture(scope="module")
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    name = f"t_{_db_names[0]}_python_policy"
    async with copied_database(pg_server_url, pg_template, name) as url:
        yield url


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The examples folder deployed on start, and ``copy`` allowed by name."""
    home = tmp_path_factory.mktemp("serve")
    args = ["--workflows", str(EXAMPLES), "--allow-python", "copy"]
    with serve_process(database, home, *args) as running:
        yield running


def start(url: str, workflow_id: str, data: Any) -> dict[str, Any]:
    """Start an instance and wait for its end."""
    return start_and_wait(url, workflow_id, data)


def deploy(url: str, text: str) -> httpx.Response:
    return httpx.post(
        f"{url}/workflows", content=text, headers={**YAML, **auth_for(url)}, timeout=30
    )


def test_an_unlisted_module_over_http_is_a_422_at_the_operation(server: Served) -> None:
    response = deploy(server.url, SHELL)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    errors = response.json()["errors"]
    assert errors == [
        {
            "path": "functions[0].operation",
            "message": "python module 'subprocess' is not allowed on this server; "
            "start tideflow serve with --allow-python subprocess "
            "(or TIDEFLOW_PYTHON_MODULES=subprocess)",
            "severity": "error",
        }
    ]
    assert (
        httpx.get(f"{server.url}/workflows/shell", headers=auth_for(server.url)).status_code == 404
    )


def test_examples_deployed_from_the_folder_still_run(server: Served) -> None:
    listed = {
        w["id"]
        for w in httpx.get(f"{server.url}/workflows", headers=auth_for(server.url)).json()[
            "workflows"
        ]
    }
    assert {"foreach-squares", "order-checkout"} <= listed
    data = json.loads((EXAMPLES / "foreach-squares.input.json").read_text())
    done = start(server.url, "foreach-squares", data)
    assert done["status"] == "completed", done
    assert done["output"] == json.loads((EXAMPLES / "foreach-squares.output.json").read_text())


def test_a_module_in_a_workflows_folder_may_be_named_over_http(server: Served) -> None:
    assert deploy(server.url, SQUARE).status_code == 201
    done = start(server.url, "square-over-http", {})
    assert done["status"] == "completed", done
    assert done["output"] == {"result": 49}


def test_an_allowed_module_goes_through(server: Served) -> None:
    response = deploy(server.url, COPY)
    assert response.status_code == 201, response.text
    done = start(server.url, "copy", {})
    assert done["status"] == "completed", done
    assert done["output"] == {"result": {"a": 1}}
    private = deploy(server.url, definition("private", "python:copy:_deepcopy_dict"))
    assert private.status_code == 422
    assert "is private" in private.json()["errors"][0]["message"]


def wait_ended(url: str, instance_id: str, seconds: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        shown: dict[str, Any] = httpx.get(
            f"{url}/instances/{instance_id}", headers=auth_for(url)
        ).json()
        if shown["status"] in {"completed", "failed"} or time.monotonic() > deadline:
            return shown
        time.sleep(0.05)


def test_a_folder_deploy_checks_without_importing_and_calls_check_again(
    database: str, tmp_path: Path, server: Served
) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "tfpol_greeter.py").write_text(HELPER)
    (folder / "local.yaml").write_text(
        definition("local-greet", "python:tfpol_greeter:greet", '{"name": "Ada"}')
    )
    (folder / "sneaky.yaml").write_text(definition("sneaky", "python:subprocess:run"))
    marker = folder / "imported.txt"
    assert deploy(server.url, COPY).status_code in (200, 201)  # allowed there: stored
    with serve_process(database, tmp_path, "--workflows", str(folder), token=server.token) as first:
        listed = {
            w["id"]
            for w in httpx.get(f"{first.url}/workflows", headers=auth_for(first.url)).json()[
                "workflows"
            ]
        }
        assert "local-greet" in listed
        assert "sneaky" not in listed
        assert not marker.exists()  # deciding imported nothing
        assert start(first.url, "local-greet", {})["output"] == {"result": "hello Ada"}
        assert marker.exists()
        assert stop(first.process) == 0
        log = first.output()
    assert "not deployed: " in log
    assert "functions[0].operation: python module 'subprocess' is not allowed" in log
    marker.unlink()
    # "copy" (allowed by --allow-python copy on the module's server) and "local-greet"
    # are stored; a server allowing neither refuses their calls and imports nothing.
    with serve_process(database, tmp_path, token=server.token) as second:
        for workflow_id in ("copy", "local-greet"):
            started = httpx.post(
                f"{second.url}/workflows/{workflow_id}/instances",
                json={},
                headers=auth_for(second.url),
            )
            assert started.status_code == 201, started.text
            shown = wait_ended(second.url, started.json()["id"])
            assert shown["status"] == "failed", shown
            assert shown["error"]["code"] == "FORBIDDEN", shown
            assert "is not allowed on this server" in shown["error"]["message"]
        assert deploy(second.url, COPY).status_code == 422
    assert not marker.exists()
