"""Request hygiene, revocation and protected things through a real server.

``create_app`` with ``tideflow serve``'s composition on 127.0.0.1 (PostgreSQL
behind it), talked to over HTTP with the first admin token it saved.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.auth import bearer, home_auth
from tideflow.api.app import create_app
from tideflow.api.testserver import serve_app
from tideflow.serve import open_system
from tideflow.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"
HELLO = (EXAMPLES / "hello-world.yaml").read_text()
YAML = {"content-type": "application/yaml"}


@pytest.fixture
async def http(pg_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=pg_url, home=tmp_path), open_system)
    async with (
        serve_app(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers=home_auth(tmp_path)) as client,
    ):
        yield client


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert {"type", "title", "detail"} <= set(body)
    return body


async def test_bodies_a_web_page_can_send_are_refused(http: httpx.AsyncClient) -> None:
    untyped = await http.post("/workflows", content=HELLO.encode())
    assert problem(untyped, 415)["type"] == "unsupported-media-type"
    plain = await http.post("/workflows", content=HELLO, headers={"content-type": "text/plain"})
    assert "text/plain" in problem(plain, 415)["detail"]
    assert (await http.get("/workflows/hello-world")).status_code == 404  # nothing deployed
    assert (await http.post("/workflows", content=HELLO, headers=YAML)).status_code == 201
    for media in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x"):
        started = await http.post(
            "/workflows/hello-world/instances", content=b"{}", headers={"content-type": media}
        )
        problem(started, 415)
    assert (await http.get("/instances")).json()["instances"] == []
    binary = {"ce-specversion": "1.0", "ce-id": "b-1", "ce-source": "/t", "ce-type": "t"}
    sent = await http.post(
        "/events", content=b"hi", headers={**binary, "content-type": "text/plain"}
    )
    assert sent.status_code == 202, sent.text  # CloudEvents binary mode: the data's own type
    assert (await http.post("/instances/nope/cancel")).status_code == 404  # no body: no type


async def test_foreign_hosts_and_origins_are_refused(http: httpx.AsyncClient) -> None:
    evil = await http.get("/workflows", headers={"host": "evil.example"})
    assert problem(evil, 421)["type"] == "misdirected-request"
    rebound = await http.post(
        "/workflows", content=HELLO, headers={**YAML, "host": "evil.example:80"}
    )
    problem(rebound, 421)
    assert (await http.get("/workflows", headers={"host": "localhost:1"})).status_code == 200
    cross = await http.post(
        "/workflows", content=HELLO, headers={**YAML, "origin": "http://evil.example"}
    )
    assert problem(cross, 403)["type"] == "forbidden"
    null = await http.get("/workflows", headers={"origin": "null"})
    problem(null, 403)
    own = f"http://{http.base_url.netloc.decode()}"
    same = await http.post("/workflows", content=HELLO, headers={**YAML, "origin": own})
    assert same.status_code == 201, same.text
    health = await http.get("/healthz", headers={"host": "evil.example"})
    assert health.status_code == 200  # probes need no token and no name


async def test_a_revoked_token_is_refused_at_once(http: httpx.AsyncClient) -> None:
    made = (await http.post("/tokens", json={"name": "ci", "scopes": ["read"]})).json()
    assert made["token"].startswith(f"tf_{made['id']}_")
    ci = bearer(made["token"])
    assert (await http.get("/workflows", headers=ci)).status_code == 200
    listed = (await http.get("/tokens")).json()["tokens"]
    assert [t["name"] for t in listed] == ["first admin token", "ci"]
    assert all("token" not in t and "digest" not in t for t in listed)
    assert made["token"] not in (await http.get("/tokens")).text
    assert (await http.delete(f"/tokens/{made['id']}")).status_code == 204
    problem(await http.get("/workflows", headers=ci), 401)
    revoked = (await http.get("/tokens")).json()["tokens"][1]
    assert revoked["revokedAt"] is not None
    problem(await http.delete("/tokens/000000000000"), 404)
    bad = await http.post("/tokens", json={"name": "x", "scopes": ["root"]})
    assert "invalid scope 'root'" in problem(bad, 400)["detail"]


async def test_workflow_ids_follow_one_pattern(http: httpx.AsyncClient) -> None:
    for bad in ("a/b", "x y", "-lead", "A" * 128):
        text = HELLO.replace("id: hello-world", f"id: '{bad}'")
        refused = await http.post("/workflows", content=text, headers=YAML)
        body = problem(refused, 422)
        assert body["errors"][0]["path"] == "id"
        assert "1-127 letters, digits" in body["errors"][0]["message"]
    crlf = HELLO.replace("id: hello-world", 'id: "x\\r\\nSet-Cookie: y"')
    problem(await http.post("/workflows", content=crlf, headers=YAML), 422)
    longest = HELLO.replace("id: hello-world", "id: ns.name_" + "v" * 115)
    assert (await http.post("/workflows", content=longest, headers=YAML)).status_code == 201
    assert (await http.get("/workflows")).json()["workflows"][0]["id"] == "ns.name_" + "v" * 115


async def test_internal_buses_and_subscriptions_cannot_be_deleted(http: httpx.AsyncClient) -> None:
    for bus in ("tideflow.lifecycle", "default"):
        refused = problem(await http.delete(f"/buses/{bus}"), 409)
        assert "cannot be deleted" in refused["detail"]
    assert (await http.get("/buses/tideflow.lifecycle")).status_code == 200
    internal = (await http.get("/subscriptions")).json()["subscriptions"]
    assert "tideflow.workflows" in {s["id"] for s in internal if s["kind"] == "internal"}
    refused = problem(await http.delete("/subscriptions/tideflow.workflows"), 409)
    assert refused["type"] == "protected"
    assert "internal" in refused["detail"]
    assert (await http.get("/subscriptions/tideflow.workflows")).status_code == 200


async def test_sink_credentials_in_clear_are_refused_without_echoing_them(
    http: httpx.AsyncClient,
) -> None:
    # stored in clear they would be in every database dump: secret references instead
    # (tests/e2e/test_secrets_served.py delivers with one)
    sink = "https://alice:s3cret@hooks.example/in?x=1"
    refused = problem(await http.post("/subscriptions", json={"bus": "default", "sink": sink}), 422)
    assert refused["path"] == "sink"
    literal = {"bus": "default", "sink": "https://hooks.example/in", "headers": {"x-api-key": "k1"}}
    refused_header = problem(await http.post("/subscriptions", json=literal), 422)
    assert refused_header["path"] == "headers.x-api-key"
    for body in (refused, refused_header):
        assert "s3cret" not in str(body)
        assert "k1" not in str(body)
    assert (await http.get("/subscriptions")).json()["subscriptions"][-1]["kind"] == "internal"


async def test_a_revocation_reaches_another_server_by_notification(
    pg_url: str, tmp_path: Path
) -> None:
    # the other server trusts what it verified for an hour: only the NOTIFY can refuse it
    one = create_app(Settings(database_url=pg_url, home=tmp_path / "one"), open_system)
    other_settings = Settings(database_url=pg_url, home=tmp_path / "two", token_cache_seconds=3600)
    other = create_app(other_settings, open_system)
    async with (
        serve_app(one) as url_one,
        serve_app(other) as url_two,
        httpx.AsyncClient(base_url=url_one, headers=home_auth(tmp_path / "one")) as first,
        httpx.AsyncClient(base_url=url_two, timeout=30) as second,
    ):
        made = (await first.post("/tokens", json={"name": "ci", "scopes": ["read"]})).json()
        ci = bearer(made["token"])
        assert (await second.get("/workflows", headers=ci)).status_code == 200  # now cached
        assert (await first.delete(f"/tokens/{made['id']}")).status_code == 204
        async with asyncio.timeout(30):
            while (await second.get("/workflows", headers=ci)).status_code == 200:  # noqa: ASYNC110 - the state is in the server
                await asyncio.sleep(0.05)
        problem(await second.get("/workflows", headers=ci), 401)
