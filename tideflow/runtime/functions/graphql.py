"""``graphql`` functions: one query or mutation field, POSTed as JSON.

``operation`` is ``<endpoint URL>#query|mutation#<field>``. The evaluated
arguments become the field's GraphQL arguments (written as literals: strings
quoted, objects as input objects), ``selectionSet`` is required, and the result
is ``data.<field>``. A response with ``errors`` fails the call with code
``GraphQLError``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from tideflow.runtime.functions.auth import AuthProvider
from tideflow.runtime.functions.types import (
    ClientLike,
    Invocation,
    UsesClient,
    call_error,
    check_status,
    send,
)

_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")


def parse_operation(operation: str) -> tuple[str, str, str]:
    """Split ``url#query#field`` into endpoint, kind and field."""
    endpoint, _, rest = operation.partition("#")
    kind, _, field = rest.partition("#")
    if kind not in ("query", "mutation") or not endpoint or not _NAME.fullmatch(field):
        raise call_error(
            f"graphql operation {operation!r} is not '<endpoint URL>#query|mutation#<field>'",
            code="InvalidOperation",
        )
    return endpoint, kind, field


def literal(value: Any) -> str:
    """``value`` written as a GraphQL input literal."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_name(k)}: {literal(v)}" for k, v in value.items()) + "}"
    raise call_error(
        f"cannot write {type(value).__name__} as a GraphQL value", code="InvalidArguments"
    )


def build_document(kind: str, field: str, arguments: Mapping[str, Any], selection: str) -> str:
    """The GraphQL document for one field."""
    args = ", ".join(f"{_name(k)}: {literal(v)}" for k, v in arguments.items())
    call = f"{field}({args})" if args else field
    body = selection.strip()
    if not body.startswith("{"):
        body = "{ " + body + " }"
    return f"{kind} {{ {call} {body} }}"


def _name(key: Any) -> str:
    if not isinstance(key, str) or not _NAME.fullmatch(key):
        raise call_error(f"{key!r} is not a valid GraphQL argument name", code="InvalidArguments")
    return key


class GraphQLInvoker(UsesClient):
    """Calls ``graphql`` functions."""

    def __init__(self, client: ClientLike, auth: AuthProvider) -> None:
        """Args:
        client: The HTTP client.
        auth: Adds the headers of a function's ``authRef``.
        """
        super().__init__(client)
        self._auth = auth

    async def invoke(self, call: Invocation) -> Any:
        """POST the query or mutation and return ``data.<field>``."""
        endpoint, kind, field = parse_operation(call.operation)
        if not call.selection_set or not call.selection_set.strip():
            raise call_error(
                f"function {call.name!r} is a graphql function: its functionRef needs a "
                "selectionSet",
                code="InvalidArguments",
            )
        document = build_document(kind, field, call.arguments, call.selection_set)
        headers = await self._auth.headers(call.auth)
        if call.idempotency_key:
            headers["Idempotency-Key"] = call.idempotency_key
        request = self._client.build_request(
            "POST", endpoint, json={"query": document}, headers=headers
        )
        what = f"function {call.name!r}"
        response = await send(self._client, request, what, call.timeout)
        check_status(response, what)
        try:
            payload = response.json()
        except ValueError as exc:
            raise call_error(
                f"{what}: the GraphQL answer is not JSON", code="GraphQLError"
            ) from exc
        errors = payload.get("errors") if isinstance(payload, dict) else None
        if errors:
            first = (
                errors[0].get("message", errors[0]) if isinstance(errors[0], dict) else errors[0]
            )
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise call_error(f"{what}: GraphQL error: {first}{more}", code="GraphQLError")
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, dict) or field not in data:
            raise call_error(f"{what}: the GraphQL answer has no data.{field}", code="GraphQLError")
        return data[field]
