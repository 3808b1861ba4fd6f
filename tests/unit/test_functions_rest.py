"""``rest`` functions against a real OpenAPI service on 127.0.0.1."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import PETS_DOC, Services, start_services
from tideflow.errors import FunctionCallError
from tideflow.runtime.functions import AuthDefinition, FunctionInvoker, Invocation


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with start_services() as running:
        yield running


@pytest.fixture
def svc(services: Services) -> Services:
    services.state.reset()
    return services


def _call(svc: Services, op: str, **kwargs: Any) -> Invocation:
    return Invocation(name=op, operation=f"{svc.pets_doc_url}#{op}", **kwargs)


async def test_get_with_path_query_and_header_parameters(svc: Services) -> None:
    async with FunctionInvoker() as invoker:
        pet = await invoker.invoke(
            _call(svc, "getPet", arguments={"petId": 2, "verbose": True, "X-Request-Id": "abc"})
        )
    assert pet == {"id": 2, "name": "Tom", "tag": "cat", "requestId": "abc"}


async def test_post_sends_the_body_and_the_idempotency_key(svc: Services) -> None:
    call = _call(svc, "createPet", arguments={"name": "Kit"}, idempotency_key="step-1")
    async with FunctionInvoker() as invoker:
        first = await invoker.invoke(call)
        again = await invoker.invoke(call)
    assert first == {"id": 4, "name": "Kit"}
    assert again == first  # the service recognised the retried call
    assert len(svc.state.pets) == 4


async def test_cookie_header_and_query_reach_the_service(svc: Services) -> None:
    args = {"q": "x", "X-Trace": "t1", "session": "s1"}
    async with FunctionInvoker() as invoker:
        seen = await invoker.invoke(_call(svc, "echo", arguments=args))
    assert seen == {"query": {"q": "x"}, "trace": "t1", "session": "s1", "idempotencyKey": None}


async def test_not_found_is_code_404_and_not_retryable(svc: Services) -> None:
    async with FunctionInvoker() as invoker:
        with pytest.raises(FunctionCallError) as info:
            await invoker.invoke(_call(svc, "getPet", arguments={"petId": 99}))
    assert info.value.code == "404"
    assert info.value.retryable is False
    assert "no pet 99" in str(info.value)


@pytest.mark.parametrize(("status", "retryable"), [(503, True), (429, True), (400, False)])
async def test_status_decides_retryable(svc: Services, status: int, retryable: bool) -> None:
    args = {"key": f"k{status}", "failures": 1, "status": status}
    async with FunctionInvoker() as invoker:
        with pytest.raises(FunctionCallError) as info:
            await invoker.invoke(_call(svc, "flaky", arguments=args))
        assert (info.value.code, info.value.retryable) == (str(status), retryable)
        assert await invoker.invoke(_call(svc, "flaky", arguments=args)) == {"attempts": 2}


async def test_local_document_relative_to_the_workflow_folder_with_a_server_override(
    svc: Services, tmp_path: Path
) -> None:
    (tmp_path / "apis").mkdir()
    shutil.copy(PETS_DOC, tmp_path / "apis" / "pets.yaml")
    call = Invocation(
        name="pets",
        operation="file://apis/pets.yaml#listPets",
        arguments={"tag": "dog"},
        base_dir=tmp_path,
    )
    async with FunctionInvoker(servers={"pets": f"{svc.base_url}/api"}) as invoker:
        pets = await invoker.invoke(call)
    assert [p["name"] for p in pets] == ["Rex", "Fido"]


async def test_local_document_without_server_says_so(tmp_path: Path) -> None:
    shutil.copy(PETS_DOC, tmp_path / "pets.yaml")
    call = Invocation(name="f", operation="pets.yaml#listPets", base_dir=tmp_path)
    async with FunctionInvoker() as invoker:
        with pytest.raises(FunctionCallError, match="no absolute") as info:
            await invoker.invoke(call)
    assert info.value.code == "NoServer"


async def test_missing_document_is_a_clear_error(tmp_path: Path) -> None:
    call = Invocation(name="f", operation="nothing.yaml#op", base_dir=tmp_path)
    async with FunctionInvoker() as invoker:
        with pytest.raises(FunctionCallError, match=r"nothing\.yaml") as info:
            await invoker.invoke(call)
    assert info.value.code == "DocumentNotFound"


async def test_connection_refused_is_retryable() -> None:
    call = Invocation(name="f", operation="rest:get:http://127.0.0.1:9/x", type="custom")
    async with FunctionInvoker() as invoker:
        with pytest.raises(FunctionCallError) as info:
            await invoker.invoke(call)
    assert (info.value.code, info.value.retryable) == ("ConnectionError", True)


async def test_call_timeout_is_a_retryable_timeout_error(svc: Services) -> None:
    call = _call(svc, "slow", arguments={"seconds": 2}, timeout=0.2)
    async with FunctionInvoker() as invoker:
        with pytest.raises(FunctionCallError) as info:
            await invoker.invoke(call)
    assert (info.value.code, info.value.retryable) == ("Timeout", True)


async def test_bearer_auth_applies_to_the_call(svc: Services) -> None:
    auth = AuthDefinition(name="b", scheme="bearer", properties={"token": "T"})
    async with FunctionInvoker() as invoker:
        seen = await invoker.invoke(_call(svc, "whoAmI", auth=auth))
        with pytest.raises(FunctionCallError) as info:
            await invoker.invoke(_call(svc, "whoAmI"))
    assert seen == {"authorization": "Bearer T"}
    assert info.value.code == "401"


async def test_redirects_rewrite_document_and_call_urls(svc: Services) -> None:
    call = Invocation(
        name="getPet",
        operation="http://localhost:8080/openapi/pets.yaml#getPet",
        arguments={"petId": 1},
    )
    async with FunctionInvoker(redirects={"http://localhost:8080": svc.base_url}) as invoker:
        assert (await invoker.invoke(call))["name"] == "Rex"


async def test_auth_applies_to_fetching_the_document(svc: Services) -> None:
    doc = f"{svc.base_url}/private/pets.yaml#getPet"
    auth = AuthDefinition(name="b", scheme="basic", properties={"username": "u", "password": "p"})
    async with FunctionInvoker() as invoker:
        with pytest.raises(FunctionCallError, match="OpenAPI document") as info:
            await invoker.invoke(Invocation(name="f", operation=doc, arguments={"petId": 1}))
        pet = await invoker.invoke(
            Invocation(name="f", operation=doc, arguments={"petId": 1}, auth=auth)
        )
    assert info.value.code == "401"
    assert pet["name"] == "Rex"
