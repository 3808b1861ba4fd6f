"""``python:`` functions, the ``rest:`` shorthand, sysout, service: and overrides."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import Services, start_services
from tideflow.errors import FunctionCallError
from tideflow.runtime.functions import FunctionInvoker, Invocation, as_call_error


class Declined(Exception):
    code = "DECLINED"
    retryable = False


def add(args: dict[str, Any]) -> dict[str, Any]:
    return {"sum": args["a"] + args["b"]}


async def add_async(args: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
    return {"sum": args["a"] + args["b"], "key": idempotency_key}


def decline(args: dict[str, Any]) -> None:
    raise Declined(f"card {args['card']} declined")


def boom(args: dict[str, Any]) -> None:
    raise ValueError("bad value")


def where(args: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
    return {"thread": threading.current_thread().name, "key": idempotency_key, "n": args["n"]}


async def where_async(args: dict[str, Any]) -> dict[str, Any]:
    return {"thread": threading.current_thread().name}


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with start_services() as running:
        yield running


async def test_python_sync_and_async_callables() -> None:
    mod = __name__
    async with FunctionInvoker() as invoker:
        sync = await invoker.invoke(
            Invocation(
                name="add",
                type="custom",
                operation=f"python:{mod}:add",
                arguments={"a": 1, "b": 2},
                idempotency_key="k",
            )
        )
        asy = await invoker.invoke(
            Invocation(
                name="add",
                type="custom",
                operation=f"python:{mod}:add_async",
                arguments={"a": 1, "b": 2},
                idempotency_key="k",
            )
        )
    assert sync == {"sum": 3}
    assert asy == {"sum": 3, "key": "k"}


async def test_sync_threads_run_plain_defs_off_the_event_loop() -> None:
    def call(function: str, **arguments: Any) -> Invocation:
        operation = f"python:{__name__}:{function}"
        return Invocation(name=function, type="custom", operation=operation, arguments=arguments)

    loop_thread = threading.current_thread().name
    async with FunctionInvoker(sync_threads=2) as threaded:
        keyed = replace(call("where", n=1), idempotency_key="k")
        off_loop = await threaded.invoke(keyed)
        on_loop = await threaded.invoke(call("where_async"))
        with pytest.raises(FunctionCallError) as failed:  # still a coded error
            await threaded.invoke(call("decline", card="4242"))
    async with FunctionInvoker() as plain:
        default = await plain.invoke(call("where", n=2))
    assert off_loop["thread"].startswith("tideflow-function")
    assert (off_loop["key"], off_loop["n"]) == ("k", 1)
    assert on_loop["thread"] == loop_thread  # async functions stay on the loop
    assert (failed.value.code, failed.value.retryable) == ("DECLINED", False)
    assert default["thread"] == loop_thread  # without sync_threads, as before


async def test_python_exceptions_become_coded_errors() -> None:
    async with FunctionInvoker() as invoker:
        with pytest.raises(FunctionCallError) as declined:
            await invoker.invoke(
                Invocation(
                    name="pay",
                    type="custom",
                    operation=f"python:{__name__}:decline",
                    arguments={"card": "4242"},
                )
            )
        with pytest.raises(FunctionCallError) as plain:
            await invoker.invoke(
                Invocation(name="b", type="custom", operation=f"python:{__name__}:boom")
            )
    assert (declined.value.code, declined.value.retryable) == ("DECLINED", False)
    assert "card 4242 declined" in str(declined.value)
    assert (plain.value.code, plain.value.retryable) == ("ValueError", True)
    assert as_call_error(KeyError("x")).code == "KeyError"


async def test_python_module_next_to_the_workflow(tmp_path: Path) -> None:
    (tmp_path / "wf_helpers_xyz.py").write_text("def hello(args):\n    return 'hi ' + args['n']\n")
    call = Invocation(
        name="h",
        type="custom",
        operation="python:wf_helpers_xyz:hello",
        arguments={"n": "Ada"},
        base_dir=tmp_path,
    )
    async with FunctionInvoker() as invoker:
        assert await invoker.invoke(call) == "hi Ada"


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        ("python:no_such_module_qq:f", "cannot import"),
        (f"python:{__name__}:missing", "has no 'missing'"),
        ("python:justmodule", "python:package.module:function"),
    ],
)
async def test_python_reference_errors(operation: str, message: str) -> None:
    async with FunctionInvoker() as invoker:
        with pytest.raises(FunctionCallError, match=message) as info:
            await invoker.invoke(Invocation(name="f", type="custom", operation=operation))
    assert info.value.retryable is False


async def test_overrides_replace_any_function_by_name() -> None:
    call = Invocation(
        name="greet", operation="http://nowhere.invalid/api.json#greet", arguments={"name": "Ada"}
    )
    async with FunctionInvoker(overrides={"greet": lambda a: f"Hello {a['name']}"}) as invoker:
        assert await invoker.invoke(call) == "Hello Ada"


async def test_rest_shorthand_post_get_and_placeholders(services: Services) -> None:
    base = services.base_url
    async with FunctionInvoker() as invoker:
        posted = await invoker.invoke(
            Invocation(
                name="e", type="custom", operation=f"rest:post:{base}/api/echo", arguments={"x": 1}
            )
        )
        got = await invoker.invoke(
            Invocation(
                name="e", type="custom", operation=f"rest:GET:{base}/api/echo", arguments={"q": "v"}
            )
        )
        untyped = await invoker.invoke(
            Invocation(name="p", operation=f"rest:get:{base}/api/pets/2")
        )
        pet = await invoker.invoke(
            Invocation(
                name="p",
                type="custom",
                operation=f"rest:get:{base}/api/pets/{{id}}",
                arguments={"id": 1},
            )
        )
    assert posted == {"body": {"x": 1}, "query": {}}
    assert got["query"] == {"q": "v"}
    assert pet["name"] == "Rex"
    assert untyped["name"] == "Tom"  # the shorthand also works under the default type rest


async def test_rest_shorthand_relative_url_needs_a_server(services: Services) -> None:
    call = Invocation(name="p", type="custom", operation="rest:get:/api/pets/2")
    async with FunctionInvoker(servers={"p": services.base_url}) as invoker:
        assert (await invoker.invoke(call))["name"] == "Tom"
    async with FunctionInvoker() as invoker:
        with pytest.raises(FunctionCallError, match="relative") as info:
            await invoker.invoke(call)
    assert info.value.code == "NoServer"


async def test_sysout_and_service_and_unsupported_types() -> None:
    lines: list[str] = []
    async with FunctionInvoker(log=lines.append) as invoker:
        result = await invoker.invoke(
            Invocation(
                name="log", type="custom", operation="sysout:warn", arguments={"message": "hello"}
            )
        )
        with pytest.raises(FunctionCallError, match="--functions") as service:
            await invoker.invoke(
                Invocation(name="svc", type="custom", operation="service:java:com.acme.A::m")
            )
        with pytest.raises(FunctionCallError, match="SonataFlow script") as script:
            await invoker.invoke(Invocation(name="py", type="custom", operation="script:python"))
        with pytest.raises(FunctionCallError, match="unknown type 'soap'") as rpc:
            await invoker.invoke(Invocation(name="r", type="soap", operation="a.yaml#op"))
    assert result is None
    assert lines == ["[WARN] log: hello"]
    assert service.value.code == "NotBound"
    assert script.value.code == "NotBound"
    assert (rpc.value.code, rpc.value.retryable) == ("InvalidOperation", False)
