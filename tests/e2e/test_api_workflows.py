"""The workflow registry over HTTP: deploy (YAML/JSON), versions, 422 problems, delete.

A real server (uvicorn on 127.0.0.1, the app's own lifespan composing every
service) on a fresh PostgreSQL database from the ``pg_url`` fixture.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.auth import home_auth
from tideflow.api.app import create_app
from tideflow.api.testserver import serve_app
from tideflow.serve import open_system
from tideflow.settings import Settings
from tideflow.workflow.dsl1.walk import MCP_STDIO

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"
YAML = {"content-type": "application/yaml"}

HELLO = (EXAMPLES / "hello-world.yaml").read_text()


def definition(version: str = "1.0", greeting: str = "Hello") -> str:
    return f"""\
id: greeter
version: "{version}"
specVersion: "0.8"
name: Greeter
start: Greet
states:
  - name: Greet
    type: inject
    data:
      greeting: {greeting}
    end: true
"""


@pytest.fixture
async def client(pg_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        Settings(database_url=pg_url, home=tmp_path, max_request_bytes=64 * 1024), open_system
    )
    async with (
        serve_app(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers=home_auth(tmp_path)) as http,
    ):
        yield http


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "Traceback" not in response.text
    body: dict[str, Any] = response.json()
    assert set(body) >= {"type", "title", "detail"}
    return body


async def test_deploy_yaml_then_show_list_and_read_the_source(client: httpx.AsyncClient) -> None:
    response = await client.post("/workflows", content=HELLO, headers=YAML)
    assert response.status_code == 201, response.text
    assert response.json()["id"] == "hello-world"
    version = response.json()["version"]
    assert response.headers["location"] == "/workflows/hello-world"

    listed = (await client.get("/workflows")).json()["workflows"]
    assert [(w["id"], w["version"]) for w in listed] == [("hello-world", version)]
    shown = (await client.get("/workflows/hello-world")).json()
    assert shown["versions"] == [version]
    assert shown["contentType"] == "application/yaml"

    source = await client.get(f"/workflows/hello-world/versions/{version}")
    assert source.status_code == 200
    assert source.text == HELLO  # exactly as submitted, comments included
    assert source.headers["content-type"].startswith("application/yaml")


@pytest.mark.parametrize("media", ["text/yaml", "application/x-yaml"])
async def test_every_yaml_media_type_is_accepted(client: httpx.AsyncClient, media: str) -> None:
    response = await client.post(
        "/workflows", content=definition(), headers={"content-type": media}
    )
    assert response.status_code == 201, response.text
    assert response.json() == {"id": "greeter", "version": "1.0", "warnings": []}


async def test_json_body_is_stored_as_json(client: httpx.AsyncClient) -> None:
    text = json.dumps(yaml.safe_load(definition("2.0")))
    response = await client.post(
        "/workflows", content=text, headers={"content-type": "application/json"}
    )
    assert response.status_code == 201, response.text
    source = await client.get("/workflows/greeter/versions/2.0")
    assert source.headers["content-type"].startswith("application/json")
    assert source.text == text


async def test_new_versions_are_kept_beside_old_ones(client: httpx.AsyncClient) -> None:
    for version, greeting in (("1.0", "Hello"), ("1.1", "Hi")):
        response = await client.post(
            "/workflows", content=definition(version, greeting), headers=YAML
        )
        assert response.status_code == 201, response.text
    shown = (await client.get("/workflows/greeter")).json()
    assert shown["version"] == "1.1"
    assert shown["versions"] == ["1.0", "1.1"]
    old = await client.get("/workflows/greeter/versions/1.0")
    assert "greeting: Hello" in old.text
    # the same source again is a no-op; another source under a used version is a conflict
    again = await client.post("/workflows", content=definition("1.0", "Hello"), headers=YAML)
    assert again.status_code == 201
    clash = await client.post("/workflows", content=definition("1.0", "Howdy"), headers=YAML)
    assert problem(clash, 409)["type"] == "already-exists"


async def test_invalid_definition_gets_422_with_every_problem_and_path(
    client: httpx.AsyncClient,
) -> None:
    broken = (
        definition()
        .replace("start: Greet", "start: Nowhere")
        .replace("type: inject", "type: teleport")
    )
    response = await client.post("/workflows", content=broken, headers=YAML)
    body = problem(response, 422)
    assert body["type"] == "invalid-workflow"
    paths = {e["path"]: e["message"] for e in body["errors"]}
    assert "start" in paths
    assert "Nowhere" in paths["start"]
    assert any(path.startswith("states[0]") for path in paths)
    assert all(set(e) >= {"path", "message"} for e in body["errors"])
    assert (await client.get("/workflows")).json()["workflows"] == []


async def test_a_yaml_alias_cycle_gets_422_with_its_path(client: httpx.AsyncClient) -> None:
    text = definition().replace("data:\n      greeting: Hello", "data: &d {x: *d}")
    body = problem(await client.post("/workflows", content=text, headers=YAML), 422)
    assert [(e["path"], e["message"]) for e in body["errors"]] == [
        (
            "states[0].data.x",
            "refers back to states[0].data, which contains it: "
            "a definition cannot contain itself (a YAML alias cycle)",
        )
    ]
    assert (await client.get("/workflows")).json()["workflows"] == []


async def test_unparseable_yaml_is_a_400_naming_the_line(client: httpx.AsyncClient) -> None:
    text = "id: x\nstates:\n  - name: [unclosed\n    type: inject\n"
    body = problem(await client.post("/workflows", content=text, headers=YAML), 400)
    assert body["type"] == "unreadable-workflow"
    assert "line" in body["detail"]
    assert "YAML syntax error" in body["detail"]


@pytest.mark.parametrize(
    ("content", "headers", "status", "words"),
    [
        ("", YAML, 400, "empty"),
        (HELLO, {"content-type": "text/plain"}, 415, "text/plain"),
        ("- a\n- b\n", YAML, 400, "must be an object"),
        ("hello-world.yaml", YAML, 400, "must be an object"),  # never read as a file name
        ("# padding\n" * 10_000, YAML, 413, "the limit is 65536"),
        (b"id: \xff\n", YAML, 400, "not UTF-8"),
    ],
)
async def test_bad_bodies_are_refused_clearly(
    client: httpx.AsyncClient,
    content: str | bytes,
    headers: dict[str, str],
    status: int,
    words: str,
) -> None:
    body = problem(await client.post("/workflows", content=content, headers=headers), status)
    assert words in body["detail"]


async def test_local_file_references_are_not_read_from_http(client: httpx.AsyncClient) -> None:
    text = definition().replace('specVersion: "0.8"', 'specVersion: "0.8"\nfunctions: /etc/passwd')
    body = problem(await client.post("/workflows", content=text, headers=YAML), 422)
    assert "local files are not read" in json.dumps(body["errors"])


async def test_sonataflow_dialect_is_kept_and_unknown_dialects_refused(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/workflows", content=definition(), headers=YAML, params={"dialect": "sonataflow"}
    )
    assert response.status_code == 201, response.text
    shown = (await client.get("/workflows/greeter")).json()
    assert shown["contentType"] == "application/yaml; dialect=sonataflow"
    bad = await client.post(
        "/workflows", content=definition("9"), headers=YAML, params={"dialect": "argo"}
    )
    assert "sonataflow" in problem(bad, 400)["detail"]


SWITCH_WITHOUT_DEFAULT = """\
id: lenient
version: "1"
specVersion: "0.8"
start: Pick
states:
  - name: Pick
    type: switch
    dataConditions:
      - condition: .go
        transition: Done
  - name: Done
    type: inject
    data: {done: true}
    end: true
