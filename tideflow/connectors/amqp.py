"""AMQP 0-9-1 connectors, for RabbitMQ (``pip install 'tideflow[amqp]'``).

**Source** (``config``: ``url`` such as ``amqp://guest:guest@127.0.0.1:5672/``,
``queue`` (declared durable), ``prefetch`` default 100, ``mode``): consumes with
manual acknowledgement and acknowledges a message only after its event is committed;
a message not acknowledged when the connection drops is redelivered by the broker. The
event id is the message's ``message_id`` property: a redelivered message dedups to
the same event. A message without one gets a new id each time it is delivered
(at-least-once: a redelivery after a crash is then a second event).

**Sink** (``config``: ``url``, and ``queue`` (declared durable, published through the
default exchange) or ``exchange`` with ``routingKey``): publishes each message
persistent, with ``message_id`` set to the event's id and ``content_type``
``application/json``, and waits for the broker's publisher confirm.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aio_pika

from tideflow.connectors.base import Emit, SourceContext, config_number, config_text
from tideflow.connectors.mapping import Record, decode_body, encode_message


class QueueSource:
    """Messages of a queue, acknowledged after commit (module docs)."""

    def __init__(self, context: SourceContext) -> None:
        config = context.config
        self._context = context
        self._url = config_text(config, "url")
        self._queue = config_text(config, "queue")
        self._prefetch = int(config_number(config, "prefetch", 100, 1))
        self._wait = config_number(config, "interval", 1.0, 0.01)

    async def run(self, emit: Emit) -> None:
        """Consume until cancelled (or, scheduled, until the queue is empty)."""
        connection = await aio_pika.connect(self._url)
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self._prefetch)
            queue = await channel.declare_queue(self._queue, durable=True)
            arrived: asyncio.Queue[Any] = asyncio.Queue()
            await queue.consume(arrived.put, no_ack=False)
            self._context.on_connection(True)
            while True:
                batch = await self._next_batch(arrived)
                if not batch:
                    if self._context.scheduled:
                        return
                    continue
                await emit([self._record(m) for m in batch], None)
                await batch[-1].ack(multiple=True)
        finally:
            await connection.close()

    async def _next_batch(self, arrived: asyncio.Queue[Any]) -> list[Any]:
        """One message (waiting up to ``interval``), then whatever else has arrived."""
        try:
            async with asyncio.timeout(self._wait):
                batch = [await arrived.get()]
        except TimeoutError:
            return []
        while len(batch) < self._prefetch and not arrived.empty():
            batch.append(arrived.get_nowait())
        return batch

    def _record(self, message: Any) -> Record:
        data, data_base64 = decode_body(message.body)
        headers = {str(k): str(v) for k, v in (message.headers or {}).items()}
        return Record(
            id=message.message_id or None,
            data=data,
            data_base64=data_base64,
            channel=self._queue,
            headers=headers,
        )


class QueueSink:
    """Publishes each message, confirmed (module docs)."""

    def __init__(self, config: Mapping[str, Any], connection_name: str = "") -> None:
        self._url = config_text(config, "url")
        self._name = connection_name
        queue, exchange = config.get("queue"), config.get("exchange")
        if (queue is None) == (exchange is None):
            from tideflow.errors import InvalidArgument

            raise InvalidArgument(
                "an amqp sink needs exactly one of config.queue or config.exchange",
                argument="config.queue",
            )
        self._queue = None if queue is None else config_text(config, "queue")
        self._exchange_name = None if exchange is None else config_text(config, "exchange")
        self._routing_key = config.get("routingKey") or self._queue or ""
        self._connection: Any = None
        self._exchange: Any = None

    async def open(self) -> None:
        """Connect; declare the queue (or find the exchange)."""
        properties: dict[str, Any] = {"connection_name": self._name} if self._name else {}
        connection = await aio_pika.connect(self._url, client_properties=properties)
        try:
            channel = await connection.channel(publisher_confirms=True)
            if self._queue is not None:
                await channel.declare_queue(self._queue, durable=True)
                exchange = channel.default_exchange
            else:
                exchange = await channel.get_exchange(str(self._exchange_name))
        except BaseException:
            await connection.close()
            raise
        self._connection, self._exchange = connection, exchange

    async def write(self, message: Any, event: Mapping[str, Any]) -> None:
        """Publish one persistent message and wait for its confirm."""
        if self._exchange is None:
            raise ConnectionError("the sink is not open")
        body = aio_pika.Message(
            encode_message(message),
            message_id=str(event.get("id", "")),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self._exchange.publish(body, routing_key=str(self._routing_key))

    async def close(self) -> None:
        """Disconnect."""
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None:
            await connection.close()


def make_source(context: SourceContext) -> QueueSource:
    """The source of an ``amqp`` connector."""
    return QueueSource(context)


def make_sink(name: str, config: Mapping[str, Any]) -> QueueSink:
    """The sink of an ``amqp`` connector (its connection named ``tideflow-sink-<name>``,
    as ``rabbitmqctl list_connections client_properties`` shows it)."""
    return QueueSink(config, f"tideflow-sink-{name}")
