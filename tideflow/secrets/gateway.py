"""The secret grants' gateway to PostgreSQL: the only code that uses ``tideflow/secrets/sql``."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from tideflow.db import load_queries
from tideflow.errors import SecretGrantNotFound, StoreError
from tideflow.notify import CONNECTION_ERRORS
from tideflow.secrets.grants import Grant

_Q = load_queries("tideflow.secrets")

CHANNEL = "tideflow_secret_grants"
"""NOTIFY channel of grant changes (the payload is the pattern): servers load again
the versions that use secrets and resolve sinks' secrets again."""


class PostgresGrants:
    """Grants made through the admin API, in ``tideflow_secret_grants`` (a
    :class:`~tideflow.secrets.access.GrantStore`); names only, never values.

    Args:
        pool: The asyncpg pool.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def list(self) -> list[Grant]:
        """Every stored grant, oldest first.

        Raises:
            StoreError: The database is unreachable.
        """
        try:
            rows = await self.pool.fetch(_Q["list_grants"])
        except CONNECTION_ERRORS as exc:
            raise StoreError(f"cannot read the secret grants: {exc}") from exc
        return [Grant(row["pattern"], tuple(row["secrets"])) for row in rows]

    async def put(self, grant: Grant, now: datetime) -> None:
        """Store ``grant``, replacing the names of an earlier grant of its pattern."""
        await self.pool.fetchrow(_Q["put_grant"], grant.pattern, list(grant.names), now)

    async def delete(self, pattern: str) -> None:
        """Forget the grant of ``pattern``.

        Raises:
            SecretGrantNotFound: No stored grant has that pattern.
        """
        if await self.pool.fetchval(_Q["delete_grant"], pattern) is None:
            raise SecretGrantNotFound(f"no secret grant with pattern {pattern!r}")
