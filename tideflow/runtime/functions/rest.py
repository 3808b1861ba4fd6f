"""``rest`` functions: call an OpenAPI operation over HTTP.

The request is built by :mod:`tideflow.runtime.functions.openapi`; the server
comes from an override (by function name or document reference), else from
the operation's, path's or document's ``servers`` (relative server URLs
resolve against the document's URL), else the document's own origin.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tideflow.egress import EgressPolicy, is_remote
from tideflow.runtime.functions.auth import AuthProvider
from tideflow.runtime.functions.openapi import (
    Document,
    Operation,
    build_request,
    find_operation,
    parse_document,
    resolve_location,
    split_operation,
)
from tideflow.runtime.functions.types import (
    AuthDefinition,
    ClientLike,
    Invocation,
    UsesClient,
    bundle_key,
    call_error,
    check_status,
    fetch_document,
    parse_body,
    send,
)


class RestInvoker(UsesClient):
    """Calls ``rest`` functions, caching the OpenAPI documents it reads."""

    def __init__(
        self,
        client: ClientLike,
        auth: AuthProvider,
        servers: Mapping[str, str] | None = None,
        egress: EgressPolicy | None = None,
    ) -> None:
        """Args:
        client: The HTTP client for documents and calls.
        auth: Adds the headers of a function's ``authRef``.
        servers: Base URLs that replace the documents' ``servers``, keyed by
            function name or by document reference (the part before ``#``).
        egress: Which local documents may be read (any by default); network
            access is the client's (its transport asks the same policy).
        """
        super().__init__(client)
        self._auth = auth
        self._servers = dict(servers or {})
        self._egress = egress or EgressPolicy.everything()
        self._documents: dict[str, Document] = {}

    async def invoke(self, call: Invocation) -> Any:
        """Call the operation and return its parsed response."""
        response = await self.send(call, call.arguments)
        check_status(response, f"function {call.name!r}")
        return parse_body(response)

    async def send(self, call: Invocation, arguments: Mapping[str, Any]) -> httpx.Response:
        """Send the operation's request built from ``arguments``; return the response as is."""
        reference, op_id = split_operation(call.operation)
        if call.document is not None:  # brought by the definition's bundle, stored with it
            location = reference
            document = self._bundled(reference, call.document)
        else:
            location = resolve_location(reference, call.base_dir)
            document = await self.document(location, call.auth)
        operation = find_operation(document, op_id)
        server = self._server(call.name, reference, location, operation)
        parts = build_request(operation, arguments, server)
        headers = {**parts.headers, **await self._auth.headers(call.auth)}
        if call.idempotency_key:
            headers["Idempotency-Key"] = call.idempotency_key
        request = self._client.build_request(
            parts.method,
            parts.url,
            params=tuple(parts.params),
            headers=headers,
            cookies=parts.cookies or None,
            json=parts.body if parts.has_body else None,
        )
        return await send(self._client, request, f"function {call.name!r}", call.timeout)

    async def document(self, location: str, auth: AuthDefinition | None = None) -> Document:
        """The OpenAPI document at ``location`` (a URL or absolute path), cached."""
        cached = self._documents.get(location)
        if cached is not None:
            return cached
        headers = await self._auth.headers(auth) if is_remote(location) else None
        text = await fetch_document(
            self._source, location, self._egress, "OpenAPI document", headers
        )
        document = parse_document(text, location)
        self._documents[location] = document
        return document

    def _bundled(self, reference: str, text: str) -> Document:
        """A bundle's document, parsed once per content."""
        key = bundle_key(text)
        if key not in self._documents:
            self._documents[key] = parse_document(text, reference)
        return self._documents[key]

    def _server(self, name: str, reference: str, location: str, operation: Operation) -> str:
        for key in (name, reference, location):
            if key in self._servers:
                return self._servers[key]
        absolute = [s for s in operation.servers if s.startswith(("http://", "https://"))]
        if absolute:
            return absolute[0]
        if location.startswith(("http://", "https://")):
            parts = urlsplit(location)
            return f"{parts.scheme}://{parts.netloc}"
        raise call_error(
            f"OpenAPI document {Path(location).name} is a local file and declares no absolute "
            "'servers' URL: add one to it or pass a server for this function",
            code="NoServer",
        )
