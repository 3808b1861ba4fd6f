"""Auth definitions: basic, bearer and OAuth2 (client credentials, password, token exchange).

The 0.8 spec applies a function's ``authRef`` when fetching its ``operation``
resource (the OpenAPI document); Tideflow applies it to that fetch *and* to
the call itself, which is what services behind such documents expect.

OAuth2 tokens come from the token endpoint named by the properties'
``tokenUrl`` (a Tideflow extension) or, without it, from the ``token_endpoint``
of ``<authority>/.well-known/openid-configuration``. Tokens are cached per auth
definition until shortly before they expire.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.runtime.functions.types import (
    AuthDefinition,
    ClientLike,
    UsesClient,
    call_error,
    check_status,
    send,
)

_EXPIRY_MARGIN = 30.0
_GRANTS = {
    "clientCredentials": "client_credentials",
    "password": "password",
    "tokenExchange": "urn:ietf:params:oauth:grant-type:token-exchange",  # RFC 8693
}
_ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires_at: float | None


class AuthProvider(UsesClient):
    """Turns auth definitions into request headers, caching OAuth2 tokens."""

    def __init__(self, client: ClientLike, clock: Clock = SYSTEM_CLOCK) -> None:
        """Args:
        client: The HTTP client used for token and discovery requests.
        clock: Decides when a cached token has expired.
        """
        super().__init__(client)
        self._clock = clock
        self._tokens: dict[str, _Token] = {}

    async def headers(self, auth: AuthDefinition | None) -> dict[str, str]:
        """The headers that authenticate a request under ``auth`` (none without it)."""
        if auth is None:
            return {}
        props = auth.properties
        if not isinstance(props, Mapping):
            raise call_error(
                f"auth {auth.name!r}: properties must evaluate to an object, got {props!r}",
                code="InvalidAuth",
            )
        if auth.scheme == "basic":
            user, password = _required(auth, "username"), _required(auth, "password")
            raw = base64.b64encode(f"{user}:{password}".encode()).decode()
            return {"Authorization": f"Basic {raw}"}
        if auth.scheme == "bearer":
            return {"Authorization": f"Bearer {_required(auth, 'token')}"}
        if auth.scheme == "oauth2":
            return {"Authorization": f"Bearer {await self._oauth2_token(auth)}"}
        raise call_error(
            f"auth {auth.name!r}: unknown scheme {auth.scheme!r} (basic, bearer or oauth2)",
            code="InvalidAuth",
        )

    async def _oauth2_token(self, auth: AuthDefinition) -> str:
        cached = self._tokens.get(auth.name)
        now = self._clock.monotonic()
        if cached and (cached.expires_at is None or cached.expires_at > now):
            return cached.value
        grant = str(auth.properties.get("grantType", "clientCredentials"))
        if grant not in _GRANTS:
            raise call_error(
                f"auth {auth.name!r}: OAuth2 grant type {grant!r} is not supported "
                "(clientCredentials, password and tokenExchange are)",
                code="InvalidAuth",
            )
        form = _token_form(auth, grant)
        request = self._client.build_request("POST", await self._token_url(auth), data=form)
        response = await send(self._client, request, f"auth {auth.name!r} token", None)
        check_status(response, f"auth {auth.name!r} token")
        token = _read_token(auth, response)
        expires_in = response.json().get("expires_in")
        expires_at = now + float(expires_in) - _EXPIRY_MARGIN if expires_in else None
        self._tokens[auth.name] = _Token(token, expires_at)
        return token

    async def _token_url(self, auth: AuthDefinition) -> str:
        if auth.properties.get("tokenUrl"):
            return str(auth.properties["tokenUrl"])
        authority = _required(auth, "authority").rstrip("/")
        url = f"{authority}/.well-known/openid-configuration"
        response = await send(
            self._client, self._client.build_request("GET", url), "discovery", None
        )
        check_status(response, f"auth {auth.name!r} discovery")
        try:
            return str(response.json()["token_endpoint"])
        except (ValueError, KeyError, TypeError) as exc:
            raise call_error(
                f"auth {auth.name!r}: {url} names no token_endpoint; set 'tokenUrl'",
                code="InvalidAuth",
            ) from exc


def _token_form(auth: AuthDefinition, grant: str) -> dict[str, str]:
    """The token request's form fields for ``grant``."""
    props = auth.properties
    form = {"grant_type": _GRANTS[grant], "client_id": _required(auth, "clientId")}
    if "clientSecret" in props:
        form["client_secret"] = str(props["clientSecret"])
    if grant == "password":
        form["username"] = _required(auth, "username")
        form["password"] = _required(auth, "password")
    if grant == "tokenExchange":
        if props.get("subjectToken") in (None, ""):
            raise call_error(
                f"auth {auth.name!r}: the tokenExchange grant needs 'subjectToken'",
                code="InvalidAuth",
            )
        form["subject_token"] = str(props["subjectToken"])
        form["subject_token_type"] = str(props.get("subjectTokenType", _ACCESS_TOKEN_TYPE))
        for key, field in (
            ("requestedSubject", "requested_subject"),
            ("requestedIssuer", "requested_issuer"),
        ):
            if props.get(key):
                form[field] = str(props[key])
    if props.get("scopes"):
        form["scope"] = " ".join(str(s) for s in props["scopes"])
    if props.get("audiences"):
        form["audience"] = " ".join(str(a) for a in props["audiences"])
    return form


def _required(auth: AuthDefinition, key: str) -> str:
    value = auth.properties.get(key)
    if value in (None, ""):
        raise call_error(f"auth {auth.name!r} ({auth.scheme}) needs {key!r}", code="InvalidAuth")
    return str(value)


def _read_token(auth: AuthDefinition, response: httpx.Response) -> str:
    try:
        body: Any = response.json()
        return str(body["access_token"])
    except (ValueError, KeyError, TypeError) as exc:
        raise call_error(
            f"auth {auth.name!r}: the token endpoint's answer has no access_token",
            code="InvalidAuth",
        ) from exc
