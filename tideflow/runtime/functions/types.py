"""Plain values the function invokers work on.

The interpreter evaluates a function reference's arguments; the host turns
the function definition plus those arguments into an :class:`Invocation` and
hands it to a :class:`~tideflow.runtime.functions.invoker.FunctionInvoker`.
Nothing here depends on the workflow model, so the invokers can be tested
alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx

from tideflow import limits as value_limits
from tideflow import tracing
from tideflow.egress import CALL_LIMITS, DOCUMENT_LIMITS, EgressPolicy, FetchLimits
from tideflow.errors import EgressDenied, FunctionCallError


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthDefinition:
    """A workflow ``auth`` definition, its properties already evaluated."""

    name: str
    """The name functions refer to with ``authRef``."""
    scheme: str = "basic"
    """``basic``, ``bearer`` or ``oauth2``."""
    properties: Mapping[str, Any] = field(default_factory=dict)
    """``username``/``password``, ``token``, or the OAuth2 fields."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Invocation:
    """One call of a workflow function."""

    name: str
    """The function definition's name."""
    operation: str
    """The definition's ``operation`` string."""
    type: str = "rest"
    """``rest``, ``graphql``, ``odata``, ``custom``, ``asyncapi``, ``rpc`` or ``expression``."""
    arguments: Mapping[str, Any] = field(default_factory=dict)
    """The evaluated ``functionRef.arguments``."""
    selection_set: str | None = None
    """The evaluated ``functionRef.selectionSet`` (GraphQL only)."""
    auth: AuthDefinition | None = None
    """The auth definition named by the function's ``authRef``, if any."""
    idempotency_key: str | None = None
    """A key that stays the same when the same step is retried or replayed."""
    base_dir: Path | None = None
    """The folder relative document paths resolve against (the workflow's folder)."""
    timeout: float | None = None
    """Seconds the call may take, if bounded."""
    document: str | None = None
    """The text of the operation's OpenAPI/AsyncAPI document when it came with the
    definition in a bundle (:func:`bundled_document`): used instead of reading it."""


def bundle_key(text: str) -> str:
    """How invokers cache a bundled document: by content (versions may differ under one name)."""
    return f"bundle:{hashlib.sha256(text.encode()).hexdigest()}"


def bundled_document(files: Mapping[str, str] | None, operation: str) -> str | None:
    """The text of ``operation``'s document (``<document>#<operationId>``) among the
    files a bundle brought with the definition, if it is one of them."""
    if not files:
        return None
    return files.get(operation.rpartition("#")[0])


ClientLike = httpx.AsyncClient | Callable[[], httpx.AsyncClient]
"""An HTTP client, or a function giving one (so it is made only when needed)."""


class UsesClient:
    """Base of the invokers: holds a :data:`ClientLike`, gives the client on use."""

    def __init__(self, client: ClientLike) -> None:
        """Args:
        client: The client, or a function returning it.
        """
        if isinstance(client, httpx.AsyncClient):
            fixed = client
            self._source: Callable[[], httpx.AsyncClient] = lambda: fixed
        else:
            self._source = client

    @property
    def _client(self) -> httpx.AsyncClient:
        return self._source()


def call_error(message: str, *, code: str, retryable: bool = False) -> FunctionCallError:
    """A :class:`FunctionCallError` with an explicit code."""
    return FunctionCallError(message, code=code, retryable=retryable)


async def checked_address(egress: EgressPolicy, host: str, port: int) -> str:
    """The address to connect to for ``host:port`` under ``egress``.

    With a restricting policy the name is resolved and every address checked
    (:meth:`EgressPolicy.check`); the first is returned, so the connection
    goes where the check looked, not to a name that may resolve anew.
    Without one, ``host`` itself.

    Raises:
        EgressDenied: The policy refuses it.
        FunctionCallError: The name does not resolve (``ConnectionError``).
    """
    if egress.allow_all:
        return host
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise call_error(
            f"{host} does not resolve", code="ConnectionError", retryable=True
        ) from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    egress.check(host, port, addresses)
    return addresses[0]


async def fetch_document(
    client: Callable[[], httpx.AsyncClient],
    location: str,
    egress: EgressPolicy,
    what: str,
    headers: Mapping[str, str] | None = None,
) -> str:
    """The text of the document at ``location``: an ``http(s)`` URL fetched within
    :data:`~tideflow.egress.DOCUMENT_LIMITS` (with ``headers``), or a local file
    the policy allows (:func:`read_document`). ``client`` gives the HTTP
    client, asked for only for a URL.

    Raises:
        FunctionCallError: It cannot be fetched or read.
    """
    if location.startswith(("http://", "https://")):
        http = client()
        request = http.build_request("GET", location, headers=headers)
        response = await send(http, request, what, None, DOCUMENT_LIMITS)
        check_status(response, what)
        return response.text
    return await read_document(location, egress, what, DOCUMENT_LIMITS.max_bytes)


