"""NATS JetStream, AMQP (RabbitMQ) and MQTT (Mosquitto) connectors through a real
``tideflow serve`` and the machine's brokers.

For each broker: orders published with their own ids become events (the source),
the order workflow starts on each and produces an accepted event, and the sink of the
same broker publishes one message per accepted event, read back by the broker's own
client. An order published twice with the same id is one event on the bus (dedup by
the record's id), and the source's status counts what it appended.

Each broker's sink also scales from zero: with nothing to write it holds no connection
(the serving process's own sockets to the broker's port, counted from ``/proc``), the
first event connects it, a burst takes its writes in flight past one, and after its idle
period it is back to zero, as its status and ``/metrics`` say.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from tests.support.brokers import AMQP, BROKERS, PORTS, connections_to, rabbitmq_connections
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


@pytest.mark.parametrize("kind", ["amqp", "mqtt", "nats"])
async def test_a_sink_scales_from_zero_and_back(database: str, tmp_path: Path, kind: str) -> None:
    run = ids.new_id()[:8]
    name = f"{kind}-out"
    async with (
        BROKERS[kind](run) as (_source_config, sink_config, _publish, received),
        served(database, tmp_path) as server,
        server.async_client() as http,
    ):
        pid, port = server.process.pid, PORTS[kind]
        assert connections_to(os.getpid(), port) >= 1  # the count sees this test's own client
        await create_connector(http, {
            "name": name, "kind": "sink", "type": kind, "bus": "default",
            "config": sink_config, "mapping": ".data",
        })  # fmt: skip
        assert connections_to(pid, port) == 0  # created, nothing to write: no connection

        async def at_zero() -> None:
            """No connection of the sink, from the serving process's side and, where the
            broker can list its clients by name (RabbitMQ), from the broker's."""
            assert connections_to(pid, port) == 0
            if kind == "amqp":
                listed = await asyncio.to_thread(rabbitmq_connections, f"tideflow-sink-{name}")
                assert listed == 0

        if kind == "amqp":  # the broker's list sees a named connection (this test's own)
            probe = await aio_pika.connect(AMQP, client_properties={"connection_name": f"p-{run}"})
            try:
                assert await asyncio.to_thread(rabbitmq_connections, f"p-{run}") == 1
            finally:
                await probe.close()
        await at_zero()

        async def post(first: int, count: int) -> None:
            batch = [
                {"specversion": "1.0", "id": f"{run}-{n}", "source": "/test", "type": "t",
                 "data": {"n": n}}
                for n in range(first, first + count)
            ]  # fmt: skip
            posted = await http.post(
                "/events", content=json.dumps(batch),
                headers={"content-type": "application/cloudevents-batch+json"},
            )  # fmt: skip
            assert posted.status_code == 202, posted.text

        async def out(count: int) -> list[Any] | None:
            return received if len(received) >= count else None

        async def idle() -> dict[str, Any] | None:
            shown = (await http.get(f"/connectors/{name}")).json()
            return shown if not shown["activity"]["connected"] else None

        await post(0, 1)
        await eventually(lambda: out(1))
        shown = await eventually(idle)
        before = list(shown["activity"]["decisions"])
        assert [d["decision"] for d in before] == ["connect", "scale up", "scale to zero"]
        assert before[1]["inFlight"] == 1  # one event: one write in flight
        await at_zero()

        await post(1, 40)  # a burst
        await eventually(lambda: out(41))
        assert sorted(m["n"] for m in received) == list(range(41))
        shown = await eventually(idle)
        burst = shown["activity"]["decisions"][len(before) :]
        assert burst[0]["decision"] == "connect"  # from zero again
        assert max(d.get("inFlight", 0) for d in burst) >= 2, burst
        assert burst[-1]["decision"] == "scale to zero"
        await at_zero()
        metrics = (await http.get("/metrics")).text
        assert f'tideflow_connector_connected{{connector="{name}"}} 0.0' in metrics
        assert f'tideflow_connector_events_total{{connector="{name}",direction="out"}} 41.0' in (
            metrics
        )
