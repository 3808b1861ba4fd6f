"""The egress policy through a real ``tideflow serve``.

One server allows one local service (``--allow-egress 127.0.0.1:PORT``) and
not another on the same machine: a workflow sent over HTTP calling the
allowed one completes; calling the other fails its instance with
``EGRESS_DENIED`` (that service never sees a request); a function whose
OpenAPI document is a local file is refused at deploy, quoting no file; a
reference redirected to the refused service is refused at that hop; a
subscription whose sink is the refused service dead-letters its events with
the policy's reason.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.support.served import Served, auth_for, copied_database, serve_process, start_and_wait

YAML = {"content-type": "application/yaml"}


class Service:
    """A local HTTP service answering ``{"ok": true}``, or a redirect for ``/hop``."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.redirect_to = ""
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                self._answer()

            def _answer(self) -> None:
                service.paths.append(self.path)
                if self.path == "/hop":
                    self.send_response(302)
                    self.send_header("location", service.redirect_to)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"ok": True}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def services() -> Iterator[tuple[Service, Service]]:
    allowed, refused = Service(), Service()
    threads = [
        threading.Thread(target=s.server.serve_forever, daemon=True) for s in (allowed, refused)
    ]
    for thread in threads:
        thread.start()
    try:
        yield allowed, refused
    finally:
        for service in (allowed, refused):
            service.server.shutdown()
            service.server.server_close()


@pytest.fixture(scope="module")
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    name = f"t_{_db_names[0]}_egress"
    async with copied_database(pg_server_url, pg_template, name) as url:
        yield url