"""


async def test_sonataflow_leniencies_apply_when_validating_a_deploy(
    client: httpx.AsyncClient,
) -> None:
    # SonataFlow accepts a switch without defaultCondition (SwitchHandler)
    strict = await client.post("/workflows", content=SWITCH_WITHOUT_DEFAULT, headers=YAML)
    assert "defaultCondition" in json.dumps(problem(strict, 422)["errors"])
    lenient = await client.post(
        "/workflows",
        content=SWITCH_WITHOUT_DEFAULT,
        headers=YAML,
        params={"dialect": "sonataflow"},
    )
    assert lenient.status_code == 201, lenient.text
    source = await client.get("/workflows/lenient/versions/1")
    assert source.text == SWITCH_WITHOUT_DEFAULT  # stored as submitted


async def test_delete_stops_listing_but_keeps_versions_readable(client: httpx.AsyncClient) -> None:
    await client.post("/workflows", content=definition(), headers=YAML)
    assert (await client.delete("/workflows/greeter")).status_code == 204
    assert (await client.get("/workflows")).json()["workflows"] == []
    assert problem(await client.get("/workflows/greeter"), 404)["type"] == "not-found"
    assert (await client.get("/workflows/greeter/versions/1.0")).status_code == 200
    assert problem(await client.delete("/workflows/greeter"), 404)["detail"]
    assert problem(await client.get("/workflows/nope/versions/1"), 404)["detail"]


DSL1 = """\
document: {dsl: '1.0.3', namespace: test, name: greeter, version: '1.0.0'}
do:
  - greet:
      set:
        greeting: ${ "Hello " + .name }
