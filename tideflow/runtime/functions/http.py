"""``call: http`` of DSL 1.0: one HTTP request described in full by the workflow.

The interpreter evaluates everything (method, URI template, headers, query,
body, authentication) and hands the invoker an :class:`Invocation` of type
``http`` whose arguments hold them. The result follows ``output``:

- ``content`` (default): the body, parsed when it is JSON;
- ``response``: ``{request: {method, uri, headers}, statusCode, headers, content}``;
- ``raw``: the body, base64-encoded.

A status outside 2xx (``redirect: false``, the default) or outside 2xx-3xx
(``redirect: true``) fails with the status as the error's ``code``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import httpx

from tideflow.runtime.functions.types import (
    Invocation,
    UsesClient,
    call_error,
    parse_body,
    send,
)

__all__ = ["HttpInvoker", "auth_headers", "check_range", "shape"]


def auth_headers(policy: Any) -> dict[str, str]:
    """The ``Authorization`` header of an evaluated 1.0 authentication policy.

    Raises:
        FunctionCallError: A scheme Tideflow does not send yet (code ``NotSupported``).
    """
    if not isinstance(policy, Mapping) or not policy:
        return {}
    basic = policy.get("basic")
    if isinstance(basic, Mapping):
        pair = f"{basic.get('username', '')}:{basic.get('password', '')}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    bearer = policy.get("bearer")
    if isinstance(bearer, Mapping):
        return {"Authorization": f"Bearer {bearer.get('token', '')}"}
    scheme = next(iter(policy))
    raise call_error(f"authentication '{scheme}' is not supported yet", code="NotSupported")


def _strings(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v if isinstance(v, str) else str(v) for k, v in value.items() if v is not None}


def check_range(response: httpx.Response, what: str, redirect: Any) -> None:
    """Fail outside 2xx, or outside 2xx-3xx when ``redirect`` is true (the status is the code)."""
    status = response.status_code
    if 200 <= status < (400 if redirect else 300):
        return
    raise call_error(
        f"{what}: {response.request.method} {response.request.url} answered {status}",
        code=str(status),
        retryable=status >= 500 or status == 429,
    )


class HttpInvoker(UsesClient):
    """Sends the request of a ``call: http`` task."""

    async def invoke(self, call: Invocation) -> Any:
        """Send the request and shape the result as ``output`` asks."""
        args = call.arguments
        method = str(args.get("method", "get")).upper()
        uri = str(args.get("uri", ""))
        headers = {**_strings(args.get("headers")), **auth_headers(args.get("authentication"))}
        body = args.get("body")
        request = self._client.build_request(
            method,
            uri,
            params=_strings(args.get("query")) or None,
            headers=headers,
            content=body if isinstance(body, str | bytes) else None,
            json=None if body is None or isinstance(body, str | bytes) else body,
        )
        what = f"call {call.name!r}"
        response = await send(self._client, request, what, call.timeout)
        check_range(response, what, args.get("redirect"))
        return shape(str(args.get("output", "content")), response)


def shape(mode: str, response: httpx.Response) -> Any:
    """The result of a 1.0 call as ``output`` asks: ``content``, ``response`` or ``raw``."""
    request = response.request
    if mode == "raw":
        return base64.b64encode(response.content).decode("ascii")
    content = parse_body(response)
    if mode != "response":
        return content
    return {
        "request": {
            "method": request.method,
            "uri": str(request.url),
            "headers": dict(request.headers),
        },
        "statusCode": response.status_code,
        "headers": dict(response.headers),
        "content": content,
    }
