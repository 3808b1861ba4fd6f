"""``custom`` functions: the operation forms Tideflow understands.

- ``python:package.module:function`` -- an in-process callable
  (see :mod:`tideflow.runtime.functions.python`).
- ``rest:<METHOD>:<URL>`` -- a plain HTTP call without an OpenAPI document.
  ``{name}`` placeholders in the URL take the argument of that name; the other
  arguments are the query for GET, DELETE and HEAD, the JSON body otherwise.
  A relative URL needs a server given for the function's name.
- ``sysout`` / ``sysout:<LEVEL>`` (SonataFlow) -- logs ``arguments.message``.
- ``service:...`` (SonataFlow) -- runs only when bound by function name
  (``--functions``); there is no Java to call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from tideflow.runtime.functions.auth import AuthProvider
from tideflow.runtime.functions.types import (
    ClientLike,
    Invocation,
    UsesClient,
    call_error,
    check_status,
    parse_body,
    send,
)

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_QUERY_METHODS = frozenset({"GET", "DELETE", "HEAD"})
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def parse_rest(operation: str) -> tuple[str, str]:
    """Split ``rest:post:https://host/path`` into method and URL."""
    _, _, rest = operation.partition(":")
    method, sep, url = rest.partition(":")
    if not sep or method.upper() not in _METHODS or not url:
        raise call_error(
            f"operation {operation!r} is not 'rest:<METHOD>:<URL>' "
            "(METHOD one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS)",
            code="InvalidOperation",
        )
    return method.upper(), url


def fill_url(url: str, arguments: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Replace ``{name}`` placeholders; return the URL and the unused arguments."""
    remaining = dict(arguments)

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in remaining:
            raise call_error(f"URL {url!r} needs the argument {name!r}", code="InvalidArguments")
        return quote(_text(remaining.pop(name)), safe="")

    return _PLACEHOLDER.sub(replace, url), remaining


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


class RestShorthandInvoker(UsesClient):
    """Calls ``rest:<METHOD>:<URL>`` custom functions."""

    def __init__(
        self,
        client: ClientLike,
        auth: AuthProvider,
        servers: Mapping[str, str] | None = None,
    ) -> None:
        """Args:
        client: The HTTP client.
        auth: Adds the headers of a function's ``authRef``.
        servers: Base URLs for relative URLs, keyed by function name.
        """
        super().__init__(client)
        self._auth = auth
        self._servers = dict(servers or {})

    async def invoke(self, call: Invocation) -> Any:
        """Make the call and return the parsed response."""
        method, url = parse_rest(call.operation)
        url, remaining = fill_url(url, call.arguments)
        if not url.startswith(("http://", "https://")):
            base = self._servers.get(call.name)
            if base is None:
                raise call_error(
                    f"function {call.name!r}: URL {url!r} is relative and no server is set for it",
                    code="NoServer",
                )
            url = base.rstrip("/") + "/" + url.lstrip("/")
        headers = await self._auth.headers(call.auth)
        if call.idempotency_key:
            headers["Idempotency-Key"] = call.idempotency_key
        query = [(k, _text(v)) for k, v in remaining.items()] if method in _QUERY_METHODS else []
        body = remaining if method not in _QUERY_METHODS else None
        request = self._client.build_request(
            method, url, params=tuple(query), headers=headers, json=body
        )
        what = f"function {call.name!r}"
        response = await send(self._client, request, what, call.timeout)
        check_status(response, what)
        return parse_body(response)


def sysout(call: Invocation, log: Callable[[str], None]) -> None:
    """SonataFlow's ``sysout``: log the ``message`` argument (or all arguments)."""
    _, _, level = call.operation.partition(":")
    message = call.arguments.get("message", dict(call.arguments))
    text = message if isinstance(message, str) else json.dumps(message, default=str)
    log(f"[{(level or 'INFO').upper()}] {call.name}: {text}")
