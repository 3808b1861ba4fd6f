"""The console's sessions: a token login kept server-side behind an http-only cookie.

A browser signs in with an API token (``POST /ui/login``). The server checks it,
keeps it in memory under a random session id and sets that id as an
``HttpOnly; SameSite=Strict`` cookie: the token itself never goes back to the
browser. Each session has its own CSRF token, which every console form carries
and every state-changing console request must send back (compared in constant
time). Sessions expire after :data:`SESSION_SECONDS` and are held per process (a
restart, or another node of a cluster, asks for the login again); at most
:data:`MAX_SESSIONS` exist, the oldest dropped first.

Pure: the clock is passed in, ids come from :mod:`tideflow.ids`.
"""

from __future__ import annotations

import hmac
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from tideflow import ids
from tideflow.clock import Clock

COOKIE: Final = "tideflow_session"
SESSION_SECONDS: Final = 12 * 3600.0
MAX_SESSIONS: Final = 10_000


@dataclass(frozen=True, slots=True)
class Session:
    """One browser's session.

    Attributes:
        id: The cookie's value.
        csrf: The token its forms carry.
        token: The API token it signed in with (``""``: none, e.g. ``--insecure-local``).
        expires: When it ends (the clock's monotonic seconds).
    """

    id: str
    csrf: str
    token: str
    expires: float

    def csrf_ok(self, presented: str | None) -> bool:
        """Whether ``presented`` is this session's CSRF token (constant-time)."""
        return presented is not None and hmac.compare_digest(presented, self.csrf)


class Sessions:
    """The sessions of one server process."""

    def __init__(self, clock: Clock, *, ttl: float = SESSION_SECONDS, most: int = MAX_SESSIONS):
        self._clock = clock
        self._ttl = ttl
        self._most = most
        self._by_id: OrderedDict[str, Session] = OrderedDict()

    def open(self, token: str) -> Session:
        """A new session holding ``token``."""
        _, session_id = ids.new_token_parts()
        _, csrf = ids.new_token_parts()
        session = Session(session_id, csrf, token, self._clock.monotonic() + self._ttl)
        self._by_id[session.id] = session
        while len(self._by_id) > self._most:
            self._by_id.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of a cookie's value (``None``: none, or expired)."""
        if not session_id:
            return None
        session = self._by_id.get(session_id)
        if session is None:
            return None
        if session.expires <= self._clock.monotonic():
            del self._by_id[session_id]
            return None
        return session

    def close(self, session_id: str | None) -> None:
        """End a session (logout); unknown ids are ignored."""
        if session_id:
            self._by_id.pop(session_id, None)

    def drop_token(self, token: str) -> None:
        """End every session of a token the server no longer accepts."""
        for session_id in [s.id for s in self._by_id.values() if s.token == token]:
            del self._by_id[session_id]

    def __len__(self) -> int:
        return len(self._by_id)
