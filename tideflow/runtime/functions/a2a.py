"""``call: a2a`` of DSL 1.0: one JSON-RPC method of an A2A agent.

The interpreter hands over the evaluated arguments: ``method``, the agent as
``agentCard`` (the URI of its Agent Card) or ``server`` (the URI of its
JSON-RPC endpoint), ``parameters`` and the ``authentication`` policy of that
endpoint. With a card, the card is fetched (``DOCUMENT_LIMITS``, with the
policy's headers) and the agent is called at its JSON-RPC interface: ``url``
when ``preferredTransport`` is ``JSONRPC`` (the default), else the first
``JSONRPC`` entry of ``additionalInterfaces`` (or ``supportedInterfaces``).
The policy authenticates the card's fetch and the call alike; the card's
``securitySchemes`` are not read (they name schemes, not credentials).

``message/send`` and ``message/stream`` get ``message.messageId`` (a UUID
derived from the call's idempotency key, so a call tried again sends the
same message) and ``message.role: user`` unless given. The output is the
JSON-RPC ``result``; for ``message/stream`` and ``tasks/resubscribe`` the
list of every event's result in order, read until the stream ends or a
``final`` status update arrives.

Every request goes through the invoker's HTTP client, hence the egress
policy; the whole call is bounded by ``CALL_LIMITS`` (five minutes, unless
the host bounds it more) and its answers by the value size limit.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from tideflow.egress import CALL_LIMITS, EgressPolicy
from tideflow.ids import new_id
from tideflow.runtime.functions.auth import AuthProvider
from tideflow.runtime.functions.http import auth_definition
from tideflow.runtime.functions.jsonrpc import (
    PROTOCOL_ERROR,
    Budget,
    answers,
    post,
    response_to,
    result_of,
)
from tideflow.runtime.functions.types import (
    ClientLike,
    Invocation,
    UsesClient,
    call_error,
    fetch_document,
)

__all__ = ["STREAMING", "A2AInvoker", "message_defaults"]

STREAMING = frozenset({"message/stream", "tasks/resubscribe"})
"""Methods answered by a stream of events (the output is the list of their results)."""
_SENDS = frozenset({"message/send", "message/stream"})


def message_defaults(parameters: Any, key: str | None) -> dict[str, Any]:
    """``parameters`` with ``message.messageId`` and ``message.role`` set when missing."""
    given = dict(parameters) if isinstance(parameters, Mapping) else {}
    message = given.get("message")
    message = dict(message) if isinstance(message, Mapping) else {}
    if "messageId" not in message:
        seed = f"tideflow:a2a:{key}" if key else None
        message["messageId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, seed)) if seed else new_id()
    message.setdefault("role", "user")
    return {**given, "message": message}


def _final(message: Mapping[str, Any]) -> bool:
    result = message.get("result")
    return "error" in message or (isinstance(result, Mapping) and result.get("final") is True)


class A2AInvoker(UsesClient):
    """Calls A2A agents over JSON-RPC."""

    def __init__(self, client: ClientLike, auth: AuthProvider, egress: EgressPolicy) -> None:
        """Args:
        client: The HTTP client (the egress policy's).
        auth: Turns the authentication policy into headers.
        egress: Which local files an Agent Card may be read from.
        """
        super().__init__(client)
        self._auth = auth
        self._egress = egress

    async def invoke(self, call: Invocation) -> Any:
        """Send the method; the JSON-RPC result (a list of them for a stream)."""
        args = call.arguments
        what = f"call {call.name!r}"
        method = str(args.get("method", ""))
        parameters = args.get("parameters")
        if parameters is not None and not isinstance(parameters, Mapping):
            raise call_error(
                f"{what}: the A2A parameters must be an object, not {json.dumps(parameters)[:80]}",
                code="InvalidOperation",
            )
        if method in _SENDS:
            parameters = message_defaults(parameters, call.idempotency_key)
        headers = await self._auth.headers(auth_definition(args.get("authentication")))
        try:
            async with asyncio.timeout(CALL_LIMITS.timeout):
                url = await self._endpoint(call, headers, what)
                return await self._send(url, method, parameters, headers, call, what)
        except TimeoutError as exc:
            raise call_error(f"{what}: the agent did not answer in time", code="Timeout") from exc

    async def _endpoint(self, call: Invocation, headers: dict[str, str], what: str) -> str:
        card = call.arguments.get("agentCard")
        if not card:
            server = call.arguments.get("server")
            if not server:
                raise call_error(
                    f"{what}: an A2A call needs 'agentCard' or 'server'", code="InvalidOperation"
                )
            return str(server)
        location = str(card)
        remote = location.startswith(("http://", "https://"))
        if not remote:
            path = Path(location.removeprefix("file://"))
            location = str(path if path.is_absolute() else (call.base_dir or Path.cwd()) / path)
        text = await fetch_document(
            self._source, location, self._egress, f"the agent card of {call.name!r}", headers
        )
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            document = None
        url = _jsonrpc_url(document)
        if url is None:
            raise call_error(
                f"{what}: the agent card at {card} names no JSON-RPC endpoint (url with "
                "preferredTransport JSONRPC, or a JSONRPC entry of additionalInterfaces)",
                code=PROTOCOL_ERROR,
            )
        return urljoin(location, url) if remote else url

    async def _send(
        self,
        url: str,
        method: str,
        parameters: Any,
        headers: dict[str, str],
        call: Invocation,
        what: str,
    ) -> Any:
        request_id = new_id()
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if parameters is not None:
            message["params"] = parameters
        budget = Budget()
        where = f"{what} ({method})"
        if method not in STREAMING:
            answer = await post(
                self._client, url, message, headers, where, budget,
                until=lambda m: answers(m, request_id),
            )  # fmt: skip
            return result_of(response_to(answer, request_id, where), where)
        answer = await post(self._client, url, message, headers, where, budget, until=_final)
        events = [m for m in answer.messages if answers(m, request_id)]
        if not events:
            raise call_error(f"{where}: the agent's stream sent no result", code=PROTOCOL_ERROR)
        return [result_of(event, where) for event in events]


def _jsonrpc_url(card: Any) -> str | None:
    """The URL of the card's JSON-RPC interface, if it has one."""
    if not isinstance(card, Mapping):
        return None
    preferred = str(card.get("preferredTransport") or "JSONRPC").upper()
    if preferred == "JSONRPC" and isinstance(card.get("url"), str):
        return str(card["url"])
    for key in ("additionalInterfaces", "supportedInterfaces"):
        for interface in card.get(key) or ():
            if not isinstance(interface, Mapping):
                continue
            binding = interface.get("transport") or interface.get("protocolBinding") or ""
            if str(binding).upper() == "JSONRPC" and isinstance(interface.get("url"), str):
                return str(interface["url"])
    return None
