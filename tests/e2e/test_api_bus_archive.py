"""Buses with an archive tier over HTTP (a real uvicorn server): creating one (admin scope,
checked location, errors with their path), figures per tier, and reads from offset 1 -- the
events API and the client's tail, which `tideflow events tail --from 1` runs -- through the
archive into the live segments."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.auth import bearer
from tests.support.cli import run_cli
from tideflow.api.app import create_app
from tideflow.api.services import with_store
from tideflow.api.testserver import serve_app
from tideflow.client import ApiClient, EventRecord
from tideflow.eventstore.gateway import PostgresEventStore
from tideflow.http_binding import encode_batch
from tideflow.settings import Settings
from tideflow.testing import InMemoryTokens, ManualClock

EVENTS = 1_234


class Served:
    def __init__(self, url: str, store: PostgresEventStore, clock: ManualClock, root: Path):
        self.url, self.store, self.clock, self.root = url, store, clock, root


@pytest.fixture
async def served(pool: Any, tmp_path: Path) -> AsyncIterator[tuple[Served, dict[str, str]]]:
    tokens = InMemoryTokens()
    admin = tokens.add("admin")
    clock = ManualClock()
    store = PostgresEventStore(
        pool, segment_size=1000, clock=clock, retention_interval=None, archive_interval=None
    )
    root = tmp_path / "archive-root"
    app = create_app(Settings(archive_root=root), with_store(store, tokens=tokens))
    async with serve_app(app) as url:
        yield (
            Served(url, store, clock, root),
            {
                "admin": admin,
                "writer": tokens.add("writer", ("read", "publish:*", "deploy", "run")),
            },
        )
        clock.advance(3600)  # a long poll left by a killed `events tail` waits on this clock


def problem(response: httpx.Response, status: int, path: str | None) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body.get("path") == path, body
    assert "Traceback" not in response.text
    return str(body["detail"])


async def test_archive_is_set_by_admins_at_a_checked_location(
    served: tuple[Served, dict[str, str]],
) -> None:
    server, tokens = served
    body = {"name": "audit", "segmentEvents": 100, "archive": {"after": "P7D", "to": "audit"}}
    async with httpx.AsyncClient(base_url=server.url, headers=bearer(tokens["writer"])) as http:
        assert (await http.post("/buses", json=body)).status_code == 403
    async with httpx.AsyncClient(base_url=server.url, headers=bearer(tokens["admin"])) as http:
        outside = {**body, "archive": {"after": "P7D", "to": "/etc/tideflow"}}
        assert "archive root" in problem(await http.post("/buses", json=outside), 400, "archive.to")
        loopback = {**body, "archive": {"after": "P7D", "to": "s3://bucket/x"}}
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            detail = problem(await http.post("/buses", json=loopback), 400, "archive.to")
        assert "egress policy" in detail
        bad_after = {**body, "archive": {"after": "weekly", "to": "x"}}
        problem(await http.post("/buses", json=bad_after), 400, "archive.after")
        problem(await http.post("/buses", json={**body, "segmentEvents": 1}), 400, "segmentEvents")
        created = await http.post("/buses", json=body)
        assert created.status_code == 201, created.text
        shown = created.json()
        assert shown["segmentEvents"] == 100
        assert shown["archive"] == {"after": "P7D", "to": str((server.root / "audit").resolve())}


async def test_reads_from_offset_one_go_through_the_archive(
    served: tuple[Served, dict[str, str]],
) -> None:
    server, tokens = served
    sent = [
        {"specversion": "1.0", "id": f"e{i}", "source": "/t", "type": "t", "data": {"i": i}}
        for i in range(1, EVENTS + 1)
    ]
    async with httpx.AsyncClient(base_url=server.url, headers=bearer(tokens["admin"])) as http:
        body = {"name": "audit", "segmentEvents": 100, "archive": {"after": "P1D", "to": "a"}}
        assert (await http.post("/buses", json=body)).status_code == 201
        for start in range(0, EVENTS, 500):
            headers, blob = encode_batch(sent[start : start + 500])
            response = await http.post("/buses/audit/events", headers=headers, content=blob)
            assert response.status_code == 202, response.text
        server.clock.advance(2 * 86400)
        assert await server.store.archive_once() == EVENTS // 100
        tiers = (await http.get("/buses/audit")).json()["tiers"]
        assert tiers["archive"]["events"] == EVENTS // 100 * 100
        assert tiers["live"]["events"] == EVENTS % 100
        assert tiers["archive"]["sizeBytes"] > 0
        assert tiers["archive"]["segments"] == EVENTS // 100

        after, pages = 0, []
        while True:
            page = (await http.get("/buses/audit/events", params={"after": after})).json()
            if not page["events"]:
                break
            pages.extend(page["events"])
            after = page["next"]
        assert [r["offset"] for r in pages] == list(range(1, EVENTS + 1))
        assert [r["event"] for r in pages] == sent

    tailed: list[EventRecord] = []
    async with ApiClient(server.url, token=tokens["admin"]) as client:
        async for record in client.tail("audit", 0):  # what `events tail --from 1` runs
            tailed.append(record)
            if len(tailed) == EVENTS:
                break
    assert [r["offset"] for r in tailed] == list(range(1, EVENTS + 1))


@pytest.mark.slow
@pytest.mark.timeout(180)  # two CLI processes and a server at this machine's load
async def test_the_cli_creates_an_archived_bus_and_tails_it_from_offset_one(
    served: tuple[Served, dict[str, str]],
) -> None:
    server, tokens = served
    create = ("buses", "create", "audit", "--segment-events", "100")
    code, _, err = await run_cli(
        server.url, *create, "--archive-after", "P1D", token=tokens["admin"]
    )
    assert code == 2
    assert "--archive-after and --archive-to go together" in err
    code, out, err = await run_cli(
        server.url, *create, "--archive-after", "P1D", "--archive-to", "a", token=tokens["admin"]
    )
    assert code == 0, err
    assert json.loads(out)["archive"]["after"] == "P1D"
    sent = [
        {"specversion": "1.0", "id": f"c{i}", "source": "/cli", "type": "t", "data": i}
        for i in range(1, 251)
    ]
    await server.store.append("audit", sent)
    server.clock.advance(2 * 86400)
    assert await server.store.archive_once() == 2

    tail = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tideflow.cli",
        "events",
        "tail",
        "audit",
        "--from",
        "1",
        env={**os.environ, "TIDEFLOW_SERVER": server.url, "TIDEFLOW_TOKEN": tokens["admin"]},
        stdout=asyncio.subprocess.PIPE,
    )
    assert tail.stdout is not None
    try:
        lines = [json.loads(await asyncio.wait_for(tail.stdout.readline(), 60)) for _ in sent]
    finally:
        tail.kill()
        await tail.wait()
    assert [line["offset"] for line in lines] == list(range(1, 251))
    assert [line["event"] for line in lines] == sent
