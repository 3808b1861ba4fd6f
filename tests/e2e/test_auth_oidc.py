"""OIDC/JWT bearer tokens on a real server, against a real issuer on 127.0.0.1.

The issuer is a local HTTP server serving a discovery document and a JWKS
whose keys (RSA and P-256) are made in the test; the server is ``create_app``
with ``tideflow serve``'s composition and ``--oidc-issuer``/``--oidc-audience``
settings, on 127.0.0.1 with PostgreSQL behind it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.e2e.test_auth_served import cli
from tests.support.auth import bearer, home_auth
from tests.support.oidc import AUDIENCE, Issuer, new_key
from tests.support.refserver import ref_server
from tests.support.served import serve_process
from tideflow.api.app import create_app
from tideflow.api.services import Services, ServicesOpener
from tideflow.api.testserver import free_port, serve_app
from tideflow.auth.jwks import MAX_AGE, MIN_REFRESH
from tideflow.auth.scopes import AUDIT_BUS
from tideflow.serve import open_system
from tideflow.settings import Settings
from tideflow.testing import ManualClock

HELLO = (Path(__file__).resolve().parents[2] / "examples/workflows/hello-world.yaml").read_text()
YAML = {"content-type": "application/yaml"}


@dataclass
class World:
    http: httpx.AsyncClient
    issuer: Issuer
    admin: dict[str, str]
    clock: ManualClock


def on_clock(clock: ManualClock) -> ServicesOpener:
    """``tideflow serve``'s services, with ``clock`` for the access gate (and the routes)."""

    @asynccontextmanager
    async def opener(settings: Settings) -> AsyncIterator[Services]:
        async with open_system(settings) as services:
            yield replace(services, clock=clock)

    return opener


@pytest.fixture
async def world(pg_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with ref_server() as server:
        issuer = Issuer(server)
        issuer.add_key("rsa-1", "RS256")
        issuer.add_key("ec-1", "ES256")
        settings = Settings(
            database_url=pg_url, home=tmp_path, oidc_issuer=issuer.url, oidc_audience=AUDIENCE
        )
        clock = ManualClock(datetime.now(UTC))
        app = create_app(settings, on_clock(clock))
        async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            yield World(http, issuer, home_auth(tmp_path), clock)


async def test_signed_jwts_act_with_the_scopes_of_their_claim(world: World) -> None:
    http, issuer = world.http, world.issuer
    for kid in ("rsa-1", "ec-1"):
        reader = bearer(issuer.sign(kid, scope="openid profile read"))
        assert (await http.get("/workflows", headers=reader)).status_code == 200
        refused = await http.post("/workflows", content=HELLO, headers={**YAML, **reader})
        assert refused.status_code == 403
        assert "'deploy'" in refused.json()["detail"]
    deployer = bearer(issuer.sign("ec-1", sub="bob", email="bob@example.com", scope="deploy"))
    deployed = await http.post("/workflows", content=HELLO, headers={**YAML, **deployer})
    assert deployed.status_code == 201, deployed.text
    listed = await http.get("/workflows", headers=world.admin)  # Tideflow tokens still work
    assert listed.status_code == 200
    trail = await http.get(f"/buses/{AUDIT_BUS}/events", headers=world.admin)
    [_first_token, entry] = [e["event"] for e in trail.json()["events"]]
    assert entry["data"]["actor"] == {"tokenId": "oidc:bob", "name": "bob@example.com"}
    assert issuer.fetches() == 1  # keys fetched once, then cached
    scoped = issuer.sign("rsa-1", scope=None, scp=["read"])
    assert (await http.get("/workflows", headers=bearer(scoped))).status_code == 403


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": 1_000_000_000}, "the JWT has expired"),
        ({"nbf": 4_000_000_000}, "not valid yet"),
        ({"aud": "another-service"}, "audience"),
        ({"iss": "https://evil.example"}, "issuer"),
        ({"sub": None}, "no subject"),
        ({"exp": None}, "no expiry"),
    ],
)
async def test_jwts_whose_claims_do_not_hold_are_refused_saying_why(
    world: World, claims: dict[str, Any], reason: str
) -> None:
    token = world.issuer.sign("rsa-1", scope="read", **claims)
    refused = await world.http.get("/workflows", headers=bearer(token))
    assert refused.status_code == 401
    assert reason in refused.json()["detail"]
    assert refused.headers["www-authenticate"].startswith("Bearer")


