"""gRPC calls: 0.8 ``rpc`` functions and DSL 1.0 ``call: grpc``, one implementation.

A 0.8 ``rpc`` function's ``operation`` is ``<proto file>#<Service>#<Method>``;
its arguments are the request message's fields (JSON names or proto names).
The server is found, in order: a server given for the function's name or the
service's name (``host:port``), SonataFlow's
``quarkus.grpc.clients.<Service>.host``/``.port`` in the
``application.properties`` beside the workflow. A 1.0 call names the service's
``host`` and ``port`` itself and passes the message as ``with.arguments``.

The proto file is read like an OpenAPI document (a path relative to the
workflow's folder, ``file:``/``classpath:``, or an ``http(s)`` URL; local files
only where the egress policy allows them) and compiled once
(:mod:`tideflow.runtime.functions.protos`). Unary and server-streaming
methods are called; a server-streaming method's result is the list of its
messages. Client-streaming and bidirectional methods fail with
``NotSupported``. A gRPC status other than OK becomes a call error whose code
is the status name (``NOT_FOUND``, ``UNAVAILABLE``, ...); ``UNAVAILABLE``,
``DEADLINE_EXCEEDED``, ``RESOURCE_EXHAUSTED`` and ``ABORTED`` are retryable.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import anyio

from tideflow import limits as value_limits
from tideflow.egress import CALL_LIMITS, EgressPolicy
from tideflow.errors import EgressDenied, FunctionCallError, Problem
from tideflow.runtime.functions.openapi import resolve_location
from tideflow.runtime.functions.protos import (
    Method,
    ProtoFile,
    compile_proto,
    missing_extra,
    split_rpc_operation,
)
from tideflow.runtime.functions.types import (
    ClientLike,
    Invocation,
    UsesClient,
    call_error,
    checked_address,
    fetch_document,
)

if TYPE_CHECKING:
    from tideflow.workflow.model import FunctionDef

RETRYABLE: Final = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED"})
MAX_STREAMED: Final = 10_000
"""The most messages a server-streaming call may answer."""
PROPERTIES: Final = "application.properties"


class GrpcInvoker(UsesClient):
    """Calls gRPC methods, caching compiled proto files and channels."""

    def __init__(
        self,
        client: ClientLike,
        servers: Mapping[str, str] | None = None,
        egress: EgressPolicy | None = None,
    ) -> None:
        """Args:
        client: The HTTP client for proto files given by URL.
        servers: ``host:port`` by function name or service name (0.8 ``rpc``).
        egress: Which local files may be read and which addresses called.
        """
        super().__init__(client)
        self._servers = dict(servers or {})
        self._egress = egress or EgressPolicy.everything()
        self._protos: dict[str, ProtoFile] = {}
        self._channels: dict[str, Any] = {}

    async def aclose(self) -> None:
        """Close the channels opened."""
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.close()

    async def invoke(self, call: Invocation) -> Any:
        """Call the method ``call.operation`` names and return its answer as JSON values."""
        if (missing := missing_extra()) is not None:
            raise call_error(f"function {call.name!r}: {missing}", code="NotSupported")
        reference, service, method_name = split_rpc_operation(call.operation)
        proto = await self.proto(resolve_location(reference, call.base_dir))
        method = proto.method(service, method_name)
        if call.type == "grpc":  # DSL 1.0: with.service.host/port, with.arguments
            target = _service_target(call)
            fields = call.arguments.get("arguments") or {}
            metadata = _auth_metadata(call.arguments.get("authentication"))
        else:
            target = await self._target(call, method)
            fields, metadata = call.arguments, []
        if call.idempotency_key:
            metadata.append(("idempotency-key", call.idempotency_key))
        return await self._call(call, method, target, fields, metadata)

    async def proto(self, location: str) -> ProtoFile:
        """The compiled proto file at ``location`` (a URL or absolute path), cached."""
        cached = self._protos.get(location)
        if cached is not None:
            return cached
        text = await fetch_document(self._source, location, self._egress, "proto file")
        if location.startswith(("http://", "https://")):  # imports: well-known types only
            name = location.rsplit("/", 1)[-1].split("?")[0] or "service.proto"
            compiled = await compile_proto(text, name, None, location)
        else:
            path = Path(location)
            compiled = await compile_proto(text, path.name, path.parent, location)
        self._protos[location] = compiled
        return compiled

    async def _target(self, call: Invocation, method: Method) -> str:
        short = method.service.rpartition(".")[2]
        for key in (call.name, method.service, short):
            if key in self._servers:
                return self._servers[key]
        found = await _properties_target(call.base_dir, short)
        if found is not None:
            return found
        raise call_error(
            f"function {call.name!r}: no server for gRPC service {method.service}: set "
            f"quarkus.grpc.clients.{short}.host and .port in the {PROPERTIES} beside the "
            "workflow, or give a server for the function",
            code="NoServer",
        )

    async def _call(
        self,
        call: Invocation,
        method: Method,
        target: str,
        fields: Any,
        metadata: list[tuple[str, str]],
    ) -> Any:
        import grpc
        from google.protobuf import json_format

        what = f"function {call.name!r}: gRPC {method.service}/{method.name} at {target}"
        if method.client_streaming:
            raise call_error(
                f"{what}: client-streaming and bidirectional methods are not supported "
                "(unary and server-streaming are)",
                code="NotSupported",
            )
        if not isinstance(fields, Mapping):
            raise call_error(f"{what}: the arguments must be an object", code="InvalidArguments")
        try:
            request = json_format.ParseDict(dict(fields), method.request())
        except json_format.ParseError as exc:
            raise call_error(
                f"{what}: the arguments do not fit {method.request.DESCRIPTOR.full_name}: {exc}",
                code="InvalidArguments",
            ) from exc
        channel = await self._channel(target)
        seconds = call.timeout if call.timeout is not None else CALL_LIMITS.timeout
        kinds = {
            "request_serializer": method.request.SerializeToString,
            "response_deserializer": method.response.FromString,
        }
        try:
            if method.server_streaming:
                stream = channel.unary_stream(method.path, **kinds)(
                    request, timeout=seconds, metadata=metadata or None
                )
                answers: list[Any] = []
                async for message in stream:
                    if len(answers) >= MAX_STREAMED:
                        stream.cancel()
                        raise call_error(
                            f"{what}: the stream sent more than {MAX_STREAMED} messages",
                            code="RESPONSE_TOO_LARGE",
                        )
                    answers.append(_json(message))
                return answers
            unary = channel.unary_unary(method.path, **kinds)
            return _json(await unary(request, timeout=seconds, metadata=metadata or None))
        except grpc.aio.AioRpcError as exc:
            status = exc.code().name
            raise call_error(
                f"{what} answered {status}: {exc.details() or 'no details'}",
                code=status,
                retryable=status in RETRYABLE,
            ) from None

    async def _channel(self, target: str) -> Any:
        import grpc

        host, port = _split_target(target)
        if not self._egress.allow_all:
            first = await checked_address(self._egress, host, port)
            target = f"[{first}]:{port}" if ":" in first else f"{first}:{port}"
        channel = self._channels.get(target)
        if channel is None:
            size = value_limits.current().value_bytes
            channel = grpc.aio.insecure_channel(
                target, options=[("grpc.max_receive_message_length", size)]
            )
            self._channels[target] = channel
        return channel


def _json(message: Any) -> Any:
    from google.protobuf import json_format

    return json_format.MessageToDict(
        message,
        always_print_fields_with_no_presence=True,
        preserving_proto_field_name=True,
        unquote_int64_if_possible=True,
    )


def _split_target(target: str) -> tuple[str, int]:
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise call_error(f"gRPC server {target!r} is not host:port", code="NoServer")
    return host.strip("[]"), int(port)


def _service_target(call: Invocation) -> str:
    service = call.arguments.get("service") or {}
    host, port = service.get("host"), service.get("port")
    if not host:
        raise call_error(f"call {call.name!r}: with.service.host is missing", code="NoServer")
    return f"{host}:{port or 443}" if ":" not in str(host) else f"[{host}]:{port or 443}"


def _auth_metadata(policy: Any) -> list[tuple[str, str]]:
    """``authorization`` metadata of an evaluated 1.0 ``basic`` or ``bearer`` policy."""
    if not isinstance(policy, Mapping) or not policy:
        return []
    scheme, body = next(iter(policy.items()))
    body = body if isinstance(body, Mapping) else {}
    if scheme == "bearer" and body.get("token"):
        return [("authorization", f"Bearer {body['token']}")]
    if scheme == "basic":
        pair = f"{body.get('username', '')}:{body.get('password', '')}".encode()
        return [("authorization", f"Basic {base64.b64encode(pair).decode()}")]
    raise call_error(
        f"gRPC calls support basic and bearer authentication, not {scheme!r}",
        code="NotSupported",
    )


async def _properties_target(base_dir: Path | None, service: str) -> str | None:
    """``host:port`` of SonataFlow's ``quarkus.grpc.clients.<service>.*`` properties."""
    if base_dir is None:
        return None
    path = anyio.Path(base_dir / PROPERTIES)
    try:
        text = await path.read_text(encoding="utf-8")
    except OSError:
        return None
    found = parse_properties(text[: 1024 * 1024])
    prefix = f"quarkus.grpc.clients.{service}."
    host, port = found.get(prefix + "host"), found.get(prefix + "port")
    if host is None and port is None:
        return None
    return f"{host or 'localhost'}:{port or 9000}"  # Quarkus's defaults


