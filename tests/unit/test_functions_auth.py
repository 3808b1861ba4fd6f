"""Auth definitions against a real token endpoint on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.services import CLIENT_ID, CLIENT_SECRET, Services, start_services
from tideflow.errors import FunctionCallError
from tideflow.runtime.functions import AuthDefinition, FunctionInvoker, Invocation
from tideflow.runtime.functions.auth import AuthProvider
from tideflow.testing import ManualClock


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with start_services() as running:
        yield running


@pytest.fixture
def svc(services: Services) -> Services:
    services.state.reset()
    return services


def _oauth(svc: Services, **extra: Any) -> AuthDefinition:
    props = {
        "grantType": "clientCredentials",
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
        "authority": svc.base_url,
        **extra,
    }
    return AuthDefinition(name="o", scheme="oauth2", properties=props)


async def test_basic_header() -> None:
    async with httpx.AsyncClient() as client:
        headers = await AuthProvider(client).headers(
            AuthDefinition(name="b", properties={"username": "ada", "password": "pw"})
        )
    assert headers == {"Authorization": "Basic YWRhOnB3"}


async def test_oauth2_client_credentials_via_discovery_is_cached_until_expiry(
    svc: Services,
) -> None:
    clock = ManualClock()
    call = Invocation(name="whoAmI", operation=f"{svc.pets_doc_url}#whoAmI", auth=_oauth(svc))
    async with FunctionInvoker(clock=clock) as invoker:
        first = await invoker.invoke(call)
        second = await invoker.invoke(call)
        clock.advance(3600)
        third = await invoker.invoke(call)
    assert first == second == {"authorization": "Bearer tok-1"}
    assert third == {"authorization": "Bearer tok-2"}


async def test_oauth2_bad_secret_and_unsupported_grant(svc: Services) -> None:
    async with httpx.AsyncClient() as client:
        provider = AuthProvider(client)
        with pytest.raises(FunctionCallError) as bad:
            await provider.headers(_oauth(svc, clientSecret="wrong"))
        with pytest.raises(FunctionCallError, match="tokenExchange") as grant:
            await provider.headers(_oauth(svc, grantType="tokenExchange"))
        explicit = await provider.headers(_oauth(svc, tokenUrl=f"{svc.base_url}/oauth/token"))
    assert bad.value.code == "401"
    assert grant.value.code == "InvalidAuth"
    assert explicit == {"Authorization": "Bearer tok-1"}


async def test_missing_property_and_unevaluated_secret_are_named() -> None:
    async with httpx.AsyncClient() as client:
        provider = AuthProvider(client)
        with pytest.raises(FunctionCallError, match="'token'"):
            await provider.headers(AuthDefinition(name="x", scheme="bearer", properties={}))
        with pytest.raises(FunctionCallError, match="must evaluate to an object"):
            await provider.headers(
                AuthDefinition(name="x", properties="$SECRETS.auth")  # type: ignore[arg-type]
            )
