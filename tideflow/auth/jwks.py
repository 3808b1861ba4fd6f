"""The OIDC issuer's signing keys: found through its discovery document, fetched, cached.

:class:`IssuerKeys` reads ``<issuer>/.well-known/openid-configuration``,
checks that it names the same issuer, then reads its ``jwks_uri`` -- both
asynchronously, each within :data:`FETCH_SECONDS` and :data:`MAX_BYTES`, no
redirects, over ``https`` (plain ``http`` only to a loopback address). Keys
are kept for :data:`MAX_AGE` seconds and fetched again sooner when a JWT
names a key id the set does not hold (a key rotation), at most once every
:data:`MIN_REFRESH` seconds however many JWTs name unknown keys, and by one
request at a time. When a refresh fails, the keys already known stay in use
(and the failure is logged); a JWT whose key is not among them gets ``503``.

Only RSA keys (RS256) and P-256 EC keys (ES256) with ``use`` absent or
``sig`` are taken; a key whose ``alg`` says otherwise is used for that
algorithm only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import jwt
import orjson

from tideflow.auth.hygiene import is_loopback
from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.errors import AuthenticationRequired, ConfigurationError, IdentityProviderUnavailable

log = logging.getLogger("tideflow.auth")

FETCH_SECONDS: Final = 5.0
MAX_BYTES: Final = 512 * 1024
MAX_AGE: Final = 3600.0
MIN_REFRESH: Final = 10.0
DISCOVERY_PATH: Final = "/.well-known/openid-configuration"
_KEY_TYPES: Final = {"RS256": ("RSA", None), "ES256": ("EC", "P-256")}


def check_issuer_url(url: str, what: str = "--oidc-issuer") -> str:
    """``url`` if keys may be fetched from it: ``https``, or ``http`` on loopback.

    Raises:
        ConfigurationError: It is not such a URL.
    """
    parts = urlsplit(url)
    secure = parts.scheme == "https" or (
        parts.scheme == "http" and is_loopback(parts.hostname or "")
    )
    if not secure or not parts.hostname:
        raise ConfigurationError(
            f"{what} {url!r}: use an https:// URL (plain http only on a loopback address)"
        )
    return url


def keys_of(jwks: Any) -> dict[str | None, tuple[str, Any]]:
    """The usable signing keys of a JWKS document by ``kid``: ``(algorithm, public key)``."""
    entries = jwks.get("keys") if isinstance(jwks, dict) else None
    found: dict[str | None, tuple[str, Any]] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        for algorithm, (kty, crv) in _KEY_TYPES.items():
            fits = entry.get("kty") == kty and (crv is None or entry.get("crv") == crv)
            if not fits or entry.get("alg", algorithm) != algorithm:
                continue
            try:
                key = jwt.PyJWK(entry, algorithm).key
            except jwt.PyJWTError:
                continue  # a malformed key: the others may still serve
            kid = entry.get("kid")
            found[kid if isinstance(kid, str) else None] = (algorithm, key)
    return found


class IssuerKeys:
    """The signing keys of one OIDC issuer (a :class:`~tideflow.auth.oidc.KeySource`).

    Args:
        issuer: The issuer URL (checked with :func:`check_issuer_url`).
        clock: Its ``monotonic()`` ages the keys.
        timeout: Seconds for each of the two fetches, whole.
    """

    def __init__(
        self, issuer: str, *, clock: Clock = SYSTEM_CLOCK, timeout: float = FETCH_SECONDS
    ) -> None:
        self.issuer = check_issuer_url(issuer)
        self.clock = clock
        self.timeout = timeout
        self._keys: dict[str | None, tuple[str, Any]] = {}
        self._fetched_at: float | None = None
        self._tried_at: float | None = None
        self._error: str | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None, algorithm: str) -> Any:
        """The public key ``kid`` for ``algorithm``, refreshing the set when it is old or
        lacks ``kid``.

        Raises:
            AuthenticationRequired: The issuer has no such key for ``algorithm``.
            IdentityProviderUnavailable: It is not known and the keys cannot be fetched.
        """
        now = self.clock.monotonic()
        fresh = self._fetched_at is not None and now - self._fetched_at <= MAX_AGE
        may_retry = self._tried_at is None or now - self._tried_at >= MIN_REFRESH
        if self._lock.locked():  # a fetch is under way: wait for its keys
            async with self._lock:
                pass
        elif may_retry and (not fresh or kid not in self._keys):
            await self._refresh()
        found = self._keys.get(kid)
        if found is None:
            if self._error is not None:
                raise IdentityProviderUnavailable(
                    f"cannot check the JWT: the keys of {self.issuer} cannot be fetched "
                    f"({self._error})"
                )
            raise AuthenticationRequired(f"the JWT's key id {kid!r} is not one of the issuer's")
        if found[0] != algorithm:
            raise AuthenticationRequired(f"the JWT's key {kid!r} is not for {algorithm}")
        return found[1]

    async def _refresh(self) -> None:
        async with self._lock:  # free (see key): taken at once, so one fetch at a time
            self._tried_at = self.clock.monotonic()
            try:
                self._keys = await self._fetch()
            except IdentityProviderUnavailable as exc:
                self._error = exc.message
                log.warning("OIDC keys not refreshed: %s", exc.message)
                return
            self._fetched_at, self._error = self._tried_at, None

    async def _fetch(self) -> dict[str | None, tuple[str, Any]]:
        async with httpx.AsyncClient(follow_redirects=False) as client:
            discovery = await self._get_json(client, self.issuer.rstrip("/") + DISCOVERY_PATH)
            if discovery.get("issuer") != self.issuer:
                raise IdentityProviderUnavailable(
                    f"its discovery document names issuer {discovery.get('issuer')!r}"
                )
            jwks_uri = discovery.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise IdentityProviderUnavailable("its discovery document has no jwks_uri")
            try:
                check_issuer_url(jwks_uri, "jwks_uri")
            except ConfigurationError as exc:
                raise IdentityProviderUnavailable(exc.message) from None
            return keys_of(await self._get_json(client, jwks_uri))

    async def _get_json(self, client: httpx.AsyncClient, url: str) -> Mapping[str, Any]:
        """One JSON object, within the time and size bounds.

        Raises:
            IdentityProviderUnavailable: No such object came in time.
        """
        try:
            async with asyncio.timeout(self.timeout), client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise IdentityProviderUnavailable(f"{url}: HTTP {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_BYTES:
                        raise IdentityProviderUnavailable(f"{url}: larger than {MAX_BYTES} bytes")
        except TimeoutError:
            raise IdentityProviderUnavailable(
                f"{url}: no answer within {self.timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise IdentityProviderUnavailable(f"{url}: {str(exc) or type(exc).__name__}") from None
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise IdentityProviderUnavailable(f"{url}: not JSON") from None
        if not isinstance(document, dict):
            raise IdentityProviderUnavailable(f"{url}: not a JSON object")
        return document