def parse_properties(text: str) -> dict[str, str]:
    """``key=value`` (or ``key: value``) lines of a Java properties file; comments skipped."""
    found = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        cut = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if cut > 0:
            found[line[:cut].strip()] = line[cut + 1 :].strip()
    return found


async def proto_problems(functions: Sequence[FunctionDef], base_dir: Path) -> list[Problem]:
    """A problem at ``functions[i].operation`` for each ``rpc`` function whose local
    proto file does not compile or lacks its service or method (files given by
    URL are fetched at the first call)."""
    found = []
    invoker: GrpcInvoker | None = None
    for index, function in enumerate(functions):
        if function.type != "rpc":
            continue
        path = ("functions", index, "operation")
        try:
            reference, service, method = split_rpc_operation(function.operation)
            location = resolve_location(reference, base_dir)
            if location.startswith(("http://", "https://")):
                continue
            if (missing := missing_extra()) is not None:
                found.append(Problem(path, missing))
                continue
            invoker = invoker or GrpcInvoker(lambda: _no_client())
            (await invoker.proto(location)).method(service, method)
        except (FunctionCallError, EgressDenied) as exc:
            found.append(Problem(path, str(exc)))
    return found


def _no_client() -> Any:
    raise AssertionError("local proto files only")  # pragma: no cover
