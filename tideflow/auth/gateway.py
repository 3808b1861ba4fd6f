"""The tokens' gateway to PostgreSQL: the only code that uses ``tideflow/auth/sql``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from tideflow.auth.tokens import TokenRecord
from tideflow.db import load_queries
from tideflow.errors import AlreadyExists, StoreError, TokenNotFound
from tideflow.notify import CONNECTION_ERRORS

_Q = load_queries("tideflow.auth")

CHANNEL = "tideflow_tokens"
"""NOTIFY channel of revocations: the payload is the revoked token's id."""


def _args(record: TokenRecord) -> tuple[object, ...]:
    return (
        record.id,
        record.name,
        list(record.scopes),
        record.digest,
        record.created_at,
        record.rate,
    )


class PostgresTokens:
    """API tokens in ``tideflow_tokens`` (a :class:`~tideflow.auth.verifier.TokenStore`).

    Args:
        pool: The asyncpg pool.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def find(self, token_id: str) -> TokenRecord | None:
        """The record of ``token_id`` (revoked ones too), or ``None``.

        Raises:
            StoreError: The database is unreachable (a 503, not a 500, for the request).
        """
        try:
            row = await self.pool.fetchrow(_Q["find_token"], token_id)
        except CONNECTION_ERRORS as exc:
            raise StoreError(
                f"cannot check the token: the database is unreachable ({exc})"
            ) from exc
        return None if row is None else TokenRecord.from_row(row)

    async def create(self, record: TokenRecord) -> None:
        """Store a new token.

        Raises:
            AlreadyExists: Its id is taken (a 48-bit collision: make another).
        """
        if await self.pool.fetchval(_Q["insert_token"], *_args(record)) is None:
            raise AlreadyExists(f"a token with id {record.id!r} exists")

    async def create_first(self, record: TokenRecord) -> bool:
        """Store ``record`` only if there is no token at all; whether it was stored."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(_Q["lock_first_token"])
            return await conn.fetchval(_Q["insert_first_token"], *_args(record)) is not None

    async def list(self) -> Sequence[TokenRecord]:
        """Every token, oldest first."""
        return [TokenRecord.from_row(row) for row in await self.pool.fetch(_Q["list_tokens"])]

    async def revoke(self, token_id: str, at: datetime) -> TokenRecord:
        """Revoke a token (a no-op if it already is); return it.

        The revocation is announced on :data:`CHANNEL` when it commits.

        Raises:
            TokenNotFound: No such token.
        """
        row = await self.pool.fetchrow(_Q["revoke_token"], token_id, at)
        if row is None:
            raise TokenNotFound(f"no token with id {token_id!r}")
        return TokenRecord.from_row(row)
