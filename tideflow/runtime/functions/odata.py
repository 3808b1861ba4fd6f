"""``odata`` functions: GET an entity set with query options.

``operation`` is ``<service URI>#<EntitySet>``. ``arguments.key`` addresses one
entity (``EntitySet('key')``, or ``EntitySet(42)`` for a number);
``arguments.queryOptions`` become the ``$``-prefixed system query options
(``filter`` -> ``$filter``, ``orderBy`` -> ``$orderby``, ...). Other arguments
are sent as custom query options. The result is the JSON response as is, so a
collection is ``{"value": [...]}`` (plus ``@odata.count`` when asked for).
"""

from __future__ import annotations

import json
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

OPTIONS = {
    "filter": "$filter",
    "expand": "$expand",
    "select": "$select",
    "orderBy": "$orderby",
    "top": "$top",
    "skip": "$skip",
    "count": "$count",
    "search": "$search",
    "format": "$format",
    "compute": "$compute",
    "index": "$index",
    "schemaVersion": "$schemaversion",
}


def build_query(call: Invocation) -> tuple[str, list[tuple[str, str]]]:
    """The URL and query parameters for ``call``."""
    service, sep, entity_set = call.operation.rpartition("#")
    if not sep or not service or not entity_set:
        raise call_error(
            f"odata operation {call.operation!r} is not '<service URI>#<EntitySet>'",
            code="InvalidOperation",
        )
    url = service.rstrip("/") + "/" + quote(entity_set, safe="")
    args = dict(call.arguments)
    if "key" in args:
        key = args.pop("key")
        shown = str(key) if isinstance(key, int) else "'" + str(key).replace("'", "''") + "'"
        url += "(" + quote(shown, safe="'()") + ")"
    params: list[tuple[str, str]] = []
    options = args.pop("queryOptions", None) or {}
    if not isinstance(options, dict):
        raise call_error("odata queryOptions must be an object", code="InvalidArguments")
    for name, value in options.items():
        if name not in OPTIONS:
            known = ", ".join(OPTIONS)
            raise call_error(
                f"unknown OData query option {name!r} (known: {known})", code="InvalidArguments"
            )
        params.append((OPTIONS[name], _text(value)))
    params.extend((name, _text(value)) for name, value in args.items())
    return url, params


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


class ODataInvoker(UsesClient):
    """Calls ``odata`` functions."""

    def __init__(self, client: ClientLike, auth: AuthProvider) -> None:
        """Args:
        client: The HTTP client.
        auth: Adds the headers of a function's ``authRef``.
        """
        super().__init__(client)
        self._auth = auth

    async def invoke(self, call: Invocation) -> Any:
        """GET the entity set (or entity) and return the parsed JSON."""
        url, params = build_query(call)
        headers = {"Accept": "application/json", **await self._auth.headers(call.auth)}
        if call.idempotency_key:
            headers["Idempotency-Key"] = call.idempotency_key
        request = self._client.build_request("GET", url, params=tuple(params), headers=headers)
        what = f"function {call.name!r}"
        response = await send(self._client, request, what, call.timeout)
        check_status(response, what)
        return parse_body(response)
