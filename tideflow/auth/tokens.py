"""API tokens: their text, their stored form, and who a verified token is.

A token's text is ``tf_<id>_<secret>``: ``id`` is 12 hex digits, public, and
names the token in lists and logs; ``secret`` is 256 random bits. Only the
SHA-256 digest of the whole text is stored, so a copy of the database gives
no usable token; a presented token is looked up by its id and its digest is
compared in constant time. The text is shown once, when the token is made.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from tideflow import ids
from tideflow.auth.rates import Rate
from tideflow.auth.scopes import ADMIN, grants, parse_scopes
from tideflow.errors import InvalidArgument
from tideflow.isotime import format_timestamp

PREFIX: Final = "tf_"
_TEXT: Final = re.compile(r"^tf_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAME: Final = re.compile(r"^[^\x00-\x1f\x7f]{1,100}$")


def digest(text: str) -> str:
    """The stored form of a token's text (SHA-256, hex)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def token_id_of(text: str) -> str | None:
    """The public id of a token's text, or ``None`` if it is not shaped like a token."""
    match = _TEXT.fullmatch(text)
    return match.group(1) if match else None


def matches(text: str, stored_digest: str) -> bool:
    """Whether ``text`` is the token whose digest is ``stored_digest`` (constant time)."""
    return hmac.compare_digest(digest(text), stored_digest)


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRecord:
    """A token as stored: never its text.

    Attributes:
        id: The public id (the ``<id>`` of ``tf_<id>_<secret>``).
        name: What it is for, chosen by whoever made it.
        scopes: What it may do.
        digest: SHA-256 of its text.
        created_at: When it was made.
        revoked_at: When it was revoked (``None``: in force).
        rate: Its own rate limit as written (``"20/s"``; ``None``: the server's default).
    """

    id: str
    name: str
    scopes: tuple[str, ...]
    digest: str
    created_at: datetime
    revoked_at: datetime | None = None
    rate: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TokenRecord:
        """From a ``tideflow_tokens`` row."""
        return cls(
            id=row["id"],
            name=row["name"],
            scopes=tuple(row["scopes"]),
            digest=row["digest"],
            created_at=row["created_at"],
            revoked_at=row["revoked_at"],
            rate=row["rate"],
        )

    def to_json(self) -> dict[str, Any]:
        """The API's view: everything but the digest."""
        revoked = self.revoked_at
        return {
            "id": self.id,
            "name": self.name,
            "scopes": list(self.scopes),
            "createdAt": format_timestamp(self.created_at),
            "revokedAt": format_timestamp(revoked) if revoked else None,
            "rate": self.rate,
        }


@dataclass(frozen=True, slots=True)
class Issued:
    """A new token: its record and its text (shown once, never stored)."""

    record: TokenRecord
    text: str


def issue(name: str, scopes: Sequence[str], now: datetime, rate: str | None = None) -> Issued:
    """Make a new token.

    Raises:
        InvalidArgument: The name is empty, too long or has control characters,
            or a scope is invalid.
    """
    if not _NAME.fullmatch(name):
        raise InvalidArgument(
            "a token name is 1-100 characters without control characters", argument="name"
        )
    token_id, secret = ids.new_token_parts()
    text = f"{PREFIX}{token_id}_{secret}"
    record = TokenRecord(
        id=token_id,
        name=name,
        scopes=parse_scopes(scopes),
        digest=digest(text),
        created_at=now,
        rate=None if rate is None else Rate.parse(rate).text,
    )
    return Issued(record, text)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request comes from.

    Attributes:
        token_id: The verified token's id (``None``: ``--insecure-local``, no token).
        name: The token's name.
        scopes: What it may do.
        rate: Its own rate limit (``None``: the server's default).
    """

    token_id: str | None
    name: str
    scopes: tuple[str, ...]
    rate: Rate | None = None

    def allows(self, scope: str) -> bool:
        """Whether this principal may do what needs ``scope``."""
        return grants(self.scopes, scope)


INSECURE_LOCAL: Final = Principal(None, "insecure-local", (ADMIN,))
"""Every request's principal when the server runs with ``--insecure-local``."""
