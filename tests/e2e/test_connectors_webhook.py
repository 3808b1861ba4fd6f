"""Webhook sources through a real ``tideflow serve``: ``POST /hooks/{name}``.

A GitHub-style hook (HMAC key given as a secret reference) takes a signed delivery
without any API token, appends it as an event that starts a workflow, and dedups a
redelivery by ``X-GitHub-Delivery``; a wrong or missing signature is a 401 and appends
nothing. A Stripe-style hook checks ``t=...,v1=...`` with its timestamp. A hook
without a signature needs a token with ``publish`` on its bus.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.connectors import (
    bus_events,
    create_connector,
    eventually,
    served,
    write_order_workflow,
)
from tests.support.served import copied_database

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
KEY = "whsec-test-key"


@pytest.fixture
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    async with copied_database(pg_server_url, pg_template, f"t_{_db_names[0]}_hooks") as url:
        yield url


def _sign(message: bytes) -> str:
    return hmac.new(KEY.encode(), message, hashlib.sha256).hexdigest()


async def _hook(url: str, name: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url) as anonymous:  # no API token
        return await anonymous.post(
            f"/hooks/{name}", content=body, headers={"content-type": "application/json", **headers}
        )


async def test_signed_hooks_append_events_and_refuse_bad_signatures(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIDEFLOW_SECRET_HOOK_KEY", KEY)
    flows = write_order_workflow(tmp_path / "flows", "/connectors/github")
    async with (
        served(database, tmp_path, "--workflows", str(flows)) as server,
        server.async_client() as http,
    ):
        created = await create_connector(http, {
            "name": "github", "kind": "source", "type": "webhook", "bus": "default",
            "config": {"signature": "github", "secret": {"secret": "HOOK_KEY"}},
            "mapping": '{type: "com.example.order", subject: .headers["x-github-event"]}',
        })  # fmt: skip
        assert created["config"]["secret"] == {"secret": "HOOK_KEY"}
        assert created["running"] == {"state": "listening", "path": "/hooks/github"}
        body = json.dumps({"id": 7, "total": 70}).encode()
        headers = {
            "x-hub-signature-256": f"sha256={_sign(body)}",
            "x-github-delivery": "d-7",
            "x-github-event": "push",
        }
        first = await _hook(server.url, "github", body, headers)
        assert first.status_code == 202, first.text
        again = await _hook(server.url, "github", body, headers)
        assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
        assert again.json()["offset"] == first.json()["offset"]
        wrong = await _hook(
            server.url, "github", body, {**headers, "x-hub-signature-256": "sha256=00"}
        )
        assert wrong.status_code == 401
        assert "does not match" in wrong.json()["detail"]
        unsigned = await _hook(server.url, "github", body, {"x-github-delivery": "d-8"})
        assert unsigned.status_code == 401
        assert (await _hook(server.url, "nope", body, headers)).status_code == 404
        not_json = await _hook(
            server.url, "github", b"{", {**headers, "x-hub-signature-256": f"sha256={_sign(b'{')}"}
        )
        assert not_json.status_code == 400

        events = [
            e for e in await bus_events(http, "default") if e["source"] == "/connectors/github"
        ]
        assert [(e["id"], e["subject"], e["data"]) for e in events] == [
            ("d-7", "push", {"id": 7, "total": 70})
        ]

        async def started() -> list[Any] | None:
            found = (await http.get("/instances")).json()["instances"]
            return found if found and found[0]["status"] == "completed" else None

        instances = await eventually(started)
        assert instances[0]["output"]["order"] == {"id": 7, "total": 70}
        shown = (await http.get("/connectors/github")).json()
        assert shown["events"] == 1


async def test_stripe_signatures_and_token_hooks(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIDEFLOW_SECRET_STRIPE_KEY", KEY)
    async with served(database, tmp_path) as server, server.async_client() as http:
        await create_connector(http, {
            "name": "stripe", "kind": "source", "type": "webhook", "bus": "default",
            "config": {"signature": "stripe", "secret": {"secret": "STRIPE_KEY"}},
        })  # fmt: skip
        await create_connector(http, {
            "name": "internal", "kind": "source", "type": "webhook", "bus": "default",
        })  # fmt: skip
        body = json.dumps({"id": "evt_1", "type": "charge.succeeded"}).encode()
        now = int(time.time())
        good = {"stripe-signature": f"t={now},v1={_sign(f'{now}.'.encode() + body)}"}
        accepted = await _hook(server.url, "stripe", body, good)
        assert accepted.status_code == 202, accepted.text
        stale = {"stripe-signature": f"t={now - 3600},v1={_sign(f'{now - 3600}.'.encode() + body)}"}
        refused = await _hook(server.url, "stripe", body, stale)
        assert refused.status_code == 401
        assert "timestamp" in refused.json()["detail"]

        assert (await _hook(server.url, "internal", b'{"n": 1}', {})).status_code == 401
        with_token = await http.post("/hooks/internal", json={"n": 1})
        assert with_token.status_code == 202, with_token.text

        events = await bus_events(http, "default")
        ids = {e["source"]: e["id"] for e in events}
        assert ids["/connectors/stripe"] == "evt_1"
        assert "/connectors/internal" in ids
