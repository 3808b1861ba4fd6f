"""OIDC/JWT bearer tokens: a company's identity provider signs them, Tideflow checks them.

With ``--oidc-issuer URL --oidc-audience AUD`` a request may carry, instead of
a Tideflow token, a JWT the issuer signed (RS256 or ES256) with one of the
keys of its JWKS (:mod:`tideflow.auth.jwks`). :class:`JwtVerifier` checks the
signature, then :func:`check_claims` (pure): ``iss`` is the issuer, ``aud``
holds the audience, ``exp`` is not past and ``nbf`` not ahead (with
:data:`LEEWAY` seconds of clock skew), ``sub`` is there. The token's scopes
are the Tideflow scopes listed in one claim (``scope`` by default: a
space-separated string, or a list); any other word there (``openid``,
``profile``) is ignored, and a token with none may do nothing.

A verified JWT is kept in memory until it expires (at most
:data:`MAX_CACHED` of them), so a client that sends the same JWT again costs
a dictionary look-up, as a Tideflow token does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

import jwt

from tideflow.auth.scopes import parse_scope
from tideflow.auth.tokens import Principal
from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.errors import AuthenticationRequired, InvalidArgument

ALGORITHMS: Final = ("RS256", "ES256")
LEEWAY: Final = 60.0
"""Seconds of clock skew allowed on ``exp`` and ``nbf``."""
MAX_CACHED: Final = 10_000
PRINCIPAL_PREFIX: Final = "oidc:"
"""A JWT principal's id is this and its ``sub`` (in the audit trail, and its rate-limit bucket)."""
_SHAPE: Final = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_NAME_CLAIMS: Final = ("preferred_username", "email", "name")


@dataclass(frozen=True, slots=True, kw_only=True)
class OidcConfig:
    """Which issuer's JWTs a server accepts.

    Attributes:
        issuer: The issuer URL, exactly as in its tokens' ``iss``.
        audience: What ``aud`` must hold.
        scope_claim: The claim that lists the token's scopes.
    """

    issuer: str
    audience: str
    scope_claim: str = "scope"


def looks_like_jwt(text: str) -> bool:
    """Whether ``text`` has a JWT's shape (three base64url parts), not a Tideflow token's."""
    return _SHAPE.fullmatch(text) is not None


def scopes_of(value: Any) -> tuple[str, ...]:
    """The Tideflow scopes in a scope claim (a space-separated string or a list); others ignored."""
    words = value.split() if isinstance(value, str) else value
    if not isinstance(words, list):
        return ()
    found: list[str] = []
    for word in words:
        if not isinstance(word, str):
            continue
        try:
            found.append(parse_scope(word))
        except InvalidArgument:
            continue  # openid, profile, email, another service's scopes
    return tuple(dict.fromkeys(found))


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthenticationRequired(f"the JWT's {name!r} is not a number")
    return float(value)


def check_claims(claims: Mapping[str, Any], config: OidcConfig, now: float) -> Principal:
    """The principal of a JWT whose signature is verified, if its claims hold at ``now``.

    Args:
        claims: The JWT's payload.
        config: The accepted issuer and audience.
        now: Seconds since the epoch.

    Raises:
        AuthenticationRequired: A claim is missing or wrong (the message says which).
    """
    if claims.get("iss") != config.issuer:
        raise AuthenticationRequired("the JWT's issuer ('iss') is not the configured issuer")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if config.audience not in audiences:
        raise AuthenticationRequired(
            f"the JWT's audience ('aud') does not hold {config.audience!r}"
        )
    expires = _number(claims, "exp")
    if expires is None:
        raise AuthenticationRequired("the JWT has no expiry ('exp')")
    if now > expires + LEEWAY:
        raise AuthenticationRequired("the JWT has expired")
    not_before = _number(claims, "nbf")
    if not_before is not None and now < not_before - LEEWAY:
        raise AuthenticationRequired("the JWT is not valid yet ('nbf')")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise AuthenticationRequired("the JWT has no subject ('sub')")
    name = next((claims[c] for c in _NAME_CLAIMS if isinstance(claims.get(c), str)), subject)
    scopes = scopes_of(claims.get(config.scope_claim))
    return Principal(PRINCIPAL_PREFIX + subject, name, scopes)


class KeySource(Protocol):
    """The issuer's signing keys by ``kid`` (:class:`~tideflow.auth.jwks.IssuerKeys`)."""

    async def key(self, kid: str | None, algorithm: str) -> Any:
        """The public key for ``kid`` usable with ``algorithm``.

        Raises:
            AuthenticationRequired: The issuer has no such key.
            IdentityProviderUnavailable: Its keys cannot be fetched.
        """
        ...


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    expires: float


class JwtVerifier:
    """Turns a JWT's text into a :class:`Principal` (cached until it expires).

    Args:
        config: The accepted issuer and audience.
        keys: The issuer's keys.
        clock: Wall-clock time for ``exp`` and ``nbf``.
    """

    def __init__(self, config: OidcConfig, keys: KeySource, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self.keys = keys
        self.clock = clock
        self._cache: dict[str, _Verified] = {}

    async def verify(self, text: str) -> Principal:
        """The principal of a JWT.

        Raises:
            AuthenticationRequired: It is malformed, signed by no key of the
                issuer, or its claims do not hold (the message says why).
            IdentityProviderUnavailable: The issuer's keys cannot be fetched.
        """
        now = _seconds(self.clock.now())
        cached = self._cache.get(text)
        if cached is not None and now <= cached.expires:
            return cached.principal
        claims = await self._signed_claims(text)
        principal = check_claims(claims, self.config, now)
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()  # rare: start again rather than grow
        self._cache[text] = _Verified(principal, float(claims["exp"]) + LEEWAY)
        return principal

    async def _signed_claims(self, text: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(text)
        except jwt.PyJWTError:
            raise AuthenticationRequired("the bearer token is not a readable JWT") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise AuthenticationRequired(
                f"the JWT's algorithm {algorithm!r} is not accepted: {', '.join(ALGORITHMS)}"
            )
        kid = header.get("kid")
        key = await self.keys.key(kid if isinstance(kid, str) else None, algorithm)
        try:
            claims: dict[str, Any] = jwt.decode(
                text, key, algorithms=[algorithm], options=_SIGNATURE_ONLY
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationRequired(f"the JWT is not accepted: {exc}") from None
        return claims


_SIGNATURE_ONLY: Final[Any] = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
}
"""PyJWT checks the signature; :func:`check_claims` the rest, on the injected clock."""


def _seconds(moment: datetime) -> float:
    return moment.timestamp()
