"""An OIDC issuer's keys fetched from a real HTTP server on 127.0.0.1: bounds, failures, caching.

The issuer's clock is a manual one (no sleeping); only the time bound of a
fetch is real (0.2 s for a server that never answers).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from tests.support.oidc import Issuer
from tests.support.refserver import ref_server
from tideflow.auth.jwks import MAX_AGE, MAX_BYTES, IssuerKeys
from tideflow.errors import AuthenticationRequired, IdentityProviderUnavailable
from tideflow.testing import ManualClock

DISCOVERY = "/.well-known/openid-configuration"


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    async with ref_server() as server:
        issuer = Issuer(server)
        issuer.add_key("k1")
        yield issuer


async def test_concurrent_requests_share_one_fetch(issuer: Issuer) -> None:
    keys = IssuerKeys(issuer.url, clock=ManualClock())
    found = await asyncio.gather(*(keys.key("k1", "RS256") for _ in range(5)))
    assert len({id(key) for key in found}) == 1
    assert issuer.fetches() == 1
    with pytest.raises(AuthenticationRequired, match="is not for ES256"):
        await keys.key("k1", "ES256")


async def test_a_failed_refresh_keeps_the_known_keys_and_refuses_unknown_ones_with_503(
    issuer: Issuer,
) -> None:
    clock = ManualClock()
    keys = IssuerKeys(issuer.url, clock=clock)
    known = await keys.key("k1", "RS256")
    issuer.server.documents.clear()  # the issuer goes away
    clock.advance(MAX_AGE + 1)
    assert await keys.key("k1", "RS256") is known
    assert issuer.server.requests.count(DISCOVERY) == 2  # it was asked again
    with pytest.raises(IdentityProviderUnavailable, match="HTTP 404"):
        await keys.key("k2", "RS256")


@pytest.mark.parametrize(
    ("documents", "reason"),
    [
        ({}, "openid-configuration: HTTP 404"),
        ({DISCOVERY: '{"issuer": "https://other.example"}'}, "names issuer 'https://other"),
        ({DISCOVERY: '{"issuer": "ISSUER"}'}, "no jwks_uri"),
        ({DISCOVERY: "[1]"}, "not a JSON object"),
        ({DISCOVERY: "<html>"}, "not JSON"),
        ({DISCOVERY: "x" * (MAX_BYTES + 1)}, f"larger than {MAX_BYTES} bytes"),
    ],
)
async def test_unusable_documents_are_a_clear_503(documents: dict[str, str], reason: str) -> None:
    async with ref_server() as server:
        server.documents.update(
            {path: text.replace("ISSUER", server.url) for path, text in documents.items()}
        )
        keys = IssuerKeys(server.url, clock=ManualClock())
        with pytest.raises(IdentityProviderUnavailable, match=reason):
            await keys.key("k1", "RS256")


async def test_keys_from_plain_http_elsewhere_are_refused(issuer: Issuer) -> None:
    discovery = {"issuer": issuer.url, "jwks_uri": "http://idp.example/jwks"}
    issuer.server.documents[DISCOVERY] = orjson.dumps(discovery).decode()
    with pytest.raises(IdentityProviderUnavailable, match=r"jwks_uri 'http://idp\.example/jwks'"):
        await IssuerKeys(issuer.url, clock=ManualClock()).key("k1", "RS256")


async def test_an_issuer_that_never_answers_costs_the_time_bound_only(issuer: Issuer) -> None:
    issuer.server.held[DISCOVERY] = asyncio.Event()
    keys = IssuerKeys(issuer.url, clock=ManualClock(), timeout=0.2)
    with pytest.raises(IdentityProviderUnavailable, match=r"no answer within 0\.2 s"):
        await keys.key("k1", "RS256")
