"""The machine's brokers for the connector tests: for each, the config of a source and
a sink on fresh channels, a publisher into the source's channel (with record ids) and
the messages the sink wrote, read back by the broker's own client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import aio_pika
import aiomqtt
import nats
import redis.asyncio as aioredis
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tideflow.api.testserver import free_port

REDIS = "redis://127.0.0.1:6379/0"
NATS = "nats://127.0.0.1:4222"
AMQP = "amqp://guest:guest@127.0.0.1:5672/"
MQTT = "mqtt://127.0.0.1:1883"

PORTS = {"nats": 4222, "amqp": 5672, "mqtt": 1883, "redis": 6379}
"""Each broker's port on 127.0.0.1."""

Publish = Callable[[str, dict[str, Any]], Awaitable[None]]
"""publish(record id, payload) into the source's channel."""


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


async def end_mqtt_session(client_id: str, port: int = 1883) -> None:
    """Remove the broker's persistent session of ``client_id`` (a source's, left by a test).

    A connection with a clean start and no session expiry replaces the session and
    ends it at its disconnect, so test runs leave no queue behind on the shared broker.
    """
    client = aiomqtt.Client(
        "127.0.0.1",
        port,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=True,
    )
    async with client:
        pass


def mosquitto_binary() -> str | None:
    """The machine's ``mosquitto`` executable, if it has one."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto",) if os.access(p, os.X_OK)), None
    )


@contextlib.contextmanager
def private_mosquitto(folder: Path) -> Iterator[int]:
    """A Mosquitto of this test's own on a free port, keeping every message queued for an
    offline persistent session (``max_queued_messages 0``; the shared broker keeps 1,000,
    its default, and drops the rest after acknowledging them to the publisher)."""
    binary = mosquitto_binary()
    if binary is None:
        raise RuntimeError("no mosquitto executable on this machine")
    port = free_port()
    config = folder / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
        "max_inflight_messages 100\npersistence false\n"
    )
    log = (folder / "mosquitto.log").open("wb")
    process = subprocess.Popen([binary, "-c", str(config)], stdout=log, stderr=log)
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
                break
            if process.poll() is not None:
                raise RuntimeError(f"mosquitto exited; see {folder / 'mosquitto.log'}")
            time.sleep(0.05)  # a process starting: no clock of ours to inject
        yield port
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@asynccontextmanager
async def mqtt_broker(
    run: str, port: int = 1883
) -> AsyncIterator[tuple[dict[str, Any], dict[str, Any], Publish, list[Any]]]:
    topic_in, topic_out = f"orders/{run}", f"accepted/{run}"
    received: list[Any] = []
    url = f"mqtt://127.0.0.1:{port}"
    client = aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5)
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

        # a client id of this run's own: a second connection with one id (another run on
        # the shared broker) would take the session, and its messages, over
        client_id = f"tideflow-orders-{run}"
        try:
            yield (
                {"url": url, "topic": topic_in, "clientId": client_id},
                {"url": url, "topic": topic_out, "idle": 0.5},
                publish,
                received,
            )
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await end_mqtt_session(client_id, port)


@asynccontextmanager
async def redis_broker(
    run: str,
) -> AsyncIterator[tuple[dict[str, Any], dict[str, Any], Publish, list[Any]]]:
    """Redis streams (the sink's output is not collected: read it with XRANGE)."""
    stream_in, stream_out = f"orders-{run}", f"accepted-{run}"
    client: Any = aioredis.from_url(REDIS)

    async def publish(record_id: str, payload: dict[str, Any]) -> None:
        await client.xadd(stream_in, {"data": json.dumps(payload)})

    try:
        yield (
            {"url": REDIS, "stream": stream_in, "interval": 0.2},
            {"url": REDIS, "stream": stream_out, "idle": 0.5},
            publish,
            [],
        )
    finally:
        await client.delete(stream_in, stream_out)
        await client.aclose()


BROKERS: dict[str, Callable[[str], AbstractAsyncContextManager[Any]]] = {
    "nats": nats_broker,
    "amqp": amqp_broker,
    "mqtt": mqtt_broker,
    "redis": redis_broker,
}
"""Each broker's channels, by connector type."""


def connections_to(pid: int, port: int) -> int:
    """Established TCP connections process ``pid`` holds to ``127.0.0.1:port``: the
    connector's own socket count, for brokers that cannot list their clients here
    (NATS without its monitoring port). Read from ``/proc``: the sockets among the
    process's file descriptors, matched against the kernel's TCP table."""
    inodes: set[str] = set()
    fds = Path(f"/proc/{pid}/fd")
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):  # closed while we look
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    wanted = f"0100007F:{port:04X}"  # 127.0.0.1, little-endian, and the port in hex
    count = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        established = fields[3] == "01"
        if established and fields[2] == wanted and fields[9] in inodes:
            count += 1
    return count


def rabbitmq_connections(name: str) -> int:
    """Connections RabbitMQ itself lists under the connection name ``name`` (``rabbitmqctl
    list_connections``: the broker's side of a sink's scale-to-zero)."""
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "client_properties"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return listed.stdout.count(f'{{"connection_name","{name}"}}')
