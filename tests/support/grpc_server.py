"""A real gRPC server on 127.0.0.1 for the gRPC function tests.

It serves ``greeting.Greeter`` of ``tests/support/grpc/greeter.proto``: the
messages come from ``protoc``'s descriptor set (compiled here, in-process),
and the handlers are registered generically, so no generated code is kept.
``SayHello`` greets (``NOT_FOUND`` for the name ``nobody``, and the
``authorization`` metadata echoed in the message when the name is ``whoami``),
``ListGreetings`` streams ``times`` greetings.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import grpc_tools
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_tools import protoc

PROTO_DIR = Path(__file__).resolve().parent / "grpc"
GREETER_PROTO = PROTO_DIR / "greeter.proto"


def _messages() -> tuple[Any, Any]:
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "set.pb"
        include = Path(grpc_tools.__file__).parent / "_proto"
        status = protoc.main(
            ["protoc", f"-I{PROTO_DIR}", f"-I{include}", f"--descriptor_set_out={out}",
             "--include_imports", "greeter.proto"]
        )  # fmt: skip
        assert status == 0, "greeter.proto does not compile"
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for proto in files.file:
        pool.Add(proto)
    request = message_factory.GetMessageClass(pool.FindMessageTypeByName("greeting.HelloRequest"))
    reply = message_factory.GetMessageClass(pool.FindMessageTypeByName("greeting.HelloReply"))
    return request, reply


@dataclass
class GrpcServer:
    """The running server: its address and the metadata each call carried."""

    port: int
    metadata: list[dict[str, str]] = field(default_factory=list)

    @property
    def target(self) -> str:
        """``127.0.0.1:port``."""
        return f"127.0.0.1:{self.port}"


@contextmanager
def start_grpc_server() -> Iterator[GrpcServer]:
    """Run the Greeter service on a free port of 127.0.0.1 until the block ends."""
    request_type, reply_type = _messages()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    running = GrpcServer(port=server.add_insecure_port("127.0.0.1:0"))

    def say_hello(request: Any, context: grpc.ServicerContext) -> Any:
        metadata = {k: str(v) for k, v in context.invocation_metadata()}
        running.metadata.append(metadata)
        if request.name == "nobody":
            context.abort(grpc.StatusCode.NOT_FOUND, "no one is called nobody")
        if request.name == "whoami":
            return reply_type(message=metadata.get("authorization", ""), count=1)
        greeting = "Bonjour" if request.language == 1 else "Hello"
        return reply_type(message=f"{greeting} {request.name}", count=1)

    def list_greetings(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        for number in range(request.times):
            yield reply_type(message=f"Hello {request.name} #{number + 1}", count=number + 1)

    def collect_names(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        return reply_type(message=", ".join(r.name for r in requests))

    codec = {
        "request_deserializer": request_type.FromString,
        "response_serializer": reply_type.SerializeToString,
    }
    handlers = {
        "SayHello": grpc.unary_unary_rpc_method_handler(say_hello, **codec),
        "ListGreetings": grpc.unary_stream_rpc_method_handler(list_greetings, **codec),
        "CollectNames": grpc.stream_unary_rpc_method_handler(collect_names, **codec),
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("greeting.Greeter", handlers),)
    )
    server.start()
    try:
        yield running
    finally:
        server.stop(grace=None)
