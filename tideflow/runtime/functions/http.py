"""``call: http`` of DSL 1.0: one HTTP request described in full by the workflow.

The interpreter evaluates everything (method, URI template, headers, query,
body, authentication) and hands the invoker an :class:`Invocation` of type
``http`` whose arguments hold them. The result follows ``output``:

- ``content`` (default): the body, parsed when it is JSON;
- ``response``: ``{request: {method, uri, headers}, statusCode, headers, content}``;
- ``raw``: the body, base64-encoded.

A status outside 2xx (``redirect: false``, the default) or outside 2xx-3xx
(``redirect: true``) fails with the status as the error's ``code``. The
request carries the call's ``Idempotency-Key`` (as 0.8's REST calls do)
unless the workflow sets that header itself.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import httpx

from tideflow.runtime.functions.auth import AuthProvider
from tideflow.runtime.functions.types import (
    AuthDefinition,
    ClientLike,
    Invocation,
    UsesClient,
    call_error,
    parse_body,
    send,
)

__all__ = ["HttpInvoker", "auth_definition", "check_range", "oauth_definition", "shape", "strings"]


_GRANTS = {
    "client_credentials": "clientCredentials",
    "password": "password",
    "urn:ietf:params:oauth:grant-type:token-exchange": "tokenExchange",
}


def oauth_definition(scheme: str, policy: Mapping[str, Any]) -> AuthDefinition:
    """A 1.0 ``oauth2``/``oidc`` policy as the OAuth2 definition the 0.8 provider takes.

    ``oauth2`` asks ``authority`` + ``endpoints.token`` (by default
    ``/oauth2/token``) for tokens; ``oidc`` finds the token endpoint by the
    authority's OpenID discovery.

    Raises:
        FunctionCallError: A grant Tideflow does not request (code ``NotSupported``).
    """
    grant = str(policy.get("grant", "client_credentials"))
    if grant not in _GRANTS:
        raise call_error(f"{scheme} grant '{grant}' is not supported", code="NotSupported")
    client = policy.get("client") or {}
    authority = str(policy.get("authority", "")).rstrip("/")
    properties: dict[str, Any] = {
        "authority": authority,
        "grantType": _GRANTS[grant],
        "clientId": client.get("id"),
        "scopes": policy.get("scopes"),
        "audiences": policy.get("audiences"),
        "username": policy.get("username"),
        "password": policy.get("password"),
        "subjectToken": (policy.get("subject") or {}).get("token"),
    }
    if client.get("secret") is not None:
        properties["clientSecret"] = client["secret"]
    if scheme == "oauth2":  # oidc: the token endpoint comes from OpenID discovery
        path = str((policy.get("endpoints") or {}).get("token") or "/oauth2/token")
        properties["tokenUrl"] = path if "://" in path else f"{authority}/{path.lstrip('/')}"
    name = f"{scheme}:{authority}:{client.get('id')}"
    return AuthDefinition(name=name, scheme="oauth2", properties=properties)


def auth_definition(policy: Any) -> AuthDefinition | None:
    """An evaluated 1.0 authentication policy as the definition the auth provider takes.

    Raises:
        FunctionCallError: A scheme Tideflow does not send yet (code ``NotSupported``).
    """
    if not isinstance(policy, Mapping) or not policy:
        return None
    for scheme in ("basic", "bearer"):
        found = policy.get(scheme)
        if isinstance(found, Mapping):
            return AuthDefinition(name=scheme, scheme=scheme, properties=dict(found))
    for scheme in ("oauth2", "oidc"):
        found = policy.get(scheme)
        if isinstance(found, Mapping):
            return oauth_definition(scheme, found)
    scheme = next(iter(policy))
    raise call_error(f"authentication '{scheme}' is not supported yet", code="NotSupported")


def strings(value: Any) -> dict[str, str]:
    """An object of headers (or query parameters) as strings; ``null`` values left out."""
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

    def __init__(self, client: ClientLike, auth: AuthProvider) -> None:
        """Args:
        client: The HTTP client.
        auth: Gets (and caches) OAuth2/OIDC tokens.
        """
        super().__init__(client)
        self._auth = auth

    async def invoke(self, call: Invocation) -> Any:
        """Send the request and shape the result as ``output`` asks."""
        args = call.arguments
        method = str(args.get("method", "get")).upper()
        uri = str(args.get("uri", ""))
        headers = {
            **strings(args.get("headers")),
            **await self._auth.headers(auth_definition(args.get("authentication"))),
        }
        if call.idempotency_key and "idempotency-key" not in {h.lower() for h in headers}:
            headers["Idempotency-Key"] = call.idempotency_key
        body = args.get("body")
        request = self._client.build_request(
            method,
            uri,
            params=strings(args.get("query")) or None,
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
