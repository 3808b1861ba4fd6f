"""AsyncAPI calls: 0.8 ``asyncapi`` functions and DSL 1.0 ``call: asyncapi``, one implementation.

The operation (``<AsyncAPI document>#<operationId>``) is found by
:mod:`tideflow.runtime.functions.asyncapi`; the document is read like an
OpenAPI document (relative to the workflow's folder, or ``http(s)``). The
message goes through Tideflow's connectors (:mod:`tideflow.connectors`), the
same code that runs connector sinks and sources:

- **send** (2.x ``publish``, 3.0 ``action: send``): the channel's server's
  protocol picks the sink: ``mqtt`` (topic), ``amqp`` (queue), ``nats``
  (a subject a JetStream stream captures: the broker acknowledges it),
  ``redis`` (stream); ``http``/``https`` POST the
  message as JSON to ``<server URL>/<channel>``. The result is ``null``.
- **receive** (2.x ``subscribe``, 3.0 ``action: receive``): ``mqtt`` and
  ``amqp`` only, through the connector source; the call waits (at most its
  timeout) for ``amount`` messages (0.8: one; its result is the payload;
  1.0: ``subscription.consume.amount``, or every message within
  ``consume.for``; the result is the list of payloads).

Any other protocol (``kafka``, ``ws``, ...) fails with ``NotSupported`` naming
it. The idempotency key is the message's id (MQTT user property ``id``, AMQP
``message_id``, ``Nats-Msg-Id``) and, for MQTT, names the session a receive
uses (kept by the broker 5 minutes), so a retried call resumes it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from tideflow.egress import CALL_LIMITS, EgressPolicy
from tideflow.errors import FunctionCallError
from tideflow.isotime import parse_duration
from tideflow.runtime.functions.asyncapi import (
    AsyncOperation,
    AsyncServer,
    find_async_operation,
    parse_asyncapi,
)
from tideflow.runtime.functions.openapi import resolve_location, split_operation
from tideflow.runtime.functions.types import (
    ClientLike,
    Invocation,
    UsesClient,
    bundle_key,
    call_error,
    check_status,
    checked_address,
    fetch_document,
    send,
)

DSL1_TYPE: Final = "asyncapi-call"
"""The invocation type of a DSL 1.0 ``call: asyncapi`` (0.8 functions are ``asyncapi``)."""
SEND_TYPES: Final = {"mqtt": "mqtt", "mqtt5": "mqtt", "amqp": "amqp", "nats": "nats",
                     "redis": "redis"}  # fmt: skip
RECEIVE_TYPES: Final = {"mqtt": "mqtt", "mqtt5": "mqtt", "amqp": "amqp"}
PORTS: Final = {"mqtt": 1883, "amqp": 5672, "nats": 4222, "redis": 6379}
SESSION_SECONDS: Final = 300
"""How long an MQTT broker keeps the session of a receive that went away."""
MAX_MESSAGES: Final = 1000
"""The most messages one receive may collect."""


class Brokers(Protocol):
    """Message brokers reached through the connectors (given by the host:
    :class:`tideflow.connectors.messaging.ConnectorBrokers`)."""

    async def send(
        self, kind: str, config: Mapping[str, Any], message: Any, message_id: str, seconds: float
    ) -> None:
        """Publish one message through the sink of connector type ``kind``."""
        ...

    async def receive(
        self, kind: str, config: Mapping[str, Any], amount: int, seconds: float
    ) -> list[Any]:
        """The payloads received within ``seconds``, at most ``amount``."""
        ...


@contextmanager
def _prefixed(what: str) -> Iterator[None]:
    """Re-raise a broker's call error with ``what`` in front, code and retryability kept."""
    try:
        yield
    except FunctionCallError as exc:
        raise FunctionCallError(f"{what}: {exc}", code=exc.code, retryable=exc.retryable) from None


