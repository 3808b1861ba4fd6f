"""PostgreSQL connectors through a real ``tideflow serve``.

Rows inserted into a table become events on the default bus (source, by a cursor column), a
deployed workflow starts on each and produces an accepted event, and a table sink
writes one row per accepted event. A restart resumes the source from its stored
position: rows read before it are not appended again, rows inserted while the server
was down arrive after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
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


@pytest.fixture
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    name = f"t_{_db_names[0]}_connectors_pg"
    async with copied_database(pg_server_url, pg_template, name) as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(
                "CREATE TABLE shop_orders (id bigint PRIMARY KEY, total numeric NOT NULL);"
                "CREATE TABLE shop_accepted (order_id bigint PRIMARY KEY, total numeric,"
                " note text)"
            )
        finally:
            await conn.close()
        yield url


async def _insert(url: str, *orders: tuple[int, float]) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.executemany("INSERT INTO shop_orders VALUES ($1, $2)", orders)
    finally:
        await conn.close()


async def _accepted(url: str) -> dict[int, float]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT order_id, total FROM shop_accepted")
    finally:
        await conn.close()
    return {r["order_id"]: float(r["total"]) for r in rows}


def _source(url: str) -> dict[str, Any]:
    return {
        "name": "shop-orders",
        "kind": "source",
        "type": "postgres",
        "bus": "default",
        "config": {"url": url, "table": "shop_orders", "cursor": "id", "interval": 0.1},
        "mapping": '{type: "com.example.order"}',
    }


def _sink(url: str) -> dict[str, Any]:
    return {
        "name": "accepted-rows",
        "kind": "sink",
        "type": "postgres",
        "bus": "default",
        "config": {"url": url, "table": "shop_accepted", "upsert": ["order_id"], "idle": 0.5},
        "mapping": "{order_id: .data.orderId, total: .data.total}",
        "subscription": {"filters": [{"exact": {"type": "com.example.order.accepted"}}]},
    }


async def _wait_rows(url: str, count: int) -> dict[int, float]:
    async def enough() -> dict[int, float] | None:
        rows = await _accepted(url)
        return rows if len(rows) >= count else None

    found: dict[int, float] = await eventually(enough)
    return found


async def test_rows_in_events_workflow_rows_out_and_resume_after_restart(
    database: str, tmp_path: Path
) -> None:
    flows = write_order_workflow(tmp_path / "flows", "/connectors/shop-orders")
    await _insert(database, (1, 10.5), (2, 20.0))
    async with (
        served(database, tmp_path, "--workflows", str(flows)) as server,
        server.async_client() as http,
    ):
        await create_connector(http, _sink(database))
        source = await create_connector(http, _source(database))
        assert source["config"]["table"] == "shop_orders"
        assert await _wait_rows(database, 2) == {1: 10.5, 2: 20.0}
        await _insert(database, (3, 30.0))
        assert (await _wait_rows(database, 3))[3] == 30.0
        shown = await _shown(http, "shop-orders")
        assert shown["position"] == {"cursor": 3, "type": "integer"}
        assert shown["events"] == 3

        async def sink_caught_up() -> dict[str, Any] | None:
            sink = await _shown(http, "accepted-rows")
            return sink if sink["lag"] == 0 and sink["events"] == 3 else None

        sink = await eventually(sink_caught_up)
        assert sink["activity"]["decisions"][0]["decision"] == "connect"
    await _insert(database, (4, 40.0))  # while the server is down
    async with (
        served(database, tmp_path, "--workflows", str(flows)) as server,
        server.async_client() as http,
    ):
        assert (await _wait_rows(database, 4))[4] == 40.0
        events = await bus_events(http, "default")
    events = [e for e in events if e["source"] == "/connectors/shop-orders"]
    ids = [e["id"] for e in events]
    assert ids == ["shop_orders:1", "shop_orders:2", "shop_orders:3", "shop_orders:4"]
    assert events[0]["data"] == {"id": 1, "total": "10.5"}


async def _shown(http: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await http.get(f"/connectors/{name}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
