"""One entry point for every function type: :class:`FunctionInvoker`."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.egress import EgressPolicy
from tideflow.runtime.functions.a2a import A2AInvoker
from tideflow.runtime.functions.auth import AuthProvider
from tideflow.runtime.functions.custom import RestShorthandInvoker, sysout
from tideflow.runtime.functions.graphql import GraphQLInvoker
from tideflow.runtime.functions.http import HttpInvoker, auth_definition, check_range, shape
from tideflow.runtime.functions.mcp import McpInvoker
from tideflow.runtime.functions.messaging import DSL1_TYPE, AsyncApiInvoker, Brokers
from tideflow.runtime.functions.odata import ODataInvoker
from tideflow.runtime.functions.python import PythonFunction, call_function, load_function
from tideflow.runtime.functions.rest import RestInvoker
from tideflow.runtime.functions.rpc import GrpcInvoker
from tideflow.runtime.functions.scripts import (
    JS_SCRIPT_OPERATION,
    SCRIPT_OPERATION,
    SCRIPT_SOURCE_LIMITS,
    run_script,
)
from tideflow.runtime.functions.types import (
    Invocation,
    call_error,
    check_status,
    read_document,
    send,
)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _redirector(redirects: Mapping[str, str]) -> Callable[[httpx.Request], Awaitable[None]]:
    pairs = sorted(redirects.items(), key=lambda kv: -len(kv[0]))

    async def rewrite(request: httpx.Request) -> None:
        url = str(request.url)
        for prefix, target in pairs:
            if url.startswith(prefix):
                request.url = httpx.URL(target + url[len(prefix) :])
                request.headers["Host"] = request.url.netloc.decode("ascii")
                return

    return rewrite


class FunctionInvoker:
    """Calls workflow functions of every type Tideflow supports.

    Use it as an async context manager (or call :meth:`aclose`) so the HTTP
    client it owns is closed.
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        overrides: Mapping[str, PythonFunction] | None = None,
        servers: Mapping[str, str] | None = None,
        redirects: Mapping[str, str] | None = None,
        log: Callable[[str], None] = _stderr,
        clock: Clock = SYSTEM_CLOCK,
        egress: EgressPolicy | None = None,
        brokers: Brokers | None = None,
        sync_threads: int = 0,
    ) -> None:
        """Args:
        client: An HTTP client to use; by default one is made (and closed).
        overrides: Callables that replace functions, by function name, whatever
            their type (``--functions``; SonataFlow ``service:`` bindings).
        servers: Base URLs replacing OpenAPI ``servers`` (by function name or
            document reference) and for relative ``rest:`` URLs (by name);
            ``host:port`` of gRPC servers (by function or service name).
        redirects: URL prefixes to rewrite before any request is sent
            (``{"http://localhost:8080": "http://127.0.0.1:5000"}``): documents,
            calls and token requests alike (``tideflow run --server``).
        log: Where ``sysout`` writes.
        clock: Decides when cached OAuth2 tokens expire.
        egress: Where calls, documents and token requests may go, and which
            local documents may be read (:mod:`tideflow.egress`); by default
            anywhere (``tideflow run``). It holds for the client made here,
            not for a ``client`` passed in.
        brokers: Message brokers for AsyncAPI calls (the connectors,
            :class:`tideflow.connectors.messaging.ConnectorBrokers`); without
            them only ``http(s)`` AsyncAPI servers are reached.
        sync_threads: Run the plain ``def`` callables of ``python:`` functions and
            ``overrides`` on a pool of this many threads (made here, closed by
            :meth:`aclose`), so a slow one holds no other call; more calls than threads
            queue. ``0`` (the default, the PostgreSQL engine): on the event loop.
        """
        self._threads = (
            ThreadPoolExecutor(sync_threads, thread_name_prefix="tideflow-function")
            if sync_threads > 0
            else None
        )
        self._own_client = client is None
        self._client = client
        self._redirects = dict(redirects or {})
        if client is not None and redirects:
            client.event_hooks["request"].append(_redirector(redirects))
        self._overrides = dict(overrides or {})
        self._log = log
        self.egress = egress or EgressPolicy.everything()
        auth = AuthProvider(self.client, clock)
        self._auth = auth
        self.rest = RestInvoker(self.client, auth, servers, self.egress)
        self._graphql = GraphQLInvoker(self.client, auth)
        self._odata = ODataInvoker(self.client, auth)
        self._shorthand = RestShorthandInvoker(self.client, auth, servers)
        self._http = HttpInvoker(self.client, auth)
        self._grpc = GrpcInvoker(self.client, servers, self.egress)
        self._asyncapi = AsyncApiInvoker(self.client, brokers, self.egress)
        self._a2a = A2AInvoker(self.client, auth, self.egress)
        self._mcp = McpInvoker(self.client, auth)
        self._python: dict[str, PythonFunction] = {}
        self._handlers: dict[str, Callable[[Invocation], Awaitable[Any]]] = {
            "http": self._http.invoke,  # DSL 1.0 call: http
            "openapi": self._openapi,  # DSL 1.0 call: openapi
            "rpc": self._grpc.invoke,  # 0.8 rpc functions
            "grpc": self._grpc.invoke,  # DSL 1.0 call: grpc
            "asyncapi": self._asyncapi.invoke,  # 0.8 asyncapi functions
            DSL1_TYPE: self._asyncapi.invoke,  # DSL 1.0 call: asyncapi
            "a2a": self._a2a.invoke,  # DSL 1.0 call: a2a
            "mcp": self._mcp.invoke,  # DSL 1.0 call: mcp
            "graphql": self._graphql.invoke,
            "odata": self._odata.invoke,
            "custom": self._custom,
            "script": self._custom,
        }

    async def __aenter__(self) -> FunctionInvoker:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the gRPC channels, the HTTP client if this invoker made it, and its threads
        (calls still running on them finish, unawaited)."""
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
        await self._grpc.aclose()
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def client(self) -> httpx.AsyncClient:
        """The HTTP client, made on first use (building one costs tens of milliseconds)."""
        if self._client is None:
            hooks = [_redirector(self._redirects)] if self._redirects else []
            transport = None
            if not self.egress.allow_all:
                # Imported here: it brings aiohttp (~13,000 objects every full garbage
                # collection walks), which a runtime whose functions make no HTTP call
                # never needs.
                from tideflow.egress_connect import egress_transport

                transport = egress_transport(self.egress)
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(60.0),
                event_hooks={"request": hooks},
                transport=transport,
                trust_env=transport is None,  # an environment proxy would bypass the policy
            )
        return self._client

    def has_override(self, name: str) -> bool:
        """Whether a callable replaces the function ``name``."""
        return name in self._overrides

    async def invoke(self, call: Invocation) -> Any:
        """Call the function and return its result.

        Raises:
            FunctionCallError: The call failed; ``code`` says how (an HTTP
                status, an exception's code or class name, or one of
                Tideflow's own codes such as ``NotSupported``).
        """
        override = self._overrides.get(call.name)
        if override is not None:
            return await call_function(
                override,
                call.arguments,
                call.idempotency_key,
                name=call.name,
                threads=self._threads,
            )
        kind = call.type or "rest"
        if call.operation.startswith("python:") and kind in ("rest", "custom"):
            return await self._call_python(call)
        if kind == "rest":
            if call.operation.startswith("rest:"):  # the shorthand, written without type custom
                return await self._shorthand.invoke(call)
            return await self.rest.invoke(call)
        handler = self._handlers.get(kind)
        if handler is not None:
            return await handler(call)
        if kind == "expression":
            raise call_error(
                f"function {call.name!r}: expression functions are evaluated by the "
                "interpreter, not invoked",
                code="InvalidOperation",
            )
        raise call_error(f"function {call.name!r}: unknown type {kind!r}", code="InvalidOperation")

    async def _openapi(self, call: Invocation) -> Any:
        """A 1.0 ``call: openapi``: arguments ``parameters``, ``output``, ``redirect``."""
        args = call.arguments
        auth = auth_definition(args.get("authentication"))
        if auth is not None:
            call = replace(call, auth=auth)
        response = await self.rest.send(call, args.get("parameters") or {})
        check_range(response, f"call {call.name!r}", args.get("redirect"))
        return shape(str(args.get("output", "content")), response)

    async def _custom(self, call: Invocation) -> Any:
        op = call.operation
        if call.type == "script" and op in (SCRIPT_OPERATION, JS_SCRIPT_OPERATION):
            return await run_script(call, await self._script_code(call))  # DSL 1.0 run: script
        if op.startswith("rest:"):
            return await self._shorthand.invoke(call)
        if op == "sysout" or op.startswith("sysout:"):
            sysout(call, self._log)
            return None
        if op.startswith(("service:", "script:")):  # SonataFlow's Java/Python services, scripts
            kind = "service call" if op.startswith("service:") else "script"
            raise call_error(
                f"function {call.name!r} ({op}) is a SonataFlow {kind}: bind a Python "
                f"callable named {call.name!r} with --functions",
                code="NotBound",
            )
        raise call_error(
            f"function {call.name!r}: custom operation {op!r} is not one Tideflow knows "
            "(python:module:function, rest:METHOD:URL, sysout, service:..., script:...)",
            code="InvalidOperation",
        )

    async def _script_code(self, call: Invocation) -> str:
        """A script's code: inline, or read from its ``source`` (``{uri, authentication}``).

        An ``http(s)`` source is fetched through the egress policy within
        :data:`~tideflow.runtime.functions.scripts.SCRIPT_SOURCE_LIMITS`; a path
        or ``file:`` URI (relative to the workflow's folder) is read only where
        the egress policy allows local documents. Nothing is cached: a run
        reads the source as it is then (the call's result is journaled, so a
        replay does not read it again).
        """
        args = call.arguments
        code = args.get("code")
        if isinstance(code, str):
            return code
        source = args.get("source")
        uri = source.get("uri") if isinstance(source, Mapping) else None
        if not isinstance(uri, str) or not uri:
            raise call_error(f"task {call.name!r}: the script has no code", code="InvalidOperation")
        limits = SCRIPT_SOURCE_LIMITS
        if uri.lower().startswith(("http://", "https://")):
            auth = auth_definition(source.get("authentication"))  # type: ignore[union-attr]
            headers = await self._auth.headers(auth)
            what = f"script source of {call.name!r}"
            request = self.client().build_request("GET", uri, headers=headers)
            response = await send(self.client(), request, what, None, limits)
            check_status(response, what)
            return response.text
        path = Path(uri[len("file://") :] if uri.startswith("file://") else uri)
        if not path.is_absolute():
            path = (call.base_dir or Path.cwd()) / path
        return await read_document(
            str(path), self.egress, f"script source of {call.name!r}", limits.max_bytes
        )

    async def _call_python(self, call: Invocation) -> Any:
        function = self._python.get(call.operation)
        if function is None:
            function = load_function(call.operation, call.base_dir)
            self._python[call.operation] = function
        return await call_function(
            function, call.arguments, call.idempotency_key, name=call.name, threads=self._threads
        )
