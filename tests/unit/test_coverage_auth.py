"""Spec coverage 13.4: OAuth2's password and token-exchange grants against a real endpoint.

The shared test services accept only client credentials, so this file runs
its own token endpoint on 127.0.0.1 and records what it was sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from tideflow.errors import FunctionCallError
from tideflow.runtime.functions import AuthDefinition
from tideflow.runtime.functions.auth import AuthProvider

RECEIVED: list[dict[str, str]] = []
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


class _TokenEndpoint(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        RECEIVED.append(form)
        good = (
            form.get("grant_type") == "password"
            and (form.get("username"), form.get("password")) == ("ada", "lovelace")
        ) or (form.get("grant_type") == EXCHANGE and form.get("subject_token") == "user-token")
        body = json.dumps(
            {"access_token": f"pw-{len(RECEIVED)}", "expires_in": 60}
            if good
            else {"error": "invalid_grant"}
        ).encode()
        self.send_response(200 if good else 400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def token_url() -> Iterator[str]:
    RECEIVED.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _password_auth(token_url: str, **extra: Any) -> AuthDefinition:
    props = {
        "grantType": "password",
        "clientId": "tideflow",
        "username": "ada",
        "password": "lovelace",
        "scopes": ["pets:read", "pets:write"],
        "audiences": ["pets-api"],
        "tokenUrl": token_url,
        **extra,
    }
    return AuthDefinition(name="pw", scheme="oauth2", properties=props)


async def test_oauth2_password_grant_sends_the_user_and_gets_a_bearer_token(
    token_url: str,
) -> None:
    async with httpx.AsyncClient() as client:
        provider = AuthProvider(client)
        first = await provider.headers(_password_auth(token_url))
        again = await provider.headers(_password_auth(token_url))
    assert first == again == {"Authorization": "Bearer pw-1"}  # cached until it expires
    assert RECEIVED == [
        {
            "grant_type": "password",
            "client_id": "tideflow",
            "username": "ada",
            "password": "lovelace",
            "scope": "pets:read pets:write",
            "audience": "pets-api",
        }
    ]


async def test_oauth2_password_grant_with_a_wrong_password_fails_with_the_status(
    token_url: str,
) -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(FunctionCallError) as caught:
            await AuthProvider(client).headers(_password_auth(token_url, password="nope"))
        with pytest.raises(FunctionCallError, match="'username'") as missing:
            await AuthProvider(client).headers(_password_auth(token_url, username=""))
    assert caught.value.code == "400"
    assert missing.value.code == "InvalidAuth"


async def test_oauth2_token_exchange_sends_the_subject_token(token_url: str) -> None:
    auth = AuthDefinition(
        name="tx",
        scheme="oauth2",
        properties={
            "grantType": "tokenExchange",
            "clientId": "tideflow",
            "clientSecret": "s3cret",
            "subjectToken": "user-token",
            "requestedSubject": "svc-account",
            "requestedIssuer": "partner",
            "audiences": ["pets-api"],
            "tokenUrl": token_url,
        },
    )
    async with httpx.AsyncClient() as client:
        provider = AuthProvider(client)
        headers = await provider.headers(auth)
        without = AuthDefinition(
            name="tx2", scheme="oauth2", properties={**auth.properties, "subjectToken": ""}
        )
        with pytest.raises(FunctionCallError, match="'subjectToken'") as missing:
            await provider.headers(without)
    assert headers == {"Authorization": "Bearer pw-1"}
    assert RECEIVED == [
        {
            "grant_type": EXCHANGE,
            "client_id": "tideflow",
            "client_secret": "s3cret",
            "subject_token": "user-token",
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "requested_subject": "svc-account",
            "requested_issuer": "partner",
            "audience": "pets-api",
        }
    ]
    assert missing.value.code == "InvalidAuth"
