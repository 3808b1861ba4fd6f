"""gRPC calls (0.8 ``rpc`` functions, 1.0 ``call: grpc``) against a real server on 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.grpc_server import GREETER_PROTO, PROTO_DIR, GrpcServer, start_grpc_server
from tideflow.egress import EgressPolicy
from tideflow.errors import EgressDenied, FunctionCallError
from tideflow.runtime.functions import FunctionInvoker, Invocation
from tideflow.runtime.functions.rpc import parse_properties


@pytest.fixture(scope="module")
def server() -> Iterator[GrpcServer]:
    with start_grpc_server() as running:
        yield running


def rpc(method: str, arguments: Any, **kwargs: Any) -> Invocation:
    return Invocation(
        name="greet",
        type="rpc",
        operation=f"greeter.proto#Greeter#{method}",
        arguments=arguments,
        base_dir=PROTO_DIR,
        **kwargs,
    )


async def call(server: GrpcServer, invocation: Invocation, **kwargs: Any) -> Any:
    async with FunctionInvoker(servers={"greet": server.target}, **kwargs) as invoker:
        return await invoker.invoke(invocation)


async def test_unary_call_maps_json_to_the_request_and_the_reply_back(server: GrpcServer) -> None:
    reply = await call(server, rpc("SayHello", {"name": "Ada", "language": "FRENCH"}))
    # proto field names, and fields left at their default value are kept
    assert reply == {"message": "Bonjour Ada", "count": 1, "polite": False}


async def test_server_streaming_answers_the_list_of_messages(server: GrpcServer) -> None:
    reply = await call(server, rpc("ListGreetings", {"name": "Bo", "times": 3}))
    assert [r["message"] for r in reply] == ["Hello Bo #1", "Hello Bo #2", "Hello Bo #3"]


async def test_a_grpc_status_becomes_a_call_error_with_its_name(server: GrpcServer) -> None:
    with pytest.raises(FunctionCallError) as caught:
        await call(server, rpc("SayHello", {"name": "nobody"}))
    assert caught.value.code == "NOT_FOUND"
    assert not caught.value.retryable
    assert "greeting.Greeter/SayHello" in str(caught.value)
    assert "no one is called nobody" in str(caught.value)


async def test_an_unreachable_server_is_a_retryable_unavailable() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FunctionCallError) as caught:
        async with FunctionInvoker(servers={"greet": f"127.0.0.1:{port}"}) as invoker:
            await invoker.invoke(rpc("SayHello", {"name": "Ada"}, timeout=10))
    assert caught.value.code == "UNAVAILABLE"
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"nom": "Ada"}, 'no field named "nom"'),
        ({"times": "many"}, "times"),
        (["Ada"], "must be an object"),
    ],
)
async def test_arguments_that_do_not_fit_the_request_are_invalid(
    server: GrpcServer, arguments: Any, message: str
) -> None:
    with pytest.raises(FunctionCallError) as caught:
        await call(server, rpc("SayHello", arguments))
    assert caught.value.code == "InvalidArguments"
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("operation", "code", "message"),
    [
        ("greeter.proto#Greeter#Wave", "UnknownOperation", "has no method 'Wave'"),
        ("greeter.proto#Farewell#SayHello", "UnknownOperation", "no service 'Farewell'"),
        ("greeter.proto#SayHello", "InvalidOperation", "<proto file>#<Service>#<Method>"),
        ("missing.proto#Greeter#SayHello", "DocumentNotFound", "cannot read proto file"),
        ("greeter.proto#Greeter#CollectNames", "NotSupported", "client-streaming"),
    ],
)
async def test_operation_problems_are_clear(
    server: GrpcServer, operation: str, code: str, message: str
) -> None:
    invocation = Invocation(
        name="greet", type="rpc", operation=operation, arguments={}, base_dir=PROTO_DIR
    )
    with pytest.raises(FunctionCallError) as caught:
        await call(server, invocation)
    assert caught.value.code == code
    assert message in str(caught.value)


async def test_a_proto_that_does_not_compile_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "broken.proto").write_text('syntax = "proto3";\nmessage A { strin x = 1; }\n')
    invocation = Invocation(
        name="f", type="rpc", operation="broken.proto#S#M", arguments={}, base_dir=tmp_path
    )
    with pytest.raises(FunctionCallError) as caught:
        async with FunctionInvoker() as invoker:
            await invoker.invoke(invocation)
    assert caught.value.code == "InvalidDocument"
    assert "broken.proto:2:" in str(caught.value)
    assert str(tmp_path) not in str(caught.value).replace(str(tmp_path / "broken.proto"), "")


async def test_an_import_cannot_leave_the_proto_folder(tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    (tmp_path / "secret.proto").write_text('syntax = "proto3";\nmessage S {}\n')
    (inner / "x.proto").write_text('syntax = "proto3";\nimport "../secret.proto";\n')
    invocation = Invocation(
        name="f", type="rpc", operation="x.proto#S#M", arguments={}, base_dir=inner
    )
    with pytest.raises(FunctionCallError) as caught:
        async with FunctionInvoker() as invoker:
            await invoker.invoke(invocation)
    assert caught.value.code == "InvalidDocument"


async def test_sonataflow_properties_name_the_server(server: GrpcServer, tmp_path: Path) -> None:
    for name in ("greeter.proto", "common.proto"):
        shutil.copy(PROTO_DIR / name, tmp_path / name)
    (tmp_path / "application.properties").write_text(
        "# the Quarkus gRPC client of the service\n"
        "quarkus.grpc.clients.Greeter.host=127.0.0.1\n"
        f"quarkus.grpc.clients.Greeter.port = {server.port}\n"
    )
    invocation = Invocation(
        name="greet",
        type="rpc",
        operation="greeter.proto#Greeter#SayHello",
        arguments={"name": "Cy"},
        base_dir=tmp_path,
    )
    async with FunctionInvoker() as invoker:
        assert (await invoker.invoke(invocation))["message"] == "Hello Cy"


async def test_without_a_server_the_error_says_where_to_give_one() -> None:
    with pytest.raises(FunctionCallError) as caught:
        async with FunctionInvoker() as invoker:
            await invoker.invoke(rpc("SayHello", {"name": "Ada"}))
    assert caught.value.code == "NoServer"
    assert "quarkus.grpc.clients.Greeter.host" in str(caught.value)


async def test_dsl1_call_carries_host_port_arguments_and_bearer(server: GrpcServer) -> None:
    invocation = Invocation(
        name="greet",
        type="grpc",
        operation=f"{GREETER_PROTO.as_uri()}#greeting.Greeter#SayHello",
        arguments={
            "service": {"name": "greeting.Greeter", "host": "127.0.0.1", "port": server.port},
            "arguments": {"name": "whoami"},
            "authentication": {"bearer": {"token": "t0k"}},
        },
        idempotency_key="instance-1/greet",
    )
    async with FunctionInvoker() as invoker:
        reply = await invoker.invoke(invocation)
    assert reply["message"] == "Bearer t0k"
    assert server.metadata[-1]["idempotency-key"] == "instance-1/greet"


async def test_a_server_policy_refuses_loopback_and_files_outside_its_folders(
    server: GrpcServer, tmp_path: Path
) -> None:
    policy = EgressPolicy.for_server(folders=[PROTO_DIR])
    with pytest.raises(EgressDenied):
        await call(server, rpc("SayHello", {"name": "Ada"}), egress=policy)
    outside = EgressPolicy.for_server(allow=["127.0.0.1"], folders=[tmp_path])
    with pytest.raises(EgressDenied):
        await call(server, rpc("SayHello", {"name": "Ada"}), egress=outside)
    allowed = EgressPolicy.for_server(allow=["127.0.0.1"], folders=[PROTO_DIR])
    assert (await call(server, rpc("SayHello", {"name": "Di"}), egress=allowed))["count"] == 1


def test_properties_lines() -> None:
    text = "a=1\n! comment\nb: two\n c = 3 \n#d=4\nnothing\n"
    assert parse_properties(text) == {"a": "1", "b": "two", "c": "3"}
