"""Redis Streams connectors through a real ``tideflow serve`` and the machine's Redis.

Entries added to a stream become events (source, consumer group, acknowledged after
commit), the order workflow starts on each and produces an accepted event, and a
stream sink adds one entry per accepted event. The sink then scales to zero: after
its idle period Redis lists no connection of it (``CLIENT LIST``), the next event
connects it again, a burst scales its writes in flight up, and idle brings it back to
zero.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.support.connectors import create_connector, eventually, served, write_order_workflow
from tests.support.served import copied_database
from tideflow import ids

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    async with copied_database(pg_server_url, pg_template, f"t_{_db_names[0]}_redis") as url:
        yield url


@pytest.fixture
async def client() -> AsyncIterator[Any]:
    connection: Any = aioredis.from_url(REDIS)
    try:
        yield connection
    finally:
        await connection.aclose()


async def _sink_connections(client: Any, name: str) -> int:
    found = await client.client_list()
    return sum(1 for c in found if c.get("name") == f"tideflow-sink-{name}")


async def test_stream_in_workflow_stream_out_and_scale_to_zero(
    database: str, tmp_path: Path, client: Any
) -> None:
    run = ids.new_id()[:8]
    orders, accepted = f"orders-{run}", f"accepted-{run}"
    flows = write_order_workflow(tmp_path / "flows", "/connectors/redis-orders")
    for n in (1, 2):
        await client.xadd(orders, {"data": json.dumps({"id": n, "total": n * 10})})
    async with (
        served(database, tmp_path, "--workflows", str(flows)) as server,
        server.async_client() as http,
    ):
        await create_connector(http, {
            "name": "redis-accepted", "kind": "sink", "type": "redis", "bus": "default",
            "config": {"url": REDIS, "stream": accepted, "idle": 0.5},
            "mapping": ".data",
            "subscription": {"filters": [{"exact": {"type": "com.example.order.accepted"}}]},
        })  # fmt: skip
        await create_connector(http, {
            "name": "redis-orders", "kind": "source", "type": "redis", "bus": "default",
            "config": {"url": REDIS, "stream": orders, "interval": 0.2},
            "mapping": '{type: "com.example.order"}',
        })  # fmt: skip

        async def written(count: int) -> list[Any] | None:
            entries = await client.xrange(accepted)
            return entries if len(entries) >= count else None

        entries = await eventually(lambda: written(2))
        assert sorted(json.loads(f[b"data"])["orderId"] for _, f in entries) == [1, 2]
        pending = await client.xpending(orders, "tideflow-redis-orders")
        assert pending["pending"] == 0  # acknowledged after the commit

        async def idle() -> dict[str, Any] | None:
            shown = (await http.get("/connectors/redis-accepted")).json()
            return shown if not shown["activity"]["connected"] else None

        shown = await eventually(idle)
        assert [d["decision"] for d in shown["activity"]["decisions"]][-1] == "scale to zero"
        assert await _sink_connections(client, "redis-accepted") == 0
        metrics = (await http.get("/metrics")).text
        assert 'tideflow_connector_connected{connector="redis-accepted"} 0.0' in metrics
        assert (
            'tideflow_connector_events_total{connector="redis-orders",direction="in"} 2.0'
            in metrics
        )

        await client.xadd(orders, {"data": json.dumps({"id": 3, "total": 30})})
        entries = await eventually(lambda: written(3))
        assert json.loads(entries[-1][1][b"data"])["orderId"] == 3
        shown = (await http.get("/connectors/redis-accepted")).json()
        assert [d["decision"] for d in shown["activity"]["decisions"]].count("connect") == 2

        # a burst: 40 accepted events at once scale the sink's writes up, then back to zero
        await eventually(idle)
        burst = [
            {"specversion": "1.0", "id": f"burst-{n}", "source": "/test", "data": {"orderId": n},
             "type": "com.example.order.accepted"}
            for n in range(100, 140)
        ]  # fmt: skip
        posted = await http.post(
            "/events", content=json.dumps(burst),
            headers={"content-type": "application/cloudevents-batch+json"},
        )  # fmt: skip
        assert posted.status_code == 202, posted.text
        await eventually(lambda: written(43))
        shown = await eventually(idle)
        decisions = list(shown["activity"]["decisions"])
        # one event at a time before the burst: only the burst takes the writes past 1
        peak = max(d.get("inFlight", 0) for d in decisions)
        assert peak >= 2, decisions
        assert decisions[-1]["decision"] == "scale to zero"
        assert await _sink_connections(client, "redis-accepted") == 0
    await client.delete(orders, accepted)