@pytest.fixture(scope="module")
def server(
    database: str, services: tuple[Service, Service], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    allowed, _ = services
    home = tmp_path_factory.mktemp("serve")
    with serve_process(database, home, "--allow-egress", f"127.0.0.1:{allowed.port}") as running:
        yield running


def calling(workflow_id: str, operation: str, type_: str = "custom") -> str:
    return f"""\
id: {workflow_id}
version: "1"
specVersion: "0.8"
start: Call
functions:
  - name: fn
    type: {type_}
    operation: "{operation}"
states:
  - name: Call
    type: operation
    actions:
      - functionRef: fn
    end: true
"""


def deploy(url: str, text: str) -> httpx.Response:
    return httpx.post(
        f"{url}/workflows", content=text, headers={**YAML, **auth_for(url)}, timeout=30
    )


def run(url: str, workflow_id: str) -> dict[str, Any]:
    return start_and_wait(url, workflow_id, {})


def test_a_call_to_an_allowed_local_service_completes(
    server: Served, services: tuple[Service, Service]
) -> None:
    allowed, _ = services
    assert deploy(server.url, calling("egress-ok", f"rest:GET:{allowed.url}/x")).status_code == 201
    done = run(server.url, "egress-ok")
    assert done["status"] == "completed", done
    assert done["output"] == {"ok": True}


def test_a_call_to_a_local_service_not_allowed_fails_with_the_policy_code(
    server: Served, services: tuple[Service, Service]
) -> None:
    _, refused = services
    for workflow_id, url in (
        ("egress-loopback", f"{refused.url}/x"),
        ("egress-localhost", f"http://localhost:{refused.port}/x"),
        ("egress-metadata", "http://169.254.169.254/latest/meta-data/"),
    ):
        assert deploy(server.url, calling(workflow_id, f"rest:GET:{url}")).status_code == 201
        done = run(server.url, workflow_id)
        assert done["status"] == "failed", done
        assert done["error"]["code"] == "EGRESS_DENIED", done
        assert "egress policy" in done["error"]["message"]
        assert "--allow-egress" in done["error"]["message"]
    assert refused.paths == []


@pytest.mark.parametrize("document", ["file:///etc/passwd", "/etc/passwd", "../../etc/passwd"])
def test_a_local_openapi_document_is_refused_at_deploy_unread(
    server: Served, document: str
) -> None:
    response = deploy(server.url, calling("egress-file", f"{document}#getUser", type_="rest"))
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["path"] == "functions[0].operation"
    assert "local OpenAPI document" in error["message"]
    assert "root:" not in response.text  # nothing of the file


def test_a_local_openapi_document_is_refused_at_call_unread(server: Served) -> None:
    # DSL 1.0: the document's endpoint is known only when the call runs
    for name, endpoint in (("egress-passwd", "/etc/passwd"), ("egress-none", "/etc/nothing")):
        text = f"""\
document: {{dsl: 1.0.0, namespace: test, name: {name}, version: 1.0.0}}
do:
  - get:
      call: openapi
      with:
        document: {{endpoint: "{endpoint}"}}
        operationId: getUser
"""
        assert deploy(server.url, text).status_code == 201
        done = run(server.url, f"test.{name}")
        assert done["status"] == "failed", done
        error = done["error"]
        assert error["details"]["type"].endswith("/errors/authorization"), done
        assert error["details"]["detail"].startswith("EGRESS_DENIED: the egress policy"), done
        assert "root:" not in json.dumps(done)
        assert "No such file" not in json.dumps(done)


def test_a_reference_redirected_to_a_refused_service_is_refused_at_that_hop(
    server: Served, services: tuple[Service, Service]
) -> None:
    allowed, refused = services
    allowed.redirect_to = f"{refused.url}/constants.json"
    text = calling("egress-hop", f"rest:GET:{allowed.url}/x").replace(
        "start: Call", f"start: Call\nconstants: {allowed.url}/hop"
    )
    response = deploy(server.url, text)
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["path"] == "constants"
    assert "egress policy" in error["message"]
    assert f"127.0.0.1 port {refused.port}" in error["message"]
    assert refused.paths == []


def test_a_sink_on_a_refused_service_dead_letters_with_the_policy_reason(
    server: Served, services: tuple[Service, Service]
) -> None:
    _, refused = services
    with server.client() as http:
        for bus in ("egress-in", "egress-dead"):
            assert http.post("/buses", json={"name": bus}).status_code == 201
        created = http.post(
            "/subscriptions",
            json={
                "bus": "egress-in",
                "sink": f"{refused.url}/sink",
                "from": "earliest",
                "delivery": {"deadLetterBus": "egress-dead", "retry": 0},
            },
        )
        assert created.status_code == 201, created.text
        event = {"specversion": "1.0", "id": "e1", "source": "/t", "type": "t", "data": {}}
        posted = http.post(
            "/buses/egress-in/events",
            content=json.dumps(event),
            headers={"content-type": "application/cloudevents+json"},
        )
        assert posted.status_code == 202, posted.text
        deadline = time.monotonic() + 30
        letters: list[Any] = []
        while not letters and time.monotonic() < deadline:
            read = http.get("/buses/egress-dead/events", params={"after": 0, "wait": 5})
            assert read.status_code == 200, read.text
            letters = read.json()["events"]
    assert letters, "the event was not dead-lettered"
    letter = letters[0].get("event", letters[0])
    assert "egress policy" in letter["deadletterreason"]
    assert refused.paths == []


@pytest.mark.parametrize("ref", ["/etc/passwd", "../../etc/passwd", "schemas/customer.json"])
def test_a_schema_ref_to_a_local_file_is_refused_at_deploy_unread(server: Served, ref: str) -> None:
    # issue 17: over HTTP a dataInputSchema's $ref reads no server file, as no document does
    text = f"""\
id: egress-schema-ref
version: "1"
specVersion: "0.8"
dataInputSchema:
  schema:
    type: object
    properties:
      customer: {{$ref: "{ref}"}}
states:
  - name: S
    type: inject
    data: {{}}
    end: true
"""
    response = deploy(server.url, text)
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["path"] == "dataInputSchema.schema.properties.customer.$ref"
    assert "local files are not read here" in error["message"]
    assert "root:" not in response.text
