"""Supervision through a real ``tideflow serve``: one failing connector costs only itself.

A source whose broker does not answer is restarted with back-off and shows its last
error; a healthy source beside it (its URL given as a secret reference, shown as the
reference and never as the value) keeps appending; ``/healthz`` stays up; pausing the
failing one stops its restarts, and deleting it removes it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.support.cli import run_cli
from tests.support.connectors import bus_events, create_connector, eventually, served
from tests.support.served import copied_database
from tideflow import ids

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    async with copied_database(pg_server_url, pg_template, f"t_{_db_names[0]}_superv") as url:
        yield url


async def test_a_failing_connector_costs_only_itself(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = f"healthy-{ids.new_id()[:8]}"
    monkeypatch.setenv("TIDEFLOW_SECRET_REDIS_URL", "redis://127.0.0.1:6379/0")
    client: Any = aioredis.from_url("redis://127.0.0.1:6379/0")
    async with served(database, tmp_path) as server, server.async_client() as http:
        await create_connector(http, {
            "name": "broken", "kind": "source", "type": "redis", "bus": "default",
            "config": {"url": "redis://127.0.0.1:1/0", "stream": "nowhere"},
        })  # fmt: skip
        healthy = await create_connector(http, {
            "name": "healthy", "kind": "source", "type": "redis", "bus": "default",
            "config": {"url": {"secret": "REDIS_URL"}, "stream": stream, "interval": 0.2},
        })  # fmt: skip
        assert healthy["config"]["url"] == {"secret": "REDIS_URL"}
        for n in range(3):
            await client.xadd(stream, {"data": json.dumps({"n": n})})

        async def failing() -> dict[str, Any] | None:
            shown = (await http.get("/connectors/broken")).json()
            return shown if shown["errors"] >= 2 and shown["running"]["restarts"] >= 1 else None

        broken = await eventually(failing)
        assert "Connect" in broken["lastError"] or "connect" in broken["lastError"]

        async def arrived() -> list[Any] | None:
            found = [e for e in await bus_events(http, "default") if e["subject"] == stream]
            return found if len(found) == 3 else None

        assert [e["data"] for e in await eventually(arrived)] == [{"n": 0}, {"n": 1}, {"n": 2}]
        assert (await http.get("/healthz")).status_code == 200
        assert "REDIS_URL" in json.dumps((await http.get("/connectors")).json())
        assert "6379" not in json.dumps((await http.get("/connectors/healthy")).json())

        paused = (await http.post("/connectors/broken/pause")).json()
        assert (paused["state"], paused["running"]["state"]) == ("paused", "stopped")
        assert (await http.delete("/connectors/broken")).status_code == 204
        assert (await http.get("/connectors/broken")).status_code == 404
        names = [c["name"] for c in (await http.get("/connectors")).json()["connectors"]]
        assert names == ["healthy"]
    await client.delete(stream)
    await client.aclose()


async def test_bad_declarations_are_clear_4xx(database: str, tmp_path: Path) -> None:
    async with served(database, tmp_path) as server, server.async_client() as http:
        bad = await http.post("/connectors", json={"name": "x", "kind": "source", "type": "kafka"})
        assert bad.status_code == 422
        assert bad.json()["path"] == "type"
        missing = await http.post("/connectors", json={
            "name": "x", "kind": "sink", "type": "redis", "bus": "nope",
            "config": {"url": "redis://127.0.0.1:6379", "stream": "s"},
        })  # fmt: skip
        assert missing.status_code == 404
        body = {
            "name": "dup", "kind": "sink", "type": "redis", "bus": "default",
            "config": {"url": "redis://127.0.0.1:6379", "stream": "s"},
        }  # fmt: skip
        assert (await http.post("/connectors", json=body)).status_code == 201
        assert (await http.post("/connectors", json=body)).status_code == 409
        broken_json = await http.post(
            "/connectors", content=b"{", headers={"content-type": "application/json"}
        )
        assert broken_json.status_code == 422
        assert (await http.get("/connectors/none")).status_code == 404


async def test_the_cli_creates_lists_shows_pauses_and_deletes(
    database: str, tmp_path: Path
) -> None:
    spec = tmp_path / "sink.yaml"
    spec.write_text(
        "name: cli-sink\nkind: sink\ntype: redis\nbus: default\n"
        "config: {url: 'redis://:hunter2@127.0.0.1:6379/0', stream: cli-out}\n"
    )
    async with served(database, tmp_path) as server:

        async def cli(*args: str) -> str:
            code, out, err = await run_cli(server.url, "connectors", *args, token=server.token)
            assert code == 0, err
            return out

        created = json.loads(await cli("create", "--spec", f"@{spec}"))
        assert created["config"]["url"] == "redis://:***@127.0.0.1:6379/0"
        listed = await cli("list")
        assert listed.split("\t")[:5] == ["cli-sink", "sink", "redis", "default", "active"]
        shown = json.loads(await cli("show", "cli-sink"))
        assert (shown["lag"], shown["activity"]["connected"]) == (0, False)
        assert (await cli("pause", "cli-sink")).strip() == "cli-sink paused"
        assert (await cli("delete", "cli-sink")).strip() == "deleted connector cli-sink"
        code, _, err = await run_cli(
            server.url, "connectors", "show", "cli-sink", token=server.token
        )
        assert code != 0
        assert "cli-sink" in err
