"""JSON-RPC 2.0 over HTTP, as the DSL 1.0 ``a2a`` and ``mcp`` calls speak it.

One request is one ``POST`` of a JSON-RPC message; the server answers with
``application/json`` (one message, or a batch) or with ``text/event-stream``
(server-sent events, each ``data`` a JSON-RPC message: MCP's streamable HTTP
transport, A2A's streaming methods). A stream is read event by event and
left as soon as the caller has what it waits for, so a server that keeps it
open costs nothing more.

Everything read in one call counts against one :class:`Budget` (by default
the value size limit, :mod:`tideflow.limits`); the caller bounds the time.
Failures are :class:`~tideflow.errors.FunctionCallError`:

- the server could not be reached or the connection broke: ``ConnectionError``
  (``Timeout`` for httpx's own timeouts), retryable;
- it answered an HTTP status outside 2xx: the status is the code;
- more than the budget: ``RESPONSE_TOO_LARGE``;
- an answer that is not JSON-RPC, or none to the request: :data:`PROTOCOL_ERROR`;
- a JSON-RPC ``error`` member: :data:`RPC_ERROR`, its code and message in the text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from tideflow import limits as value_limits
from tideflow import tracing
from tideflow.runtime.functions.types import call_error, transport_failure

__all__ = [
    "PROTOCOL_ERROR", "RPC_ERROR", "Answer", "Budget", "answers", "post", "response_to",
    "result_of",
]  # fmt: skip

PROTOCOL_ERROR: Final = "PROTOCOL_ERROR"
"""The code of an answer that is not the JSON-RPC the call expects."""
RPC_ERROR: Final = "RPC_ERROR"
"""The code of a JSON-RPC ``error`` answer."""
ACCEPT: Final = "application/json, text/event-stream"
_SNIPPET = 200


class Budget:
    """Bytes one call may still read, over all its requests."""

    def __init__(self, max_bytes: int | None = None) -> None:
        """Args:
        max_bytes: The bound; by default the value size limit.
        """
        self.max_bytes = max_bytes if max_bytes is not None else value_limits.current().value_bytes
        self.left = self.max_bytes

    def take(self, size: int, what: str) -> None:
        """Count ``size`` bytes read.

        Raises:
            FunctionCallError: Past the bound (``RESPONSE_TOO_LARGE``).
        """
        self.left -= size
        if self.left < 0:
            raise call_error(
                f"{what}: the answers are larger than {self.max_bytes} bytes",
                code="RESPONSE_TOO_LARGE",
            )


@dataclass(frozen=True, slots=True)
class Answer:
    """What one ``POST`` brought back."""

    status: int
    headers: httpx.Headers
    messages: list[dict[str, Any]]
    """The JSON-RPC messages read, in order (none for ``202 Accepted``)."""


def _never(_message: Mapping[str, Any]) -> bool:
    return False


async def post(
    client: httpx.AsyncClient,
    url: str,
    message: Mapping[str, Any],
    headers: Mapping[str, str],
    what: str,
    budget: Budget,
    until: Callable[[Mapping[str, Any]], bool] = _never,
) -> Answer:
    """POST one JSON-RPC ``message`` and read the answer.

    Args:
        until: For a stream: stop reading once it is true of a message read
            (the stream is otherwise read to its end).

    Raises:
        FunctionCallError: See the module docs.
    """
    request = client.build_request(
        "POST", url, json=dict(message), headers={"Accept": ACCEPT, **headers}
    )
    tracing.inject(request.headers)
    where = f"{what}: POST {url}"
    try:
        response = await client.send(request, stream=True)
        try:
            status, kind = response.status_code, response.headers.get("content-type", "")
            if not 200 <= status < 300:
                body = await _read(response, budget, what)
                text = body.decode("utf-8", "replace").strip().replace("\n", " ")[:_SNIPPET]
                raise call_error(
                    f"{where} answered {status}" + (f": {text}" if text else ""),
                    code=str(status),
                    retryable=status >= 500 or status == 429,
                )
            if "text/event-stream" in kind:
                messages = await _events(response, budget, where, until)
            else:
                body = await _read(response, budget, what)
                messages = _messages(body, where) if body.strip() else []
        finally:
            await response.aclose()
    except httpx.TransportError as exc:
        raise transport_failure(where, exc) from exc
    return Answer(status, response.headers, messages)


async def _read(response: httpx.Response, budget: Budget, what: str) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        budget.take(len(chunk), what)
        body += chunk
    return bytes(body)


async def _events(
    response: httpx.Response,
    budget: Budget,
    where: str,
    until: Callable[[Mapping[str, Any]], bool],
) -> list[dict[str, Any]]:
    """The JSON-RPC messages of a server-sent event stream, read until ``until`` or its end."""
    found: list[dict[str, Any]] = []
    pending = b""
    data: list[bytes] = []
    async for chunk in response.aiter_bytes():
        budget.take(len(chunk), where)
        pending += chunk
        while (cut := pending.find(b"\n")) >= 0:
            line, pending = pending[:cut].rstrip(b"\r"), pending[cut + 1 :]
            if line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
            elif not line and data:  # a blank line ends the event
                found.extend(_messages(b"\n".join(data), where))
                data = []
                if until(found[-1]):
                    return found
    if data:  # the stream ended without the blank line after its last event
        found.extend(_messages(b"\n".join(data), where))
    return found


def _messages(body: bytes, where: str) -> list[dict[str, Any]]:
    try:
        parsed = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        parsed = None
    batch = parsed if isinstance(parsed, list) else [parsed]
    if not batch or not all(isinstance(m, dict) for m in batch):
        text = body.decode("utf-8", "replace")[:_SNIPPET]
        raise call_error(f"{where}: the answer is not JSON-RPC: {text}", code=PROTOCOL_ERROR)
    return batch


def answers(message: Mapping[str, Any], request_id: Any) -> bool:
    """Whether ``message`` is the response to the request ``request_id``."""
    return message.get("id") == request_id and ("result" in message or "error" in message)


def result_of(message: Mapping[str, Any], what: str) -> Any:
    """The ``result`` of a response.

    Raises:
        FunctionCallError: It is an ``error`` (:data:`RPC_ERROR`).
    """
    error = message.get("error")
    if error is None:
        return message.get("result")
    if isinstance(error, Mapping):
        code, text = error.get("code"), error.get("message", "")
        detail = f"JSON-RPC error {code}: {text}"
        if error.get("data") is not None:
            detail += f" ({json.dumps(error['data'])[:_SNIPPET]})"
    else:
        detail = f"JSON-RPC error {error!r}"
    raise call_error(f"{what}: {detail}", code=RPC_ERROR)


def response_to(answer: Answer, request_id: Any, where: str) -> Mapping[str, Any]:
    """The response to ``request_id`` among the messages of ``answer``.

    Raises:
        FunctionCallError: There is none (:data:`PROTOCOL_ERROR`).
    """
    for message in answer.messages:
        if answers(message, request_id):
            return message
    raise call_error(f"{where}: the server sent no answer to the request", code=PROTOCOL_ERROR)