async def test_forged_jwts_are_refused(world: World) -> None:
    http, issuer = world.http, world.issuer
    impostor = issuer.sign("rsa-1", key=new_key("RS256"), scope="admin")  # right kid, wrong key
    secret = jwt.encode({"sub": "x", "scope": "admin"}, "a shared secret " * 4, algorithm="HS256")
    unsigned = jwt.encode({"sub": "x", "scope": "admin"}, "", algorithm="none")
    swapped = issuer.sign("ec-1", key=issuer.keys["rsa-1"][1], algorithm="RS256", scope="admin")
    for token, reason in (
        (impostor, "Signature verification failed"),
        (secret, "algorithm 'HS256' is not accepted"),
        (unsigned, "algorithm 'none' is not accepted"),
        (swapped, "is not for RS256"),
    ):
        refused = await http.get("/tokens", headers=bearer(token))
        assert refused.status_code == 401, token
        assert reason in refused.json()["detail"]


async def test_a_new_key_id_refreshes_the_keys_at_most_every_few_seconds(world: World) -> None:
    http, issuer = world.http, world.issuer
    first = bearer(issuer.sign("rsa-1", scope="read"))
    assert (await http.get("/workflows", headers=first)).status_code == 200
    issuer.add_key("rsa-2")  # the issuer rotates: a new key, published
    rotated = bearer(issuer.sign("rsa-2", scope="read"))
    world.clock.advance(MIN_REFRESH)
    assert (await http.get("/workflows", headers=rotated)).status_code == 200
    assert issuer.fetches() == 2
    stranger = bearer(issuer.sign("nobody", key=new_key("RS256"), scope="read"))
    for _ in range(3):  # unknown ids do not make the server fetch again and again
        refused = await http.get("/workflows", headers=stranger)
        assert refused.status_code == 401
        assert "'nobody' is not one of the issuer's" in refused.json()["detail"]
    assert issuer.fetches() == 2
    world.clock.advance(MIN_REFRESH)
    assert (await http.get("/workflows", headers=stranger)).status_code == 401
    assert issuer.fetches() == 3
    world.clock.advance(MAX_AGE + 1)  # old keys are fetched again, known ids or not
    later = world.clock.now().timestamp() + 600
    fresh = bearer(issuer.sign("rsa-2", scope="read", exp=int(later)))
    assert (await http.get("/workflows", headers=fresh)).status_code == 200
    assert issuer.fetches() == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--oidc-issuer", "http://idp.example"], "use an https:// URL"),
        (["--oidc-issuer", "https://idp.example"], "--oidc-issuer needs --oidc-audience"),
    ],
)
def test_an_unusable_oidc_setting_stops_the_server_before_it_starts(
    args: list[str], message: str, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "tideflow.cli", "serve", "--port", str(free_port()), *args]
    environment = {**os.environ, "TIDEFLOW_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=environment, check=False
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "home").exists()


@contextmanager
def issuer_in_a_thread() -> Iterator[Issuer]:
    """An issuer served by its own event loop, for a ``tideflow serve`` process to reach."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    serving = ref_server()
    server = asyncio.run_coroutine_threadsafe(serving.__aenter__(), loop).result(10)
    try:
        yield Issuer(server)
    finally:
        asyncio.run_coroutine_threadsafe(serving.__aexit__(None, None, None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.mark.slow
@pytest.mark.timeout(180)  # a real server and CLI processes: see test_auth_served
def test_tideflow_serve_takes_jwts_with_its_oidc_flags_and_so_does_the_cli(
    pg_url: str, tmp_path: Path
) -> None:
    with issuer_in_a_thread() as issuer:
        issuer.add_key("k1", "ES256")
        oidc = ("--oidc-issuer", issuer.url, "--oidc-audience", AUDIENCE)
        with serve_process(pg_url, tmp_path, *oidc) as server:
            token = issuer.sign("k1", sub="carol", scope="read")
            shown = httpx.get(f"{server.url}/workflows", headers=bearer(token), timeout=30)
            assert shown.status_code == 200, shown.text
            listed = cli("workflows", "list", server=server.url, token=token)
            assert listed.returncode == 0, listed.stderr
            refused = cli("tokens", "list", server=server.url, token=token)
            assert "does not have the scope 'admin' [HTTP 403]" in refused.stderr
            other = issuer.sign("k1", aud="someone-else", scope="read")
            assert httpx.get(f"{server.url}/workflows", headers=bearer(other)).status_code == 401
