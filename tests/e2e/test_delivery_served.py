"""Delivery end to end through a real ``tideflow serve`` process.

CloudEvents go in over HTTP, the subscription is made with the real CLI, a
real sink on 127.0.0.1 fails on purpose (404 for one event, 503 for another
until its retries run out), the dead letters are read back over HTTP, and a
restart of the server neither loses nor repeats a delivered event.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cli import run_cli as cli
from tests.support.served import LOCAL, Served, copied_database, serve_process
from tests.support.sink import Sink, running_sink
from tideflow.http_binding import encode_binary

pytestmark = pytest.mark.slow


@pytest.fixture
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    name = f"t_{_db_names[0]}_delivery_served"
    async with copied_database(pg_server_url, pg_template, name) as url:
        yield url


async def serving(database: str, home: Path) -> tuple[Served, Any]:
    """Start ``tideflow serve`` without blocking the loop the sink runs on."""
    manager = serve_process(database, home, *LOCAL)
    served = await asyncio.to_thread(manager.__enter__)
    return served, manager


async def stopped(manager: Any) -> None:
    await asyncio.to_thread(manager.__exit__, None, None, None)


def ev(i: int) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"e-{i}",
        "source": "/shop",
        "type": "com.example.order",
        "region": "eu",
        "data": {"n": i},
    }


def plan(path: str, headers: dict[str, str], attempt: int) -> int:
    return {"e-2": 404, "e-3": 503}.get(headers["ce-id"], 200)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while not (result := await check()):  # noqa: ASYNC110 - the state is in the server
            await asyncio.sleep(0.05)
    return result


async def test_delivery_dead_letters_and_restart_through_tideflow_serve(
    database: str, tmp_path: Path
) -> None:
    async with running_sink() as sink:
        sink.plan = plan
        served, manager = await serving(database, tmp_path)
        try:
            async with served.async_client() as http:
                sub_id = await _subscribe(http, served, sink)
                for i in range(1, 5):
                    await _post(http, ev(i))
                shown = await _committed(http, sub_id, 4)
                assert (shown["delivered"], shown["deadLettered"], shown["failed"]) == (2, 2, 3)
                letters = (await http.get("/buses/orders.deadletter/events")).json()["events"]
                reasons = {
                    e["event"]["deadletterid"]: e["event"]["deadletterreason"] for e in letters
                }
                assert reasons == {
                    "e-2": "HTTP 404 on the first attempt",
                    "e-3": "HTTP 503 after 2 attempts",
                }
        finally:
            await stopped(manager)
        served, manager = await serving(database, tmp_path)
        try:
            async with served.async_client() as http:
                await _post(http, ev(5))
                await _committed(http, sub_id, 5)
        finally:
            await stopped(manager)
        assert sorted(sink.ids(ok=True)) == ["e-1", "e-4", "e-5"]  # each once: no repeat
        assert sink.ids().count("e-3") == 2  # first attempt and one retry, none after restart


async def _subscribe(http: httpx.AsyncClient, served: Served, sink: Sink) -> str:
    assert (await http.post("/buses", json={"name": "orders"})).status_code == 201
    code, out, err = await cli(
        served.url,
        "subscriptions", "create", "--bus", "orders", "--sink", sink.url + "/hook",
        "--sql", "region = 'eu'",
        "--delivery", json.dumps({"retry": 1, "backoffDelay": "PT0.2S"}),
        token=served.token,
    )  # fmt: skip
    assert code == 0, err
    sub_id: str = json.loads(out)["id"]
    return sub_id


async def _post(http: httpx.AsyncClient, event: dict[str, Any]) -> None:
    headers, body = encode_binary(event)
    response = await http.post("/buses/orders/events", headers=headers, content=body)
    assert response.status_code in (200, 201, 202), response.text


async def _committed(http: httpx.AsyncClient, sub_id: str, offset: int) -> dict[str, Any]:
    async def reached() -> Any:
        body = (await http.get(f"/subscriptions/{sub_id}")).json()
        return body if body["committedOffset"] >= offset else None

    result: dict[str, Any] = await eventually(reached)
    return result
