"""AsyncAPI calls (0.8 ``asyncapi`` functions, 1.0 ``call: asyncapi``) through the
machine's brokers (Mosquitto, RabbitMQ, NATS) and an HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import aiomqtt
import nats
import pytest

from tests.support.brokers import AMQP, NATS, end_mqtt_session
from tests.support.services import Services, start_services
from tideflow.connectors.messaging import ConnectorBrokers
from tideflow.errors import FunctionCallError
from tideflow.ids import new_id
from tideflow.runtime.functions import FunctionInvoker, Invocation
from tideflow.runtime.functions.messaging import DSL1_TYPE

DOC = """
asyncapi: 2.6.0
info: {title: Lights, version: 1.0.0}
servers:
  mosquitto: {url: '127.0.0.1:1883', protocol: mqtt}
  rabbit: {url: 'amqp://guest:guest@127.0.0.1:5672/', protocol: amqp}
  nats: {url: 'nats://127.0.0.1:4222', protocol: nats}
  web: {url: 'BASE', protocol: http}
  kafka: {url: '127.0.0.1:9092', protocol: kafka}
channels:
  lights/RUN:
    servers: [mosquitto]
    publish: {operationId: sendLight}
    subscribe: {operationId: onLight}
  orders-RUN:
    servers: [rabbit]
    publish: {operationId: sendOrder}
    subscribe: {operationId: onOrder}
  metrics.RUN:
    servers: [nats]
    publish: {operationId: sendMetric}
  api/pets:
    servers: [web]
    publish: {operationId: sendEcho}
  logs:
    servers: [kafka]
    publish: {operationId: sendLog}
"""


BROKERS = ConnectorBrokers()


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with start_services() as running:
        yield running


@pytest.fixture
def run_id() -> str:
    return new_id()[:12]


@pytest.fixture
def folder(tmp_path: Path, run_id: str, services: Services) -> Path:
    text = DOC.replace("RUN", run_id).replace("BASE", services.base_url)
    (tmp_path / "lights.yaml").write_text(text)
    return tmp_path


def call(folder: Path, operation: str, arguments: Any, **kwargs: Any) -> Invocation:
    return Invocation(
        name="f",
        type=kwargs.pop("type", "asyncapi"),
        operation=f"lights.yaml#{operation}",
        arguments=arguments,
        base_dir=folder,
        idempotency_key=kwargs.pop("key", "instance/f"),
        **kwargs,
    )


async def test_publish_to_mqtt_through_the_connector_sink(folder: Path, run_id: str) -> None:
    async with aiomqtt.Client("127.0.0.1", 1883) as reader:
        await reader.subscribe(f"lights/{run_id}", qos=1)
        async with FunctionInvoker(brokers=BROKERS) as invoker:
            result = await invoker.invoke(call(folder, "sendLight", {"lumens": 3}))
        message = await asyncio.wait_for(anext(reader.messages), 30)
    assert result is None
    assert json.loads(message.payload) == {"lumens": 3}


async def test_receive_from_mqtt_waits_for_the_message(folder: Path, run_id: str) -> None:
    key = f"instance-{run_id}/on"
    async with aiomqtt.Client("127.0.0.1", 1883) as writer:  # retained: kept for a new subscriber
        await writer.publish(f"lights/{run_id}", b'{"lumens": 7}', qos=1, retain=True)
    try:
        async with FunctionInvoker(brokers=BROKERS) as invoker:
            got = await invoker.invoke(call(folder, "onLight", {}, key=key, timeout=30))
    finally:
        async with aiomqtt.Client("127.0.0.1", 1883) as writer:
            await writer.publish(f"lights/{run_id}", b"", qos=1, retain=True)
        await end_mqtt_session(f"tideflow-asyncapi-{_session(key)}")
    assert got == {"lumens": 7}


def _session(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()[:20]


async def test_amqp_send_then_a_dsl1_call_receives_an_amount(folder: Path, run_id: str) -> None:
    queue = f"orders-{run_id}"
    try:
        async with FunctionInvoker(brokers=BROKERS) as invoker:
            for number in (1, 2):
                await invoker.invoke(call(folder, "sendOrder", {"n": number}, key=f"k{number}"))
            got = await invoker.invoke(
                call(
                    folder,
                    "onOrder",
                    {"operation": "onOrder", "subscription": {"consume": {"amount": 2}}},
                    type=DSL1_TYPE,
                    timeout=30,
                )
            )
    finally:
        connection = await aio_pika.connect(AMQP)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(queue)
    assert got == [{"n": 1}, {"n": 2}]


async def test_dsl1_publish_to_nats_jetstream(folder: Path, run_id: str) -> None:
    subject = f"metrics.{run_id}"
    connection = await nats.connect(NATS)
    js = connection.jetstream()
    try:
        await js.add_stream(name=f"ASYNCAPI_{run_id}", subjects=[subject])
        received: asyncio.Queue[Any] = asyncio.Queue()
        await connection.subscribe(subject, cb=received.put)
        async with FunctionInvoker(brokers=BROKERS) as invoker:
            arguments = {"message": {"payload": {"cpu": 0.5}}, "server": {"name": "nats"}}
            await invoker.invoke(call(folder, "sendMetric", arguments, type=DSL1_TYPE))
        message = await asyncio.wait_for(received.get(), 30)
        assert json.loads(message.data) == {"cpu": 0.5}
        assert message.headers["Nats-Msg-Id"] == "instance/f"
    finally:
        await js.delete_stream(f"ASYNCAPI_{run_id}")
        await connection.close()


async def test_http_server_gets_a_post_to_the_channel(folder: Path, services: Services) -> None:
    async with FunctionInvoker(brokers=BROKERS) as invoker:
        await invoker.invoke(call(folder, "sendEcho", {"name": "Web"}, key=f"k-{folder.name}"))
    assert services.state.idempotency[f"k-{folder.name}"]["name"] == "Web"


@pytest.mark.parametrize(
    ("operation", "arguments", "code", "message"),
    [
        ("sendLog", {}, "NotSupported", "protocol 'kafka' is not one Tideflow sends through"),
        ("sendMetric", {}, "NoStream", "no JetStream stream captures subject"),
        ("sendEcho", {}, "NotSupported", None),
        ("nothing", {}, "UnknownOperation", "has no operation 'nothing'"),
    ],
)
async def test_problems_are_clear(
    folder: Path, operation: str, arguments: Any, code: str, message: str | None
) -> None:
    if message is None:  # receiving over http: not a protocol to receive from
        invocation = call(folder, "onEcho", {}, type="asyncapi")
        text = (
            (folder / "lights.yaml")
            .read_text()
            .replace("publish: {operationId: sendEcho}", "subscribe: {operationId: onEcho}")
        )
        (folder / "lights.yaml").write_text(text)
        message = "protocol 'http' is not one Tideflow receives through (it receives through amqp"
        code = "NotSupported"
    else:
        invocation = call(folder, operation, arguments)
    with pytest.raises(FunctionCallError) as caught:
        async with FunctionInvoker(brokers=BROKERS) as invoker:
            await invoker.invoke(invocation)
    assert caught.value.code == code
    assert message in str(caught.value)


async def test_without_brokers_an_invoker_says_so(folder: Path) -> None:
    with pytest.raises(FunctionCallError) as caught:
        async with FunctionInvoker() as invoker:
            await invoker.invoke(call(folder, "sendLight", {"lumens": 1}))
    assert caught.value.code == "NotSupported"
    assert "reaches no message brokers" in str(caught.value)
