"""NATS JetStream, AMQP (RabbitMQ) and MQTT (Mosquitto) connectors through a real
``tideflow serve`` and the machine's brokers.

For each broker: orders published with their own ids become events (the source),
the order workflow starts on each and produces an accepted event, and the sink of the
same broker publishes one message per accepted event, read back by the broker's own
client. An order published twice with the same id is one event on the bus (dedup by
the record's id), and the source's status counts what it appended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import aio_pika
import aiomqtt
import nats
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.support.connectors import (
    bus_events,
    create_connector,
    eventually,
    served,
    write_order_workflow,
)
from tests.support.served import copied_database
from tideflow import ids

pytestmark = pytest.mark.slow

NATS = "nats://127.0.0.1:4222"
AMQP = "amqp://guest:guest@127.0.0.1:5672/"
MQTT = "mqtt://127.0.0.1:1883"

Publish = Callable[[str, dict[str, Any]], Awaitable[None]]
"""publish(record id, payload) into the source's channel."""


@pytest.fixture
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    async with copied_database(pg_server_url, pg_template, f"t_{_db_names[0]}_brokers") as url:
        yield url


@asynccontextmanager
async def nats_broker(
    run: str,
) -> AsyncIterator[tuple[dict[str, Any], dict[str, Any], Publish, list[Any]]]:
    subject_in, subject_out = f"orders.{run}", f"accepted.{run}"
    nc = await nats.connect(NATS)
    js = nc.jetstream()
    stream = f"TEST_IN_{run}"
    await js.add_stream(name=stream, subjects=[subject_in])
    received: list[Any] = []

    async def collect(msg: Any) -> None:
        received.append(json.loads(msg.data))

    await nc.subscribe(subject_out, cb=collect)

    async def publish(record_id: str, payload: dict[str, Any]) -> None:
        await js.publish(
            subject_in, json.dumps(payload).encode(), headers={"Nats-Msg-Id": record_id}
        )

    try:
        yield (
            {"url": NATS, "subject": subject_in, "stream": stream, "interval": 0.2},
            {"url": NATS, "subject": subject_out, "stream": f"TEST_OUT_{run}", "idle": 0.5},
            publish,
            received,
        )
    finally:
        for name in (stream, f"TEST_OUT_{run}"):
            with contextlib.suppress(Exception):  # a stream never made is fine
                await js.delete_stream(name)
        await nc.close()


@asynccontextmanager
async def amqp_broker(
    run: str,
) -> AsyncIterator[tuple[dict[str, Any], dict[str, Any], Publish, list[Any]]]:
    queue_in, queue_out = f"orders-{run}", f"accepted-{run}"
    connection = await aio_pika.connect(AMQP)
    channel = await connection.channel()
    await channel.declare_queue(queue_in, durable=True)
    out = await channel.declare_queue(queue_out, durable=True)
    received: list[Any] = []

    async def collect(message: Any) -> None:
        async with message.process():
            received.append(json.loads(message.body))

    await out.consume(collect)

    async def publish(record_id: str, payload: dict[str, Any]) -> None:
        await channel.default_exchange.publish(
            aio_pika.Message(json.dumps(payload).encode(), message_id=record_id),
            routing_key=queue_in,
        )

    try:
        yield (
            {"url": AMQP, "queue": queue_in, "interval": 0.2},
            {"url": AMQP, "queue": queue_out, "idle": 0.5},
            publish,
            received,
        )
    finally:
        await channel.queue_delete(queue_in)
        await channel.queue_delete(queue_out)
        await connection.close()


@asynccontextmanager
async def mqtt_broker(
    run: str,
) -> AsyncIterator[tuple[dict[str, Any], dict[str, Any], Publish, list[Any]]]:
    topic_in, topic_out = f"orders/{run}", f"accepted/{run}"
    received: list[Any] = []
    client = aiomqtt.Client("127.0.0.1", 1883, protocol=aiomqtt.ProtocolVersion.V5)
    async with client:
        await client.subscribe(topic_out, qos=1)

        async def collect() -> None:
            async for message in client.messages:
                received.append(json.loads(bytes(message.payload)))

        task = asyncio.create_task(collect())

        async def publish(record_id: str, payload: dict[str, Any]) -> None:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.UserProperty = [("id", record_id)]
            await client.publish(topic_in, json.dumps(payload), qos=1, properties=properties)

        try:
            yield (
                {"url": MQTT, "topic": topic_in},
                {"url": MQTT, "topic": topic_out, "idle": 0.5},
                publish,
                received,
            )
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


BROKERS: dict[str, Callable[[str], AbstractAsyncContextManager[Any]]] = {
    "nats": nats_broker,
    "amqp": amqp_broker,
    "mqtt": mqtt_broker,
}


@pytest.mark.parametrize("kind", sorted(BROKERS))
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
