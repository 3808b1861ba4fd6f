"""The audit trail on a real server: who changed what lands on ``tideflow.audit``, protected.

A real server (``create_app`` with ``tideflow serve``'s composition, uvicorn
on 127.0.0.1, PostgreSQL behind it). Two tokens act -- the first admin token
and a ``deploy``+``run`` token -- and the bus ``tideflow.audit`` must then
hold one entry per change, naming each actor by token id and name (never
the token's text); only ``admin`` reads that bus and nobody writes or
deletes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.e2e.test_api_instances import until_status
from tests.support.auth import bearer, home_auth
from tideflow.api.app import create_app
from tideflow.api.testserver import serve_app
from tideflow.auth.scopes import AUDIT_BUS
from tideflow.serve import open_system
from tideflow.settings import Settings

NAPPER = """
id: napper
version: '1.0'
specVersion: '0.8'
start: Nap
states:
  - name: Nap
    type: sleep
    duration: PT1H
    end: true
"""
YAML = {"content-type": "application/yaml"}
AUDIT = f"/buses/{AUDIT_BUS}/events"


@pytest.fixture
async def http(pg_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=pg_url, home=tmp_path), open_system)
    async with serve_app(app) as url:
        admin = home_auth(tmp_path)
        async with httpx.AsyncClient(base_url=url, timeout=30, headers=admin) as client:
            yield client


async def make_token(http: httpx.AsyncClient, name: str, *scopes: str) -> tuple[str, str]:
    made = await http.post("/tokens", json={"name": name, "scopes": list(scopes)})
    assert made.status_code == 201, made.text
    return made.json()["id"], made.json()["token"]


async def audit_entries(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    page = await http.get(AUDIT, params={"limit": 1000})
    assert page.status_code == 200, page.text
    return [item["event"] for item in page.json()["events"]]


async def test_every_change_is_recorded_with_its_actor_and_never_a_token(
    http: httpx.AsyncClient,
) -> None:
    admin_id = http.headers["authorization"].split("_")[1]
    ops_id, ops_text = await make_token(http, "ops", "deploy", "run")
    ops = bearer(ops_text)
    assert (await http.post("/workflows", content=NAPPER, headers={**YAML, **ops})).is_success
    started = await http.post("/workflows/napper/instances", json={}, headers=ops)
    instance = started.json()["id"]
    await until_status(http, instance, "waiting")  # asleep: suspended at once, not later
    for action in ("suspend", "resume", "cancel"):
        done = await http.post(f"/instances/{instance}/{action}", headers=ops)
        assert done.status_code == 200, done.text
    assert (await http.delete("/workflows/napper", headers=ops)).status_code == 204
    assert (await http.post("/buses", json={"name": "orders"})).status_code == 201
    sub = await http.post("/subscriptions", json={"bus": "orders", "sink": "http://127.0.0.1:9/"})
    assert sub.status_code == 201, sub.text
    sub_id = sub.json()["id"]
    assert (await http.delete(f"/subscriptions/{sub_id}")).status_code == 204
    assert (await http.delete("/buses/orders")).status_code == 204
    assert (await http.delete(f"/tokens/{ops_id}")).status_code == 204

    entries = await audit_entries(http)
    seen = [(e["type"], e["subject"], e["data"]["actor"]["tokenId"]) for e in entries]
    assert seen == [
        ("io.tideflow.audit.token.created", f"/tokens/{admin_id}", None),  # by the server
        ("io.tideflow.audit.token.created", f"/tokens/{ops_id}", admin_id),
        ("io.tideflow.audit.workflow.deployed", "/workflows/napper", ops_id),
        ("io.tideflow.audit.instance.suspended", f"/instances/{instance}", ops_id),
        ("io.tideflow.audit.instance.resumed", f"/instances/{instance}", ops_id),
        ("io.tideflow.audit.instance.cancelled", f"/instances/{instance}", ops_id),
        ("io.tideflow.audit.workflow.deleted", "/workflows/napper", ops_id),
        ("io.tideflow.audit.bus.created", "/buses/orders", admin_id),
        ("io.tideflow.audit.subscription.created", f"/subscriptions/{sub_id}", admin_id),
        ("io.tideflow.audit.subscription.deleted", f"/subscriptions/{sub_id}", admin_id),
        ("io.tideflow.audit.bus.deleted", "/buses/orders", admin_id),
        ("io.tideflow.audit.token.revoked", f"/tokens/{ops_id}", admin_id),
    ]
    assert entries[0]["data"]["actor"] == {"tokenId": None, "name": "tideflow serve"}
    assert entries[0]["data"]["scopes"] == ["admin"]
    first = entries[1]
    assert first["source"] == "/tideflow/audit"
    assert first["data"]["actor"] == {"tokenId": admin_id, "name": "first admin token"}
    assert first["data"]["scopes"] == ["deploy", "run"]
    assert entries[2]["data"]["version"] == "1.0"
    assert entries[2]["data"]["actor"]["name"] == "ops"
    text = orjson.dumps(entries).decode()
    admin_text = http.headers["authorization"].removeprefix("Bearer ")
    assert ops_text not in text
    assert admin_text not in text
    assert ops_text.split("_")[2] not in text  # not even the secret part


async def test_only_admin_reads_the_audit_bus_and_nobody_writes_or_deletes_it(
    http: httpx.AsyncClient,
) -> None:
    _, everything_text = await make_token(http, "all buses", "subscribe:*", "publish:*", "read")
    every_bus = bearer(everything_text)
    assert (await http.get(AUDIT)).status_code == 200
    refused = await http.get(AUDIT, headers=every_bus)
    assert refused.status_code == 403
    assert "subscribe:tideflow.audit" in refused.json()["detail"]
    watch = {"bus": AUDIT_BUS, "sink": "http://127.0.0.1:9/"}
    assert (await http.post("/subscriptions", json=watch, headers=every_bus)).status_code == 403
    event = {"specversion": "1.0", "id": "forged", "source": "/me", "type": "t"}
    for auth in ({}, every_bus):  # the admin token, then a publish:* one
        forged = await http.post(AUDIT, json=event, headers=auth)
        assert forged.status_code == 409, forged.text
        assert forged.json()["type"] == "protected"
        assert "audit trail" in forged.json()["detail"]
    named = await http.post("/tokens", json={"name": "n", "scopes": [f"subscribe:{AUDIT_BUS}"]})
    assert named.status_code == 400
    assert "read with the admin scope only" in named.json()["detail"]
    deleted = await http.delete(f"/buses/{AUDIT_BUS}")
    assert (deleted.status_code, deleted.json()["type"]) == (409, "protected")
    types = [entry["type"] for entry in await audit_entries(http)]
    assert types == ["io.tideflow.audit.token.created"] * 2  # nothing forged, nothing refused