"""


async def test_a_dsl1_definition_deploys_as_namespace_dot_name_and_runs(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/workflows", content=DSL1, headers=YAML)
    assert response.status_code == 201, response.text
    assert (response.json()["id"], response.json()["version"]) == ("test.greeter", "1.0.0")
    assert response.headers["location"] == "/workflows/test.greeter"
    started = await client.post(
        "/workflows/test.greeter/instances", json={"name": "Ada"}, params={"wait": 30}
    )
    assert started.status_code == 201, started.text
    assert started.json()["status"] == "completed"
    assert started.json()["output"] == {"greeting": "Hello Ada"}


async def test_an_invalid_dsl1_definition_gets_422_with_its_paths(
    client: httpx.AsyncClient,
) -> None:
    broken = DSL1.replace("set:", "sett:") + "  - again: {wait: soon, then: nowhere}\n"
    body = problem(await client.post("/workflows", content=broken, headers=YAML), 422)
    assert body["type"] == "invalid-workflow"
    assert [e["path"] for e in body["errors"]] == [
        "do[0].greet",
        "do[1].again.wait",
        "do[1].again.then",
    ]
    cyclic = DSL1.replace('greeting: ${ "Hello " + .name }', "greeting: &g {x: *g}")
    body = problem(await client.post("/workflows", content=cyclic, headers=YAML), 422)
    assert [e["path"] for e in body["errors"]] == ["do[0].greet.set.greeting.x"]
    assert (await client.get("/workflows")).json()["workflows"] == []


RETRIED = """
document: {dsl: '1.0.3', namespace: test, name: retried, version: '1.0.0'}
do:
  - first: {set: {n: 1}}
  - guard:
      try:
        - fail:
            raise:
              error: {type: 'https://example.com/oops', status: 503}
      catch:
        errors: {with: {status: 503}}
        retry: {delay: PT0S, limit: {attempt: {count: 1}}}
"""


CLOUDEVENT = {"content-type": "application/cloudevents+json"}
CORRELATED = """
document: {dsl: '1.0.3', namespace: test, name: correlated, version: '1.0.0'}
do:
  - await:
      listen:
        to:
          one:
            with: {type: test.paid, source: /shop}
            correlate: {order: {from: '${ .data.order }', expect: '${ .order }'}}
"""


async def standard_of(client: httpx.AsyncClient, instance_id: str, last: str) -> list[Any]:
    """The instance's standard lifecycle events, once the one of type ``last`` is there."""
    async with asyncio.timeout(10):
        while True:
            page = await client.get("/buses/tideflow.lifecycle/events", params={"limit": 500})
            events = [r["event"] for r in page.json()["events"]]
            mine = [e for e in events if e["subject"] == instance_id
                    and e["type"].startswith("io.serverlessworkflow.")]  # fmt: skip
            if any(e["type"] == last for e in mine):
                return mine
            await asyncio.sleep(0.05)


async def test_a_listen_is_told_as_the_workflow_correlating_events(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post("/workflows", content=CORRELATED, headers=YAML)).status_code == 201
    started = await client.post("/workflows/test.correlated/instances", json={"order": "o-7"})
    instance_id = started.json()["id"]
    opened = "io.serverlessworkflow.workflow.correlation-started.v1"
    await standard_of(client, instance_id, opened)
    for order in ("o-1", "o-7"):  # the first does not correlate: dropped, the listen waits on
        event = {"specversion": "1.0", "id": f"paid-{order}", "source": "/shop",
                 "type": "test.paid", "data": {"order": order}}  # fmt: skip
        posted = await client.post("/events", content=json.dumps(event), headers=CLOUDEVENT)
        assert posted.status_code in (200, 201, 202), posted.text
    mine = await standard_of(client, instance_id, "io.serverlessworkflow.workflow.completed.v1")
    named = [e["type"].split(".", 2)[2].removesuffix(".v1") for e in mine
             if ".status-changed." not in e["type"]]  # fmt: skip
    assert named == [
        "workflow.started", "task.created", "task.started", "workflow.correlation-started",
        "workflow.correlation-completed", "task.completed", "workflow.completed",
    ]  # fmt: skip
    began = next(e for e in mine if e["type"] == opened)["data"]
    ended = next(e for e in mine if "correlation-completed" in e["type"])["data"]
    assert (began["name"], began["task"]) == (instance_id, "/do/0/await")
    assert "startedAt" in began
    assert ended["correlationKeys"] == {"order": "o-7"}
    assert (ended["name"], ended["task"]) == (instance_id, "/do/0/await")


