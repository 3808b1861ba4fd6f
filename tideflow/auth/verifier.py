"""Checking presented tokens, cheaply: :class:`TokenVerifier` over a :class:`TokenStore`.

Every request but ``/healthz`` and ``/readyz`` carries a token, so looking it
up in the database each time would cost a round trip per request. The
verifier keeps what it verified in memory for ``ttl`` seconds (5 by default)
and compares a presented token's digest with the cached one in constant time.
A revocation is honoured at once in the process that revoked the token
(:meth:`TokenVerifier.forget`), in other ``tideflow serve`` processes as soon
as its NOTIFY arrives (:mod:`tideflow.serve` listens), and within ``ttl`` in
any case (a listener that was down clears the cache when it reconnects).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from tideflow.auth.rates import Rate
from tideflow.auth.tokens import Principal, TokenRecord, matches, token_id_of
from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.errors import AuthenticationRequired

DEFAULT_TTL: Final = 5.0
MAX_CACHED: Final = 10_000
BAD_TOKEN: Final = (
    "a valid API token is required: send 'Authorization: Bearer <token>' "
    "(tideflow tokens create makes one)"
)


class TokenStore(Protocol):
    """Where token records live (PostgreSQL, or memory in tests)."""

    async def find(self, token_id: str) -> TokenRecord | None:
        """The record of ``token_id`` (revoked ones too), or ``None``."""
        ...

    async def create(self, record: TokenRecord) -> None:
        """Store a new token."""
        ...

    async def create_first(self, record: TokenRecord) -> bool:
        """Store ``record`` only if there is no token at all; whether it was stored."""
        ...

    async def list(self) -> Sequence[TokenRecord]:
        """Every token, oldest first."""
        ...

    async def revoke(self, token_id: str, at: datetime) -> TokenRecord:
        """Revoke a token (a no-op if it already is); return it.

        Raises:
            TokenNotFound: No such token.
        """
        ...


@dataclass(frozen=True, slots=True)
class _Verified:
    digest: str
    principal: Principal
    at: float


class TokenVerifier:
    """Turns a presented token's text into a :class:`Principal`, caching for ``ttl`` seconds.

    Args:
        store: Where the records are.
        clock: For the cache's age (monotonic).
        ttl: How long a verified token is trusted without a look-up.
    """

    def __init__(
        self, store: TokenStore, clock: Clock = SYSTEM_CLOCK, ttl: float = DEFAULT_TTL
    ) -> None:
        self.store = store
        self.clock = clock
        self.ttl = ttl
        self._cache: dict[str, _Verified] = {}

    async def verify(self, text: str) -> Principal:
        """The principal of a token's text.

        Raises:
            AuthenticationRequired: It is malformed, unknown, revoked or wrong
                (one message for all: whether an id exists is never told).
        """
        token_id = token_id_of(text)
        if token_id is None:
            raise AuthenticationRequired(BAD_TOKEN)
        now = self.clock.monotonic()
        cached = self._cache.get(token_id)
        if cached is None or now - cached.at > self.ttl:
            cached = await self._load(token_id, now)
        if cached is None or not matches(text, cached.digest):
            raise AuthenticationRequired(BAD_TOKEN)
        return cached.principal

    def forget(self, token_id: str) -> None:
        """Drop a token from the cache (it was just revoked, here or elsewhere)."""
        self._cache.pop(token_id, None)

    def clear(self) -> None:
        """Drop every cached token (revocations may have been missed)."""
        self._cache.clear()

    async def _load(self, token_id: str, now: float) -> _Verified | None:
        record = await self.store.find(token_id)
        if record is None or record.revoked_at is not None:
            self._cache.pop(token_id, None)
            return None
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()  # rare (10,000 live tokens): start again rather than grow
        rate = Rate.parse(record.rate) if record.rate else None
        principal = Principal(record.id, record.name, record.scopes, rate)
        verified = _Verified(record.digest, principal, now)
        self._cache[token_id] = verified
        return verified
