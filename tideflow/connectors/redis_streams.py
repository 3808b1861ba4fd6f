"""Redis Streams connectors (``pip install 'tideflow[redis]'``).

**Source** (``config``: ``url``, ``stream``, ``group`` default ``tideflow-<name>``,
``consumer`` default ``tideflow``, ``batch`` default 100, ``interval`` the longest
block in seconds, default 1, ``mode``): reads through a consumer group (created at the
start of the stream if missing, so entries added before the connector are read too)
and acknowledges (``XACK``) an entry only after its event is committed. After a crash
the group's pending entries of this consumer are read again first. The event id is
``<stream>:<entry id>``: a redelivered entry dedups to the same event. An entry whose
only field is ``data`` gives that field's payload (JSON if it parses) as the event's
data; any other entry gives its fields as an object.

**Sink** (``config``: ``url``, ``stream``, ``maxlen`` optional, approximate trimming):
``XADD`` of one entry per message with the single field ``data`` (the message as JSON
text), so a Redis source reads it back as the same data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from tideflow.connectors.base import Emit, SourceContext, config_number, config_text
from tideflow.connectors.mapping import Record, decode_body, encode_message


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class StreamSource:
    """Entries of a stream through a consumer group (module docs)."""

    def __init__(self, context: SourceContext) -> None:
        config = context.config
        self._context = context
        self._url = config_text(config, "url")
        self._stream = config_text(config, "stream")
        self._group = config_text(config, "group", f"tideflow-{context.name}")
        self._consumer = config_text(config, "consumer", "tideflow")
        self._batch = int(config_number(config, "batch", 100, 1))
        self._block_ms = max(1, int(config_number(config, "interval", 1.0, 0.01) * 1000))

    async def run(self, emit: Emit) -> None:
        """Read, emit, acknowledge until cancelled (or, scheduled, until caught up)."""
        client: Any = aioredis.from_url(self._url)
        try:
            await self._ensure_group(client)
            self._context.on_connection(True)
            cursor = "0"  # this consumer's pending entries first (delivered, never acknowledged)
            while True:
                block = None if cursor == "0" else self._block_ms
                found: Any = await client.xreadgroup(
                    self._group, self._consumer, {self._stream: cursor}, self._batch, block
                )
                entries = found[0][1] if found else []
                if entries:
                    await emit([self._record(i, f) for i, f in entries], None)
                    await client.xack(self._stream, self._group, *[i for i, _ in entries])
                    continue
                if cursor == "0":
                    cursor = ">"
                    continue
                if self._context.scheduled:
                    return
        finally:
            await client.aclose()

    async def _ensure_group(self, client: Any) -> None:
        try:
            await client.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _record(self, entry_id: Any, fields: Mapping[Any, Any]) -> Record:
        decoded = {_text(k): v for k, v in fields.items()}
        if set(decoded) == {"data"}:
            raw = decoded["data"]
            data, data_base64 = decode_body(raw if isinstance(raw, bytes) else str(raw).encode())
        else:
            data, data_base64 = {k: _text(v) for k, v in decoded.items()}, None
        return Record(
            id=f"{self._stream}:{_text(entry_id)}",
            data=data,
            data_base64=data_base64,
            channel=self._stream,
        )


class StreamSink:
    """``XADD`` per message (module docs)."""

    def __init__(self, config: Mapping[str, Any], client_name: str) -> None:
        self._url = config_text(config, "url")
        self._stream = config_text(config, "stream")
        self._client_name = client_name
        maxlen = config.get("maxlen")
        self._maxlen = None if maxlen is None else int(maxlen)
        self._client: Any = None

    async def open(self) -> None:
        """Connect (and check the server answers)."""
        client: Any = aioredis.from_url(self._url)
        try:
            await client.ping()
        except BaseException:
            await client.aclose()
            raise
        self._client = client

    async def write(self, message: Any, event: Mapping[str, Any]) -> None:
        """Add one entry."""
        if self._client is None:
            raise ConnectionError("the sink is not open")
        await self._client.xadd(
            self._stream,
            {"data": encode_message(message)},
            maxlen=self._maxlen,
            approximate=True,
        )

    async def close(self) -> None:
        """Disconnect."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def make_source(context: SourceContext) -> StreamSource:
    """The source of a ``redis`` connector."""
    return StreamSource(context)


def make_sink(name: str, config: Mapping[str, Any]) -> StreamSink:
    """The sink of a ``redis`` connector (its connection named ``tideflow-sink-<name>``)."""
    return StreamSink(config, f"tideflow-sink-{name}")