async def read_document(
    location: str, egress: EgressPolicy, what: str, max_bytes: int | None = None
) -> str:
    """The text of the local document ``location`` (an absolute path) the policy allows.

    Raises:
        EgressDenied: The policy refuses the file.
        FunctionCallError: It cannot be read (``DocumentNotFound``), or it is
            larger than ``max_bytes`` (``RESPONSE_TOO_LARGE``).
    """
    if (refused := egress.file_refusal(Path(location))) is not None:
        raise EgressDenied(refused)
    try:
        if max_bytes is None:
            return await anyio.Path(location).read_text(encoding="utf-8")
        async with await anyio.open_file(location, "rb") as file:
            body = await file.read(max_bytes + 1)
    except OSError as exc:
        raise call_error(
            f"cannot read {what} {location}: {exc.strerror or exc}", code="DocumentNotFound"
        ) from exc
    if len(body) > max_bytes:
        raise call_error(
            f"{what} {location} is larger than {max_bytes} bytes", code="RESPONSE_TOO_LARGE"
        )
    return body.decode("utf-8", errors="replace")


def _snippet(response: httpx.Response, limit: int = 200) -> str:
    text = response.text.strip().replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


def check_status(response: httpx.Response, what: str) -> None:
    """Raise the workflow-level error for a non-2xx response.

    The error's ``code`` is the status as a string; 5xx and 429 are retryable.
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    request = response.request
    detail = _snippet(response)
    message = f"{what}: {request.method} {request.url} answered {status}"
    if detail:
        message += f": {detail}"
    raise call_error(message, code=str(status), retryable=status >= 500 or status == 429)


def parse_body(response: httpx.Response) -> Any:
    """The response body: parsed JSON when it is JSON, text otherwise, None when empty."""
    if not response.content:
        return None
    kind = response.headers.get("content-type", "")
    if "json" in kind or not kind:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return response.text
    return response.text


async def send(
    client: httpx.AsyncClient,
    request: httpx.Request,
    what: str,
    seconds: float | None,
    limits: FetchLimits | None = None,
) -> httpx.Response:
    """Send ``request`` and read its answer within bounds.

    The whole exchange takes at most ``seconds`` (else ``limits.timeout``,
    by default :data:`CALL_TIME_LIMIT`); the body is at most
    ``limits.max_bytes`` (by default the value size limit, :mod:`tideflow.limits`).
    Transport failures and timeouts become retryable call errors; a body
    past its limit fails with ``RESPONSE_TOO_LARGE``; a connection the
    egress policy refuses fails with ``EGRESS_DENIED``.
    """
    if seconds is not None:
        request.extensions["timeout"] = httpx.Timeout(seconds).as_dict()
    tracing.inject(request.headers)  # the function call's span, when tracing is on
    deadline = seconds if seconds is not None else (limits or CALL_LIMITS).timeout
    max_bytes = limits.max_bytes if limits is not None else value_limits.current().value_bytes
    try:
        async with asyncio.timeout(deadline):
            response = await client.send(request, stream=True)
            try:
                body = await _read_bounded(response, max_bytes, what)
            finally:
                await response.aclose()
    except (TimeoutError, httpx.TransportError) as exc:
        raise transport_failure(f"{what}: {request.method} {request.url}", exc) from exc
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _FRAMING]
    return httpx.Response(response.status_code, headers=headers, content=body, request=request)


def transport_failure(where: str, exc: BaseException) -> FunctionCallError:
    """The retryable error of a request that timed out (``Timeout``) or whose connection
    failed (``ConnectionError``); ``where`` names the request."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return call_error(f"{where} timed out", code="Timeout", retryable=True)
    reason = str(exc) or type(exc).__name__
    return call_error(f"{where} failed: {reason}", code="ConnectionError", retryable=True)


_FRAMING = frozenset({"content-encoding", "content-length", "transfer-encoding"})
"""Headers describing the body as it travelled, not the decoded body kept."""


async def _read_bounded(response: httpx.Response, max_bytes: int, what: str) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            request = response.request
            raise call_error(
                f"{what}: the answer of {request.method} {request.url} is larger than "
                f"{max_bytes} bytes",
                code="RESPONSE_TOO_LARGE",
                retryable=False,
            )
    return bytes(body)
