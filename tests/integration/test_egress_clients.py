"""Every outbound client asks the egress policy, against real servers on 127.0.0.1.

Function calls and their documents (httpx), deploy-time references (httpx,
redirects followed) and subscription sinks (aiohttp): a loopback address is
refused unless allowed, a name resolving to loopback (``localhost``) is
loopback, each redirect hop is checked, bodies and durations are bounded.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.support.refserver import ref_server
from tests.support.sink import running_sink
from tideflow.egress import EgressPolicy, FetchLimits
from tideflow.errors import FunctionCallError
from tideflow.references import read_references
from tideflow.runtime.functions import FunctionInvoker, Invocation
from tideflow.runtime.functions.types import send
from tideflow.triggers.delivery import HttpSender

SERVER = EgressPolicy.for_server()
EVENT = {"specversion": "1.0", "id": "1", "source": "/t", "type": "t", "data": {"a": 1}}


def rest_call(url: str) -> Invocation:
    return Invocation(name="get", type="custom", operation=f"rest:GET:{url}")


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


async def test_a_call_to_loopback_is_refused_without_the_allow_list() -> None:
    async with ref_server() as server:
        server.documents["/x"] = json.dumps({"ok": True})
        async with FunctionInvoker(egress=SERVER) as invoker:
            with pytest.raises(FunctionCallError) as caught:
                await invoker.invoke(rest_call(server.url + "/x"))
        assert caught.value.code == "EGRESS_DENIED"
        assert caught.value.retryable is False
        assert "loopback" in str(caught.value)
        assert "--allow-egress" in str(caught.value)
        assert server.requests == []  # refused before connecting


async def test_a_call_allowed_by_address_and_port_goes_through() -> None:
    async with ref_server() as server:
        server.documents["/x"] = json.dumps({"ok": True})
        allowed = EgressPolicy.for_server([f"127.0.0.1:{port_of(server.url)}"])
        async with FunctionInvoker(egress=allowed) as invoker:
            assert await invoker.invoke(rest_call(server.url + "/x")) == {"ok": True}


async def test_a_name_resolving_to_loopback_is_refused() -> None:
    async with ref_server() as server:
        url = server.url.replace("127.0.0.1", "localhost") + "/x"
        async with FunctionInvoker(egress=SERVER) as invoker:
            with pytest.raises(FunctionCallError) as caught:
                await invoker.invoke(rest_call(url))
        assert caught.value.code == "EGRESS_DENIED"
        assert "localhost (" in str(caught.value)
        assert server.requests == []


async def test_a_local_openapi_document_outside_the_folders_is_refused_unread(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("password: hunter2\n")
    folder = tmp_path / "workflows"
    folder.mkdir()
    policy = EgressPolicy.for_server(folders=[folder])
    async with FunctionInvoker(egress=policy) as invoker:
        for operation in (f"file://{secret}#op", f"{secret}#op", f"{tmp_path}/missing.yaml#op"):
            with pytest.raises(FunctionCallError) as caught:
                await invoker.invoke(Invocation(name="f", operation=operation, base_dir=folder))
            assert caught.value.code == "EGRESS_DENIED"
            # the same answer whether the file exists or not, and none of its text
            assert "hunter2" not in str(caught.value)
            assert "No such file" not in str(caught.value)


async def test_an_answer_larger_than_the_limit_fails_the_call() -> None:
    async with ref_server() as server:
        server.documents["/big"] = json.dumps({"blob": "x" * 4096})
        allowed = EgressPolicy.for_server(["127.0.0.1"])
        async with FunctionInvoker(egress=allowed) as invoker:
            # every fetch is bounded like this (here by a small limit)
            request = invoker.client().build_request("GET", server.url + "/big")
            with pytest.raises(FunctionCallError) as caught:
                await send(invoker.client(), request, "t", None, FetchLimits(max_bytes=1000))
        assert caught.value.code == "RESPONSE_TOO_LARGE"


async def test_a_reference_redirected_to_a_forbidden_address_is_refused() -> None:
    async with ref_server() as server:
        port = port_of(server.url)
        server.documents["/ok.json"] = json.dumps({"a": 1})
        server.documents["/hop"] = (302, f"http://127.0.0.2:{port}/ok.json")
        allowed = EgressPolicy.for_server([f"127.0.0.1:{port}"])
        doc = {"constants": server.url + "/hop"}
        found = await read_references(doc, local_files=False, egress=allowed)
        text = str(found[server.url + "/hop"])
        assert "egress policy" in text
        assert "127.0.0.2" in text
        assert server.requests == ["/hop"]  # the first hop was asked, the second refused
        direct = {"constants": server.url + "/ok.json"}
        fetched = await read_references(direct, local_files=False, egress=allowed)
        assert json.loads(str(fetched[server.url + "/ok.json"])) == {"a": 1}


async def test_a_sink_on_loopback_is_refused_and_not_retried() -> None:
    async with running_sink() as sink:
        sender = HttpSender(egress=SERVER)
        try:
            for url in (sink.url + "/in", sink.url.replace("127.0.0.1", "localhost") + "/in"):
                attempt = await sender.send(url, EVENT, 5.0)
                assert not attempt.ok
                assert not attempt.retryable
                assert "egress policy" in attempt.reason
            assert sink.ids() == []
        finally:
            await sender.aclose()


async def test_a_sink_on_an_allowed_address_receives_events() -> None:
    async with running_sink() as sink:
        sender = HttpSender(egress=EgressPolicy.for_server([f"127.0.0.1:{port_of(sink.url)}"]))
        try:
            attempt = await sender.send(sink.url + "/in", EVENT, 5.0)
            assert attempt.ok
            assert sink.ids() == ["1"]
        finally:
            await sender.aclose()


async def test_local_references_are_read_only_inside_the_folders(tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "constants.json").write_text('{"inside": true}')
    (tmp_path / "secret.json").write_text('{"password": "hunter2"}')
    policy = EgressPolicy.for_server(folders=[folder])
    doc = {"constants": "constants.json", "secrets": "../secret.json", "events": "../none.json"}
    found = await read_references(doc, base_dir=folder, egress=policy)
    assert json.loads(str(found["constants.json"])) == {"inside": True}
    refused, missing = str(found["../secret.json"]), str(found["../none.json"])
    assert "egress policy" in refused
    assert "hunter2" not in refused
    # a file that exists and one that does not are refused alike
    assert refused.replace("../secret.json", "X") == missing.replace("../none.json", "X")


async def test_the_policy_client_keeps_httpx_pool_size() -> None:
    # httpcore's own pool would hold 10 connections; a server's calls had httpx's 100
    async with ref_server() as server:
        server.documents["/slow"] = json.dumps({"ok": True})
        server.held["/slow"] = asyncio.Event()
        allowed = EgressPolicy.for_server(["127.0.0.1"])
        async with FunctionInvoker(egress=allowed) as invoker:
            calls = [
                asyncio.ensure_future(invoker.invoke(rest_call(server.url + "/slow")))
                for _ in range(15)
            ]
            async with asyncio.timeout(10):
                while len(server.requests) < 15:  # noqa: ASYNC110 - the state is the server's
                    await asyncio.sleep(0.01)
            server.held["/slow"].set()
            assert await asyncio.gather(*calls) == [{"ok": True}] * 15


@pytest.mark.parametrize(
    "host", ["2130706433", "0x7f.0.0.1", "127.1", "[::ffff:127.0.0.1]", "[::1]", "0.0.0.0"]
)
async def test_other_spellings_of_loopback_are_loopback(host: str) -> None:
    async with ref_server() as server:
        server.documents["/x"] = json.dumps({"ok": True})
        url = f"http://{host}:{port_of(server.url)}/x"
        async with FunctionInvoker(egress=SERVER) as invoker:
            with pytest.raises(FunctionCallError) as caught:
                await invoker.invoke(rest_call(url))
        assert caught.value.code == "EGRESS_DENIED", caught.value
        assert server.requests == []
        sender = HttpSender(egress=SERVER)
        try:
            attempt = await sender.send(url, EVENT, 5.0)
        finally:
            await sender.aclose()
        # refused by the policy, or (2130706433, 127.1) not an address aiohttp accepts
        assert not attempt.ok
        assert not attempt.retryable or "canonical" in attempt.reason, attempt
        assert server.requests == []


async def test_a_proxy_from_the_environment_does_not_bypass_the_policy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with ref_server() as proxy:
        # the proxy itself is allowed; through it, the metadata address would be reached
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("ALL_PROXY", proxy.url)
        allowed = EgressPolicy.for_server([f"127.0.0.1:{port_of(proxy.url)}"])
        metadata = "http://169.254.169.254/latest/meta-data/"
        async with FunctionInvoker(egress=allowed) as invoker:
            with pytest.raises(FunctionCallError) as caught:
                await invoker.invoke(rest_call(metadata))
        assert caught.value.code == "EGRESS_DENIED"
        found = await read_references({"constants": metadata}, local_files=False, egress=allowed)
        assert "egress policy" in str(found[metadata])
        assert proxy.requests == []


async def test_schema_siblings_are_read_only_inside_the_folders(tmp_path: Path) -> None:
    # issue 17: a dataInputSchema's $refs follow the rules of the definition's other documents
    folder = tmp_path / "flows"
    (folder / "schemas").mkdir(parents=True)
    (folder / "schemas" / "order.json").write_text(
        json.dumps({"properties": {"c": {"$ref": "customer.json"}, "s": {"$ref": "../../s.json"}}})
    )
    (folder / "schemas" / "customer.json").write_text('{"type": "object"}')
    (tmp_path / "s.json").write_text('{"password": "hunter2"}')
    policy = EgressPolicy.for_server(folders=[folder])
    doc = {"dataInputSchema": "schemas/order.json"}
    found = await read_references(doc, base_dir=folder, egress=policy)
    assert json.loads(str(found["schemas/customer.json"])) == {"type": "object"}
    refused = str(found["../s.json"])
    assert "egress policy" in refused
    assert "hunter2" not in refused
    # sent over HTTP: no local file at all
    found = await read_references(doc, base_dir=folder, local_files=False, egress=policy)
    assert set(found) == {"schemas/order.json"}
    assert "local files are not read here" in str(found["schemas/order.json"])
