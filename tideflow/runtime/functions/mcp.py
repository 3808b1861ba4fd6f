"""``call: mcp`` of DSL 1.0: one method of a Model Context Protocol server, over
MCP's streamable HTTP transport.

The interpreter hands over the evaluated arguments: ``endpoint`` (the URI of
``transport.http.endpoint``), its ``authentication`` policy, ``headers``,
``protocolVersion`` (default ``2025-06-18``), ``method``, ``parameters`` and
``client`` (``{name, version}``, by default Tideflow's). Each call opens its
own session, as the protocol asks:

1. ``initialize`` (the protocol version, no capabilities, the client's info);
   the server's ``Mcp-Session-Id`` (if any) and the version it agreed to go
   with every later request (``MCP-Protocol-Version``);
2. the ``notifications/initialized`` notification;
3. the method itself: its JSON-RPC ``result`` is the output (a tool's own
   failure, ``isError: true``, is a result too, as MCP reports it);
4. a ``DELETE`` ending the session (best effort, a few seconds at most).

Answers may be JSON or server-sent events (notifications and server requests
before the response are skipped). Every request goes through the invoker's
HTTP client, hence the egress policy; the call is bounded by ``CALL_LIMITS``
(five minutes; the workflow's ``timeout`` bounds it more, through the host)
and its answers together by the value size limit. The stdio transport is
never run (:data:`tideflow.workflow.dsl1.walk.MCP_STDIO`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any, Final

import httpx

import tideflow
from tideflow.egress import CALL_LIMITS
from tideflow.runtime.functions.auth import AuthProvider
from tideflow.runtime.functions.http import auth_definition, strings
from tideflow.runtime.functions.jsonrpc import Budget, answers, post, response_to, result_of
from tideflow.runtime.functions.types import ClientLike, Invocation, UsesClient, call_error

__all__ = ["PROTOCOL_VERSION", "McpInvoker"]

PROTOCOL_VERSION: Final = "2025-06-18"
"""The version the DSL defaults to."""
_END_SESSION_SECONDS = 5.0


class McpInvoker(UsesClient):
    """Calls MCP servers over streamable HTTP."""

    def __init__(self, client: ClientLike, auth: AuthProvider) -> None:
        """Args:
        client: The HTTP client (the egress policy's).
        auth: Turns the authentication policy into headers.
        """
        super().__init__(client)
        self._auth = auth

    async def invoke(self, call: Invocation) -> Any:
        """Initialize a session, send the method, end the session; the method's result."""
        args = call.arguments
        what = f"call {call.name!r}"
        parameters = args.get("parameters")
        if parameters is not None and not isinstance(parameters, Mapping):
            raise call_error(
                f"{what}: the MCP parameters must be an object, not {json.dumps(parameters)[:80]}",
                code="InvalidOperation",
            )
        endpoint = str(args.get("endpoint") or "")
        if not endpoint.startswith(("http://", "https://")):
            raise call_error(
                f"{what}: the MCP endpoint {endpoint!r} is not an http(s) URL",
                code="InvalidOperation",
            )
        headers = {
            **strings(args.get("headers")),
            **await self._auth.headers(auth_definition(args.get("authentication"))),
        }
        try:
            async with asyncio.timeout(CALL_LIMITS.timeout):
                return await self._session(call, endpoint, headers, parameters, what)
        except TimeoutError as exc:
            message = f"{what}: the MCP server did not answer in time"
            raise call_error(message, code="Timeout") from exc

    async def _session(
        self,
        call: Invocation,
        endpoint: str,
        headers: dict[str, str],
        parameters: Mapping[str, Any] | None,
        what: str,
    ) -> Any:
        args = call.arguments
        budget = Budget()
        version = str(args.get("protocolVersion") or PROTOCOL_VERSION)
        given = args.get("client")
        client: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
        info = {
            "name": str(client.get("name") or "tideflow"),
            "version": str(client.get("version") or tideflow.__version__),
        }
        hello = {
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": info},
        }  # fmt: skip
        where = f"{what} (initialize)"
        answer = await post(self._client, endpoint, hello, headers, where, budget,
                            until=lambda m: answers(m, 0))  # fmt: skip
        agreed = result_of(response_to(answer, 0, where), where)
        agreed = agreed if isinstance(agreed, Mapping) else {}
        session = answer.headers.get("mcp-session-id")
        headers = {**headers, "MCP-Protocol-Version": str(agreed.get("protocolVersion") or version)}
        if session:
            headers["Mcp-Session-Id"] = session
        try:
            initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            await post(self._client, endpoint, initialized, headers, what, budget)
            method = str(args.get("method", ""))
            request: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
            if parameters is not None:
                request["params"] = dict(parameters)
            where = f"{what} ({method})"
            answer = await post(self._client, endpoint, request, headers, where, budget,
                                until=lambda m: answers(m, 1))  # fmt: skip
            return result_of(response_to(answer, 1, where), where)
        finally:
            task = asyncio.current_task()
            if session and not (task is not None and task.cancelling()):
                await self._end(endpoint, headers)

    async def _end(self, endpoint: str, headers: dict[str, str]) -> None:
        """Ask the server to end the session; whatever it answers (405: it does not let
        clients end sessions), the call's outcome stays."""
        try:
            async with asyncio.timeout(_END_SESSION_SECONDS):
                response = await self._client.request("DELETE", endpoint, headers=headers)
                await response.aclose()
        except (TimeoutError, httpx.HTTPError):
            pass
