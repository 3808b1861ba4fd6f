"""The console sessions' gateway to PostgreSQL: the only code that uses ``tideflow/console/sql``."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from tideflow.clock import Clock
from tideflow.console.session import (
    MAX_SESSIONS,
    SESSION_SECONDS,
    Session,
    digest,
    new_session,
    seal,
    unseal,
)
from tideflow.db import load_queries
from tideflow.errors import StoreError
from tideflow.notify import CONNECTION_ERRORS

_Q = load_queries("tideflow.console")


class PostgresSessions:
    """Console sessions in ``tideflow_console_sessions`` (a
    :class:`~tideflow.console.session.SessionStore`), shared by every process on the
    database and kept across restarts.

    Args:
        pool: The asyncpg pool.
        clock: Expiry is on its wall time (every process's clock, not one's monotonic).
        ttl: Seconds a session lasts.
        most: The most sessions kept; a login beyond it drops the oldest.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        *,
        ttl: float = SESSION_SECONDS,
        most: int = MAX_SESSIONS,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._ttl = timedelta(seconds=ttl)
        self._most = most

    async def open(self, token: str) -> Session:
        """A new session holding ``token``; expired sessions are deleted on the way.

        Raises:
            StoreError: The database is unreachable.
        """
        now = self._clock.now()
        session = new_session(token, now + self._ttl)
        sealed = seal(session.id, token)
        args = (digest(session.id), session.csrf, sealed, now, session.expires, self._most - 1)
        try:
            await self._pool.execute(_Q["open_session"], *args)
        except CONNECTION_ERRORS as exc:
            raise StoreError(f"cannot keep the session: database unreachable ({exc})") from exc
        return session

    async def get(self, session_id: str | None) -> Session | None:
        """The live session of a cookie's value (``None``: none, expired, or not ours).

        Raises:
            StoreError: The database is unreachable.
        """
        if not session_id:
            return None
        try:
            row = await self._pool.fetchrow(
                _Q["get_session"], digest(session_id), self._clock.now()
            )
        except CONNECTION_ERRORS as exc:
            raise StoreError(f"cannot read the session: database unreachable ({exc})") from exc
        token = None if row is None else unseal(session_id, row["sealed"])
        if row is None or token is None:
            return None
        return Session(session_id, row["csrf"], token, row["expires_at"])

    async def close(self, session_id: str | None) -> None:
        """End a session (logout); unknown ids are ignored."""
        if session_id:
            await self._pool.execute(_Q["close_session"], digest(session_id))
