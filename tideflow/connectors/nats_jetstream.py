"""NATS JetStream connectors (``pip install 'tideflow[nats]'``).

**Source** (``config``: ``url``, ``subject``, ``stream`` default ``TIDEFLOW_<NAME>``,
created for the subject if missing, ``durable`` consumer name default
``tideflow-<name>``, ``batch`` default 100, ``interval`` the longest wait for messages
in seconds, default 1, ``mode``): pulls from a durable consumer and acknowledges each
message only after its event is committed; an unacknowledged message is redelivered
by JetStream after its ack wait (10 s). The event id is the message's ``Nats-Msg-Id`` header
if it has one, else ``<stream>:<stream sequence>``: a redelivered message dedups to
the same event.

**Sink** (``config``: ``url``, ``subject``, ``stream`` optional, created for the
subject if missing): publishes each message to JetStream and waits for its
acknowledgement, with ``Nats-Msg-Id`` set to the event's id, so JetStream's own
duplicate window drops a redelivered event.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import nats
from nats.js.api import ConsumerConfig
from nats.js.errors import NotFoundError

from tideflow.connectors.base import Emit, SourceContext, config_number, config_text
from tideflow.connectors.mapping import Record, decode_body, encode_message

_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]")
ACK_WAIT: Final = 10.0
"""Seconds JetStream waits for a source's acknowledgement before it redelivers (after a
crash, the unacknowledged messages come back after this)."""


def default_stream(name: str) -> str:
    """The stream a connector creates when ``config.stream`` is not given."""
    return "TIDEFLOW_" + _NOT_NAME.sub("_", name).upper()


async def _ensure_stream(js: Any, stream: str, subject: str) -> None:
    try:
        await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(name=stream, subjects=[subject])


class JetStreamSource:
    """Messages of a subject through a durable pull consumer (module docs)."""

    def __init__(self, context: SourceContext) -> None:
        config = context.config
        self._context = context
        self._url = config_text(config, "url")
        self._subject = config_text(config, "subject")
        self._stream = config_text(config, "stream", default_stream(context.name))
        self._durable = config_text(config, "durable", f"tideflow-{context.name}")
        self._batch = int(config_number(config, "batch", 100, 1))
        self._wait = config_number(config, "interval", 1.0, 0.01)

    async def run(self, emit: Emit) -> None:
        """Fetch, emit, acknowledge until cancelled (or, scheduled, until caught up)."""
        nc = await nats.connect(self._url, name=f"tideflow-source-{self._context.name}")
        try:
            js = nc.jetstream()
            await _ensure_stream(js, self._stream, self._subject)
            sub = await js.pull_subscribe(
                self._subject,
                durable=self._durable,
                stream=self._stream,
                config=ConsumerConfig(ack_wait=ACK_WAIT),
            )
            self._context.on_connection(True)
            while True:
                try:
                    messages = await sub.fetch(self._batch, timeout=self._wait)
                except TimeoutError:  # nats' own, or asyncio's when the deadline ran out first
                    if self._context.scheduled:
                        return
                    continue
                await emit([self._record(m) for m in messages], None)
                for message in messages:
                    await message.ack()
        finally:
            await nc.close()

    def _record(self, message: Any) -> Record:
        headers = {str(k): str(v) for k, v in (message.headers or {}).items()}
        record_id = headers.get("Nats-Msg-Id") or (
            f"{self._stream}:{message.metadata.sequence.stream}"
        )
        data, data_base64 = decode_body(message.data)
        return Record(
            id=record_id,
            data=data,
            data_base64=data_base64,
            channel=message.subject,
            headers=headers,
        )


class JetStreamSink:
    """Publishes each message to JetStream (module docs)."""

    def __init__(self, config: Mapping[str, Any], connection_name: str) -> None:
        self._url = config_text(config, "url")
        self._subject = config_text(config, "subject")
        stream = config.get("stream")
        self._stream = None if stream is None else config_text(config, "stream")
        self._name = connection_name
        self._nc: Any = None
        self._js: Any = None

    async def open(self) -> None:
        """Connect (and create the stream if one is configured and missing)."""
        nc = await nats.connect(self._url, name=self._name)
        try:
            js = nc.jetstream()
            if self._stream is not None:
                await _ensure_stream(js, self._stream, self._subject)
        except BaseException:
            await nc.close()
            raise
        self._nc, self._js = nc, js

    async def write(self, message: Any, event: Mapping[str, Any]) -> None:
        """Publish and wait for JetStream's acknowledgement."""
        if self._js is None:
            raise ConnectionError("the sink is not open")
        headers = {"Nats-Msg-Id": str(event.get("id", ""))}
        await self._js.publish(self._subject, encode_message(message), headers=headers)

    async def close(self) -> None:
        """Disconnect."""
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            await nc.close()


def make_source(context: SourceContext) -> JetStreamSource:
    """The source of a ``nats`` connector."""
    return JetStreamSource(context)


def make_sink(name: str, config: Mapping[str, Any]) -> JetStreamSink:
    """The sink of a ``nats`` connector (its connection named ``tideflow-sink-<name>``)."""
    return JetStreamSink(config, f"tideflow-sink-{name}")
