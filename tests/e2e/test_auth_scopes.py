"""Every route needs a token with its scope: 401 without (or with a bad one), 403 without the scope.

A real server (``create_app`` with ``tideflow serve``'s composition, on
127.0.0.1, PostgreSQL behind it); tokens are made through ``POST /tokens``
with the first admin token the server saved in its home.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.routing import APIRoute

from tests.support.auth import bearer, home_auth
from tideflow.api.access import PUBLIC_PATHS, is_console
from tideflow.api.app import create_app
from tideflow.api.testserver import serve_app
from tideflow.serve import open_system
from tideflow.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"
HELLO = (EXAMPLES / "hello-world.yaml").read_text()
EVENT = orjson.dumps({"specversion": "1.0", "id": "a-1", "source": "/t", "type": "t"})
CE = {"headers": {"content-type": "application/cloudevents+json"}}
YAML = {"headers": {"content-type": "application/yaml"}}


@dataclass(frozen=True)
class Call:
    """One request, the scope it needs, and a scope that is not enough."""

    method: str
    path: str
    needs: str
    lacks: str = "read"
    kwargs: dict[str, Any] = field(default_factory=dict)


CALLS = [
    Call("GET", "/buses", "read", "run"),
    Call("POST", "/buses", "admin", kwargs={"json": {"name": "made"}}),
    Call("GET", "/buses/default", "read", "run"),
    Call("DELETE", "/buses/made", "admin"),
    Call("POST", "/events", "publish:default", "publish:other", {"content": EVENT, **CE}),
    Call("POST", "/buses/default/events", "publish:*", "subscribe:*", {"content": EVENT, **CE}),
    Call("GET", "/buses/default/events", "subscribe:default", "publish:default"),
    Call("GET", "/buses/default/events/1", "subscribe:def*", "subscribe:other"),
    Call("GET", "/buses/default/scheduled", "subscribe:default"),
    Call("GET", "/buses/default/scheduled/x", "subscribe:default"),
    Call("DELETE", "/buses/default/scheduled/x", "publish:default", "subscribe:default"),
    Call("GET", "/instances", "read", "run"),
    Call("GET", "/instances/x", "read", "deploy"),
    Call("GET", "/instances/x/timeline", "read", "run"),
    Call("POST", "/instances/x/cancel", "run"),
    Call("POST", "/instances/x/suspend", "run"),
    Call("POST", "/instances/x/resume", "run", "deploy"),
    Call("POST", "/instances/x/retry", "run", "deploy"),
    Call("GET", "/metrics", "read", "publish:*"),
    Call("GET", "/timers", "read", "run"),
    Call("GET", "/subscriptions", "read", "subscribe:*"),
    Call("GET", "/subscriptions/x", "read", "subscribe:*"),
    Call("GET", "/connectors", "read", "run"),
    Call("GET", "/connectors/x", "read", "run"),
    Call("POST", "/connectors", "admin", "deploy", {"json": {"name": "x"}}),
    Call("DELETE", "/connectors/x", "admin", "read"),
    Call("POST", "/connectors/x/pause", "admin", "run"),
    Call("POST", "/connectors/x/resume", "admin", "run"),
    Call("GET", "/tokens", "admin"),
    Call("POST", "/tokens", "admin", "deploy", {"json": {"name": "n", "scopes": ["read"]}}),
    Call("DELETE", "/tokens/000000000000", "admin", "run"),
    Call("POST", "/workflows", "deploy", kwargs={"content": HELLO, **YAML}),
    Call("GET", "/workflows", "read", "deploy"),
    Call("GET", "/workflows/hello-world", "read", "run"),
    Call("GET", "/workflows/hello-world/versions/1.0", "read", "run"),
    Call("POST", "/workflows/hello-world/instances", "run", "deploy", {"json": {}}),
    Call("POST", "/workflows/hello-world/instances:batch", "run", "deploy",
         {"json": {"inputs": [{}]}}),
    Call("DELETE", "/workflows/hello-world", "deploy", "run"),
    Call("POST", "/connectors", "admin", "read", {"json": {}}),
    Call("GET", "/connectors", "read", "run"),
    Call("GET", "/connectors/x", "read", "run"),
    Call("DELETE", "/connectors/x", "admin", "read"),
    Call("POST", "/connectors/x/pause", "admin", "read"),
    Call("POST", "/connectors/x/resume", "admin", "read"),
    Call("POST", "/secrets/grants", "admin", "read", {"json": {}}),
    Call("GET", "/secrets/grants", "admin", "read"),
    Call("DELETE", "/secrets/grants/x", "admin", "read"),
    Call("GET", "/cluster", "admin", "read"),
]  # fmt: skip
HOOK_CALLS = {("POST", "/hooks/{name}")}
"""Signed by the sender or publish:<bus>: tests/e2e/test_connectors_webhook.py."""
SUBSCRIPTION_CALLS = {
    ("POST", "/subscriptions"),
    ("DELETE", "/subscriptions/{subscription_id}"),
    ("POST", "/subscriptions/{subscription_id}/pause"),
    ("POST", "/subscriptions/{subscription_id}/resume"),
    ("POST", "/subscriptions/{subscription_id}/reset"),
}


@dataclass
class Server:
    http: httpx.AsyncClient
    admin: dict[str, str]

    async def token(self, *scopes: str) -> dict[str, str]:
        made = await self.http.post(
            "/tokens", json={"name": "+".join(scopes), "scopes": list(scopes)}, headers=self.admin
        )
        assert made.status_code == 201, made.text
        return bearer(made.json()["token"])


@pytest.fixture
async def server(pg_url: str, tmp_path: Path) -> AsyncIterator[Server]:
    app = create_app(Settings(database_url=pg_url, home=tmp_path), open_system)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        yield Server(http, home_auth(tmp_path))


def assert_problem(response: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == type_
    assert body["title"]
    assert body["detail"]
    return body


async def test_every_route_needs_its_scope(server: Server) -> None:
    http = server.http
    unknown = bearer("tf_0123456789ab_" + "A" * 43)
    for call in CALLS:
        where = f"{call.method} {call.path}"
        missing = await http.request(call.method, call.path, **call.kwargs)
        body = assert_problem(missing, 401, "unauthenticated")
        assert missing.headers["www-authenticate"].startswith("Bearer"), where
        bad = await http.request(call.method, call.path, **{**call.kwargs, **_with(call, unknown)})
        assert assert_problem(bad, 401, "unauthenticated") == body, where  # nothing told
        lacking = await server.token(call.lacks)
        refused = await http.request(call.method, call.path, **_with(call, lacking))
        assert call.needs.split(":")[0] in assert_problem(refused, 403, "forbidden")["detail"]
        allowed = await server.token(call.needs)
        answer = await http.request(call.method, call.path, **_with(call, allowed))
        assert answer.status_code not in (401, 403), f"{where}: {answer.text}"
        assert answer.status_code < 500, f"{where}: {answer.text}"


def _with(call: Call, auth: dict[str, str]) -> dict[str, Any]:
    kwargs = dict(call.kwargs)
    kwargs["headers"] = {**kwargs.get("headers", {}), **auth}
    return kwargs


async def test_subscriptions_need_subscribe_on_their_bus(server: Server) -> None:
    http = server.http
    for name in ("orders", "other"):
        assert (await http.post("/buses", json={"name": name}, headers=server.admin)).is_success
    body = {"bus": "orders", "sink": "http://127.0.0.1:9/hook"}
    orders = await server.token("subscribe:orders")
    other = await server.token("subscribe:other", "read")
    refused = await http.post("/subscriptions", json=body, headers=other)
    assert "subscribe:orders" in assert_problem(refused, 403, "forbidden")["detail"]
    made = await http.post("/subscriptions", json=body, headers=orders)
    assert made.status_code == 201, made.text
    sub = made.json()["id"]
    for action, payload in (("pause", None), ("resume", None), ("reset", {"offset": 1})):
        path = f"/subscriptions/{sub}/{action}"
        assert_problem(await http.post(path, json=payload, headers=other), 403, "forbidden")
        assert (await http.post(path, json=payload, headers=orders)).status_code == 200
    assert (await http.get(f"/subscriptions/{sub}", headers=other)).status_code == 200  # read
    assert_problem(await http.delete(f"/subscriptions/{sub}", headers=other), 403, "forbidden")
    assert (await http.delete(f"/subscriptions/{sub}", headers=orders)).status_code == 204


async def test_health_and_the_api_document_need_no_token(server: Server) -> None:
    assert (await server.http.get("/healthz")).status_code == 200
    assert (await server.http.get("/openapi.json")).status_code == 200
    assert_problem(await server.http.get("/no/such/route"), 401, "unauthenticated")


def api_routes(routes: Sequence[Any]) -> Iterator[APIRoute]:
    """The API routes, included routers' too."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # FastAPI keeps included routers whole
            yield from api_routes(route.original_router.routes)
        elif hasattr(route, "routes"):
            yield from api_routes(route.routes)


def test_every_route_is_in_the_matrix_and_declares_its_scope() -> None:
    routes = list(api_routes(create_app(Settings()).routes))
    tested = (
        {(c.method, _template(routes, c.path)) for c in CALLS} | SUBSCRIPTION_CALLS | HOOK_CALLS
    )
    assert len(routes) >= 30
    for route in routes:
        declared = [
            getattr(dep.call, "tideflow_scope", None) for dep in route.dependant.dependencies
        ]
        if is_console(route.path):
            continue  # the console signs in by session and acts through the routes below
        for method in route.methods or ():
            if route.path in PUBLIC_PATHS:
                assert not any(declared), route.path
                continue
            assert len([d for d in declared if d]) == 1, f"{method} {route.path}: {declared}"
            assert (method, route.path) in tested, f"{method} {route.path} is not tested"


def _template(routes: list[APIRoute], path: str) -> str:
    for route in routes:
        if route.path_regex.match(path):
            return route.path
    raise AssertionError(f"no route for {path}")
