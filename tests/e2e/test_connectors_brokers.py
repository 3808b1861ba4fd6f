"""NATS JetStream, AMQP (RabbitMQ) and MQTT (Mosquitto) connectors through a real
``tideflow serve`` and the machine's brokers.

For each broker: orders published with their own ids become events (the source),
the order workflow starts on each and produces an accepted event, and the sink of the
same broker publishes one message per accepted event, read back by the broker's own
client. An order published twice with the same id is one event on the bus (dedup by
the record's id), and the source's status counts what it appended.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.brokers import BROKERS
from tests.support.connectors import (
    bus_events,
    create_connector,
    eventually,
    served,
    write_order_workflow,
)
from tests.support.served import copied_database
from tideflow import ids

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    async with copied_database(pg_server_url, pg_template, f"t_{_db_names[0]}_brokers") as url:
        yield url


@pytest.mark.parametrize("kind", ["amqp", "mqtt", "nats"])
async def test_records_in_workflow_messages_out(database: str, tmp_path: Path, kind: str) -> None:
    run = ids.new_id()[:8]
    source_name = f"{kind}-orders"
    flows = write_order_workflow(tmp_path / "flows", f"/connectors/{source_name}")
    async with (
        BROKERS[kind](run) as (source_config, sink_config, publish, received),
        served(database, tmp_path, "--workflows", str(flows)) as server,
        server.async_client() as http,
    ):
        await create_connector(http, {
            "name": f"{kind}-accepted", "kind": "sink", "type": kind, "bus": "default",
            "config": sink_config, "mapping": ".data",
            "subscription": {"filters": [{"exact": {"type": "com.example.order.accepted"}}]},
        })  # fmt: skip
        await create_connector(http, {
            "name": source_name, "kind": "source", "type": kind, "bus": "default",
            "config": source_config, "mapping": '{type: "com.example.order"}',
        })  # fmt: skip

        async def connected() -> bool:
            shown = (await http.get(f"/connectors/{source_name}")).json()
            return bool(shown["activity"]["connected"])

        await eventually(connected)
        await publish(f"order-1-{run}", {"id": 1, "total": 10})
        await publish(f"order-2-{run}", {"id": 2, "total": 20})
        await publish(f"order-2-{run}", {"id": 2, "total": 20})  # the same record again

        async def all_out() -> list[Any] | None:
            return received if len(received) >= 2 else None

        await eventually(all_out)
        assert sorted(m["orderId"] for m in received) == [1, 2]
        events = [
            e
            for e in await bus_events(http, "default")
            if e["source"] == f"/connectors/{source_name}"
        ]
        assert sorted(e["id"] for e in events) == [f"order-1-{run}", f"order-2-{run}"]
        shown = (await http.get(f"/connectors/{source_name}")).json()
        assert shown["events"] >= 2
        assert shown["lastError"] is None