async def test_a_dsl1_instance_has_the_standard_lifecycle_events_beside_its_own(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post("/workflows", content=RETRIED, headers=YAML)).status_code == 201
    done = await client.post("/workflows/test.retried/instances", json={}, params={"wait": 30})
    instance_id = done.json()["id"]
    assert done.json()["status"] == "completed", done.text
    async with asyncio.timeout(10):
        while True:
            page = await client.get("/buses/tideflow.lifecycle/events", params={"limit": 500})
            events = [r["event"] for r in page.json()["events"]]
            mine = [e for e in events if e["subject"] == instance_id]
            if any(e["type"] == "io.serverlessworkflow.workflow.completed.v1" for e in mine):
                break
            await asyncio.sleep(0.05)
    every = [e for e in mine if e["type"].startswith("io.serverlessworkflow.")]
    standard = [e for e in every if ".status-changed." not in e["type"]]
    named = [
        (e["type"].split(".", 2)[2].removesuffix(".v1"), e["data"].get("task")) for e in standard
    ]
    assert named == [
        ("workflow.started", None),
        ("task.created", "/do/0/first"),
        ("task.started", "/do/0/first"),
        ("task.completed", "/do/0/first"),
        ("task.created", "/do/1/guard"),
        ("task.started", "/do/1/guard"),
        ("task.created", "/do/1/guard/try/0/fail"),
        ("task.started", "/do/1/guard/try/0/fail"),
        ("task.faulted", "/do/1/guard/try/0/fail"),
        ("task.retried", "/do/1/guard"),
        ("task.created", "/do/1/guard/try/0/fail"),
        ("task.started", "/do/1/guard/try/0/fail"),
        ("task.faulted", "/do/1/guard/try/0/fail"),
        ("task.completed", "/do/1/guard"),
        ("workflow.completed", None),
    ]
    phases = [
        (e["data"].get("task"), e["data"]["status"])
        for e in every
        if ".status-changed." in e["type"]
    ]
    assert phases[0] == (None, "running")
    assert phases[-1] == (None, "completed")
    assert phases[1:3] == [("/do/0/first", "pending"), ("/do/0/first", "running")]
    assert ("/do/1/guard/try/0/fail", "faulted") in phases
    assert standard[0]["data"]["name"] == instance_id
    assert standard[-1]["data"]["output"] == {"n": 1}
    assert standard[8]["data"]["error"]["status"] == 503
    own = [e["type"] for e in mine if e["type"].startswith("io.tideflow.")]
    assert own[0] == "io.tideflow.instance.started"
    assert own[-1] == "io.tideflow.instance.completed"


async def test_calls_tideflow_does_not_run_are_refused_at_deploy_with_their_paths(
    client: httpx.AsyncClient,
) -> None:
    head = "document: {dsl: '1.0.3', namespace: test, name: unrun, version: '1.0.0'}\n"
    text = head + """do:
  - agent: {call: a2a, with: {method: message/send, server: 'https://agent.example.com'}}
  - tool: {call: mcp, with: {method: tools/list, transport: {stdio: {command: npx}}}}
  - own: {call: 'log:1.0.0@default'}
"""
    body = problem(await client.post("/workflows", content=text, headers=YAML), 422)
    found = [(e["path"], e["message"]) for e in body["errors"] if e["severity"] == "error"]
    assert found == [
        ("do[1].tool.with.transport.stdio", MCP_STDIO),
        ("do[2].own.call",
         "functions of a catalog are not supported by Tideflow yet (not fetched)"),
    ]  # fmt: skip
    # A remote catalog is fetched at deploy, through the egress policy (loopback refused here).
    use = "use: {catalogs: {shared: {endpoint: 'http://127.0.0.1:9/catalog'}}}\n"
    remote = head + use + "do:\n  - shared: {call: 'log:1.0.0@shared'}\n"
    body = problem(await client.post("/workflows", content=remote, headers=YAML), 422)
    ((path, message),) = [(e["path"], e["message"]) for e in body["errors"]]
    assert path == "do[0].shared.call"
    assert "cannot fetch 'http://127.0.0.1:9/catalog/functions/log/1.0.0/function.yaml'" in message
