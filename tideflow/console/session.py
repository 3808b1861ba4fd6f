"""The console's sessions: a token login kept server-side behind an http-only cookie.

A browser signs in with an API token (``POST /ui/login``). The server checks it,
keeps it under a random session id and sets that id as an ``HttpOnly;
SameSite=Strict`` cookie: the token itself never goes back to the browser. Each
session has its own CSRF token, which every console form carries and every
state-changing console request must send back (compared in constant time).
Sessions expire after :data:`SESSION_SECONDS`; at most :data:`MAX_SESSIONS`
exist, the oldest dropped first.

``tideflow serve`` keeps them in PostgreSQL (:class:`~tideflow.console.gateway.PostgresSessions`),
so every process on the database, and the same process after a restart, knows
them. What a row holds signs no one in (:func:`digest`, :func:`seal`): the
session id is stored only as its SHA-256, and the API token only encrypted
under a key derived from the session id, which only the browser's cookie holds.
:class:`MemorySessions` keeps them in one process (an app built without a
database, as in tests).

This module is pure: the clock is passed in, ids come from :mod:`tideflow.ids`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tideflow import ids
from tideflow.clock import Clock

COOKIE: Final = "tideflow_session"
SESSION_SECONDS: Final = 12 * 3600.0
MAX_SESSIONS: Final = 10_000
_NONCE: Final = bytes(12)
"""Each session's key seals exactly one value, once: a fixed nonce is safe."""


@dataclass(frozen=True, slots=True)
class Session:
    """One browser's session.

    Attributes:
        id: The cookie's value.
        csrf: The token its forms carry.
        token: The API token it signed in with (``""``: none, e.g. ``--insecure-local``).
        expires: When it ends.
    """

    id: str
    csrf: str
    token: str
    expires: datetime

    def csrf_ok(self, presented: str | None) -> bool:
        """Whether ``presented`` is this session's CSRF token (constant-time)."""
        return presented is not None and hmac.compare_digest(presented, self.csrf)


class SessionStore(Protocol):
    """Where the console keeps its sessions."""

    async def open(self, token: str) -> Session:
        """A new session holding ``token``."""
        ...

    async def get(self, session_id: str | None) -> Session | None:
        """The live session of a cookie's value (``None``: none, or expired)."""
        ...

    async def close(self, session_id: str | None) -> None:
        """End a session (logout); unknown ids are ignored."""
        ...


def new_session(token: str, expires: datetime) -> Session:
    """A session with a fresh id and CSRF token (256 random bits each)."""
    _, session_id = ids.new_token_parts()
    _, csrf = ids.new_token_parts()
    return Session(session_id, csrf, token, expires)


def digest(session_id: str) -> str:
    """What a store keeps in place of the session id (hex SHA-256)."""
    return hashlib.sha256(b"tideflow-console-session\0" + session_id.encode()).hexdigest()


def _key(session_id: str) -> bytes:
    return hashlib.sha256(b"tideflow-console-seal\0" + session_id.encode()).digest()


def seal(session_id: str, token: str) -> bytes:
    """``token`` encrypted (AES-256-GCM) under a key only ``session_id`` gives."""
    return AESGCM(_key(session_id)).encrypt(_NONCE, token.encode(), digest(session_id).encode())


def unseal(session_id: str, sealed: bytes) -> str | None:
    """The token :func:`seal` sealed for ``session_id`` (``None``: not sealed for it)."""
    try:
        plain = AESGCM(_key(session_id)).decrypt(_NONCE, sealed, digest(session_id).encode())
    except InvalidTag:
        return None
    return plain.decode()


class MemorySessions:
    """The sessions of one server process (a :class:`SessionStore`)."""

    def __init__(self, clock: Clock, *, ttl: float = SESSION_SECONDS, most: int = MAX_SESSIONS):
        self._clock = clock
        self._ttl = timedelta(seconds=ttl)
        self._most = most
        self._by_id: OrderedDict[str, Session] = OrderedDict()

    async def open(self, token: str) -> Session:
        """A new session holding ``token``."""
        session = new_session(token, self._clock.now() + self._ttl)
        self._by_id[session.id] = session
        while len(self._by_id) > self._most:
            self._by_id.popitem(last=False)
        return session

    async def get(self, session_id: str | None) -> Session | None:
        """The live session of a cookie's value (``None``: none, or expired)."""
        session = self._by_id.get(session_id) if session_id else None
        if session is None:
            return None
        if session.expires <= self._clock.now():
            del self._by_id[session.id]
            return None
        return session

    async def close(self, session_id: str | None) -> None:
        """End a session (logout); unknown ids are ignored."""
        if session_id:
            self._by_id.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._by_id)