class AsyncApiInvoker(UsesClient):
    """Sends and receives the messages of AsyncAPI operations, caching documents."""

    def __init__(
        self, client: ClientLike, brokers: Brokers | None, egress: EgressPolicy | None = None
    ) -> None:
        """Args:
        client: The HTTP client for documents and ``http`` servers.
        brokers: The connectors, for every other protocol (``None``: none reached).
        egress: Which local documents may be read and which brokers reached.
        """
        super().__init__(client)
        self._brokers = brokers
        self._egress = egress or EgressPolicy.everything()
        self._documents: dict[str, Mapping[str, Any]] = {}

    async def invoke(self, call: Invocation) -> Any:
        """Send the message, or receive messages, as the operation says."""
        reference, operation_id = split_operation(call.operation)
        if call.document is not None:  # brought by the definition's bundle, stored with it
            location = reference
            document = self._bundled(reference, call.document)
        else:
            location = resolve_location(reference, call.base_dir)
            document = await self.document(location)
        operation = find_async_operation(document, operation_id, location)
        dsl1 = call.type == DSL1_TYPE
        server = _server(operation, call.arguments.get("server") if dsl1 else None, call.name)
        what = f"function {call.name!r}: AsyncAPI {operation_id} on {server.protocol} {server.url}"
        if operation.sends:
            message = (call.arguments.get("message") or {}).get("payload") if dsl1 else None
            await self._send(call, operation, server, message if dsl1 else call.arguments, what)
            return None
        consume = (call.arguments.get("subscription") or {}).get("consume") or {} if dsl1 else {}
        received = await self._receive(call, operation, server, consume, what)
        return received if dsl1 else received[0]

    async def document(self, location: str) -> Mapping[str, Any]:
        """The AsyncAPI document at ``location`` (a URL or absolute path), cached."""
        cached = self._documents.get(location)
        if cached is not None:
            return cached
        text = await fetch_document(self._source, location, self._egress, "AsyncAPI document")
        document = parse_asyncapi(text, location)
        self._documents[location] = document
        return document

    def _bundled(self, reference: str, text: str) -> Mapping[str, Any]:
        """A bundle's document, parsed once per content."""
        key = bundle_key(text)
        if key not in self._documents:
            self._documents[key] = parse_asyncapi(text, reference)
        return self._documents[key]

    async def _send(
        self,
        call: Invocation,
        operation: AsyncOperation,
        server: AsyncServer,
        message: Any,
        what: str,
    ) -> None:
        if server.protocol in ("http", "https"):
            base = server.url if "://" in server.url else f"{server.protocol}://{server.url}"
            url = base.rstrip("/") + "/" + operation.channel.lstrip("/")
            headers = {"Idempotency-Key": call.idempotency_key} if call.idempotency_key else {}
            request = self._client.build_request("POST", url, json=message, headers=headers)
            check_status(await send(self._client, request, what, call.timeout), what)
            return
        kind = _connector_type(server, SEND_TYPES, "sends", what)
        config = await self._config(kind, server, operation.channel, call, what)
        seconds = call.timeout or CALL_LIMITS.timeout
        with _prefixed(what):
            await self._needs_brokers(what).send(
                kind, config, message, call.idempotency_key or "", seconds
            )

    async def _receive(
        self,
        call: Invocation,
        operation: AsyncOperation,
        server: AsyncServer,
        consume: Mapping[str, Any],
        what: str,
    ) -> list[Any]:
        kind = _connector_type(server, RECEIVE_TYPES, "receives", what)
        amount, window = _consumption(consume, what)
        deadline = call.timeout or CALL_LIMITS.timeout
        config = dict(await self._config(kind, server, operation.channel, call, what))
        if kind == "mqtt":  # a retry within SESSION_SECONDS resumes the session
            key = (call.idempotency_key or call.name).encode()
            config["clientId"] = f"tideflow-asyncapi-{hashlib.sha256(key).hexdigest()[:20]}"
            config["sessionExpiry"] = SESSION_SECONDS
        seconds = min(deadline, window) if window is not None else deadline
        with _prefixed(what):
            received = await self._needs_brokers(what).receive(kind, config, amount, seconds)
        if window is not None and received:
            return received
        if len(received) < amount:
            raise call_error(
                f"{what}: {len(received)} of {amount} messages arrived in time",
                code="Timeout",
                retryable=True,
            )
        return received

    def _needs_brokers(self, what: str) -> Brokers:
        if self._brokers is None:
            raise call_error(
                f"{what}: this host reaches no message brokers (its invoker was made "
                "without the connectors)",
                code="NotSupported",
            )
        return self._brokers

    async def _config(
        self, kind: str, server: AsyncServer, channel: str, call: Invocation, what: str
    ) -> Mapping[str, Any]:
        url = server.url if "://" in server.url else f"{kind}://{server.url}"
        parts = urlsplit(url)
        host = parts.hostname or ""
        if not host:
            raise call_error(f"{what}: the server's URL names no host", code="NoServer")
        port = parts.port or PORTS[kind]
        address = await checked_address(self._egress, host, port)
        if address != host:
            netloc = parts.netloc.rpartition("@")
            auth = netloc[0] + "@" if netloc[1] else ""
            shown = f"[{address}]" if ":" in address else address
            url = parts._replace(netloc=f"{auth}{shown}:{port}").geturl()
        key = {"mqtt": "topic", "amqp": "queue", "nats": "subject", "redis": "stream"}[kind]
        if kind == "amqp" and not parts.path:
            url += "/"
        return {"url": url, key: channel}


def _server(operation: AsyncOperation, chosen: Any, name: str) -> AsyncServer:
    if not operation.servers:
        raise call_error(
            f"function {name!r}: the AsyncAPI document gives channel {operation.channel!r} "
            "no server",
            code="NoServer",
        )
    wanted = chosen.get("name") if isinstance(chosen, Mapping) else None
    if wanted is None:
        return operation.servers[0]
    for server in operation.servers:
        if server.name == wanted:
            return server
    known = ", ".join(s.name for s in operation.servers)
    raise call_error(
        f"function {name!r}: channel {operation.channel!r} is on no server {wanted!r} "
        f"(it is on: {known})",
        code="NoServer",
    )


def _connector_type(server: AsyncServer, types: Mapping[str, str], verb: str, what: str) -> str:
    kind = types.get(server.protocol)
    if kind is None:
        supported = ", ".join(sorted(set(types.values())))
        extra = ", http, https" if verb == "sends" else ""
        raise call_error(
            f"{what}: protocol {server.protocol!r} is not one Tideflow {verb} through "
            f"(it {verb} through {supported}{extra})",
            code="NotSupported",
        )
    return kind


def _consumption(consume: Mapping[str, Any], what: str) -> tuple[int, float | None]:
    """``(amount, seconds)`` of a 1.0 ``consume`` (``{}``: one message)."""
    if "while" in consume or "until" in consume:
        raise call_error(
            f"{what}: consume.while and consume.until are not supported (amount, for are)",
            code="NotSupported",
        )
    try:
        amount = int(consume.get("amount", 1 if "for" not in consume else MAX_MESSAGES))
    except (TypeError, ValueError):
        amount = 0
    if not 1 <= amount <= MAX_MESSAGES:
        raise call_error(
            f"{what}: consume.amount must be a number from 1 to {MAX_MESSAGES}",
            code="InvalidArguments",
        )
    return amount, _seconds(consume.get("for"))


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        units = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1, "milliseconds": 0.001}
        return sum(float(value.get(k, 0)) * f for k, f in units.items())
    seconds = parse_duration(str(value)).total_seconds()
    return seconds if math.isfinite(seconds) else None
