"""MQTT connectors, for Mosquitto and other MQTT 5 brokers (``pip install 'tideflow[mqtt]'``).

**Source** (``config``: ``url`` such as ``mqtt://127.0.0.1:1883`` (user and password
in it are used), ``topic`` (wildcards allowed), ``qos`` default 1, ``clientId``
default ``tideflow-<name>``, ``batch`` default 100: the most messages committed
together, those that arrived while the previous commit ran, ``sessionExpiry`` seconds
the broker keeps the session while the source is away, default a week): a persistent session
(MQTT 5, no clean start, the session kept by the broker while the connector is away),
so messages published while it is disconnected are delivered when it reconnects (as
many as the broker queues for a session: Mosquitto's ``max_queued_messages``, 1000 by
default, drops the rest). Each message is acknowledged (``PUBACK``) only after its
event is committed; one not acknowledged is delivered again after a reconnect. The
event id is the MQTT 5 user property ``id`` (or ``ce-id``) when the publisher set one,
so a redelivered message dedups; without one it gets a new id each delivery
(at-least-once).

**Sink** (``config``: ``url``, ``topic``, ``qos`` default 1, ``clientId`` default
``tideflow-sink-<name>``): publishes each message (JSON) and waits for the broker's
acknowledgement at QoS 1 or 2, with the user property ``id`` set to the event's id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tideflow.connectors.base import Emit, SourceContext, config_number, config_text
from tideflow.connectors.mapping import Record, decode_body, encode_message
from tideflow.errors import InvalidArgument

SESSION_EXPIRY: Final = 7 * 24 * 3600
"""Seconds the broker keeps a source's session (and its queued messages) while it is away."""
ID_PROPERTIES: Final = ("id", "ce-id", "ce_id")


def _client(
    url: str, identifier: str, *, persistent: bool, expiry: int = SESSION_EXPIRY
) -> aiomqtt.Client:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise InvalidArgument(
            f"config.url must be mqtt://host[:port], got {url[:60]!r}", argument="config.url"
        )
    properties = None
    if persistent:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = expiry
    return aiomqtt.Client(
        parts.hostname,
        parts.port or 1883,
        identifier=identifier,
        username=parts.username,
        password=parts.password,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=not persistent,
        properties=properties,
    )


def _qos(config: Mapping[str, Any]) -> int:
    return int(config_number(config, "qos", 1, 0))


class TopicSource:
    """Messages of a topic over a persistent session, acknowledged after commit."""

    def __init__(self, context: SourceContext) -> None:
        config = context.config
        self._context = context
        self._url = config_text(config, "url")
        self._topic = config_text(config, "topic")
        self._qos = _qos(config)
        self._identifier = config_text(config, "clientId", f"tideflow-{context.name}")
        self._batch = int(config_number(config, "batch", 100, 1))
        self._expiry = int(config_number(config, "sessionExpiry", SESSION_EXPIRY, 0))

    async def run(self, emit: Emit) -> None:
        """Receive until cancelled; acknowledge each message after its event committed."""
        client = _client(self._url, self._identifier, persistent=True, expiry=self._expiry)
        # aiomqtt acknowledges on receipt; the paho client under it can leave that to us
        paho = client._client  # aiomqtt has no switch for manual acks
        paho.manual_ack_set(True)
        async with client:
            # connected only once the broker granted the subscription (SUBACK): before
            # that, a message published to the topic may not reach this session
            granted = await client.subscribe(self._topic, qos=self._qos)
            refused = [code for code in granted if getattr(code, "is_failure", False)]
            if refused:
                topic = self._topic
                raise ConnectionError(f"the broker refused the subscription to {topic!r}")
            self._context.on_connection(True)
            messages = client.messages
            async for message in messages:
                # what else has arrived goes in the same commit: one commit per message
                # cannot keep up with a fast publisher, and the broker drops what queues
                # past its limit (Mosquitto's max_queued_messages) even at QoS 1
                batch = [message]
                while len(batch) < self._batch and len(messages):
                    batch.append(await anext(messages))
                await emit([self._record(m) for m in batch], None)
                for done in batch:
                    if done.qos > 0:
                        paho.ack(done.mid, done.qos)

    def _record(self, message: aiomqtt.Message) -> Record:
        headers: dict[str, str] = {}
        properties = message.properties
        for key, value in getattr(properties, "UserProperty", None) or []:
            headers[str(key)] = str(value)
        payload: Any = message.payload
        body = bytes(payload) if isinstance(payload, bytes | bytearray) else str(payload).encode()
        data, data_base64 = decode_body(body)
        record_id = next((headers[k] for k in ID_PROPERTIES if headers.get(k)), None)
        return Record(
            id=record_id,
            data=data,
            data_base64=data_base64,
            channel=str(message.topic),
            headers=headers,
        )


class TopicSink:
    """Publishes each message to a topic (module docs)."""

    def __init__(self, config: Mapping[str, Any], identifier: str) -> None:
        self._url = config_text(config, "url")
        self._topic = config_text(config, "topic")
        self._qos = _qos(config)
        self._client = _client(
            self._url, config_text(config, "clientId", identifier), persistent=False
        )
        self._open = False

    async def open(self) -> None:
        """Connect."""
        await self._client.__aenter__()
        self._open = True

    async def write(self, message: Any, event: Mapping[str, Any]) -> None:
        """Publish one message; at QoS 1 or 2 return after the broker acknowledged it."""
        if not self._open:
            raise ConnectionError("the sink is not open")
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.UserProperty = [("id", str(event.get("id", "")))]
        await self._client.publish(
            self._topic, encode_message(message), qos=self._qos, properties=properties
        )

    async def close(self) -> None:
        """Disconnect."""
        if self._open:
            self._open = False
            await self._client.__aexit__(None, None, None)


def make_source(context: SourceContext) -> TopicSource:
    """The source of an ``mqtt`` connector."""
    return TopicSource(context)


def make_sink(name: str, config: Mapping[str, Any]) -> TopicSink:
    """The sink of an ``mqtt`` connector."""
    return TopicSink(config, f"tideflow-sink-{name}")
