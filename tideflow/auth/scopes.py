"""Scopes: what a token may do, and whether a token's scopes grant what a route needs.

A scope is one of the plain words :data:`ADMIN`, :data:`DEPLOY`, :data:`RUN`
and :data:`READ`, or a bus scope ``publish:<bus>`` / ``subscribe:<bus>``
whose bus part may hold ``*`` wildcards (``publish:*``, ``subscribe:orders.*``).
``admin`` grants everything; no other scope implies another -- except on
the audit bus :data:`AUDIT_BUS`: only ``admin`` reads it (no bus scope, not
even ``subscribe:*``, reaches it) and nobody publishes to it (the server
writes it, :mod:`tideflow.auth.audit`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Final

from tideflow.errors import InvalidArgument

ADMIN: Final = "admin"
"""Everything: tokens, buses, and every other scope."""
DEPLOY: Final = "deploy"
"""Deploy and delete workflows."""
RUN: Final = "run"
"""Start, cancel, suspend and resume instances."""
READ: Final = "read"
"""Read workflows, instances, buses, subscriptions, timers and metrics."""
PUBLISH: Final = "publish"
"""``publish:<bus>``: send events to a bus, cancel its scheduled events."""
SUBSCRIBE: Final = "subscribe"
"""``subscribe:<bus>``: read a bus's events, manage subscriptions on it."""

AUDIT_BUS: Final = "tideflow.audit"
"""The audit trail's bus: written by the server only, read with ``admin`` only."""
_SERVER_ONLY: Final = frozenset({f"{PUBLISH}:{AUDIT_BUS}"})
_ADMIN_ONLY: Final = frozenset({f"{SUBSCRIBE}:{AUDIT_BUS}"})

PLAIN_SCOPES: Final = (ADMIN, DEPLOY, RUN, READ)
BUS_SCOPES: Final = (PUBLISH, SUBSCRIBE)
_BUS_PATTERN: Final = re.compile(r"^[A-Za-z0-9._*-]{1,63}$")


def parse_scope(text: str) -> str:
    """Return ``text`` if it is a valid scope.

    Raises:
        InvalidArgument: It is neither a plain scope nor ``publish:``/``subscribe:``
            followed by a bus name pattern.
    """
    if text in PLAIN_SCOPES:
        return text
    kind, sep, pattern = text.partition(":")
    if text in _SERVER_ONLY | _ADMIN_ONLY:
        raise InvalidArgument(
            f"invalid scope {text!r}: the audit bus {AUDIT_BUS!r} is written by the server "
            "only and read with the admin scope only",
            argument="scopes",
        )
    if sep and kind in BUS_SCOPES and _BUS_PATTERN.fullmatch(pattern):
        return text
    raise InvalidArgument(
        f"invalid scope {text!r}: use admin, deploy, run, read, publish:<bus> or "
        "subscribe:<bus> (a bus name; '*' matches any run of characters)",
        argument="scopes",
    )


def parse_scopes(texts: Iterable[str]) -> tuple[str, ...]:
    """Valid, distinct scopes in their given order.

    Raises:
        InvalidArgument: One is invalid, or there are none.
    """
    scopes = tuple(dict.fromkeys(parse_scope(text) for text in texts))
    if not scopes:
        raise InvalidArgument("a token needs at least one scope", argument="scopes")
    return scopes


def bus_scope(kind: str, bus: str) -> str:
    """The scope that ``kind`` (publish or subscribe) on ``bus`` needs."""
    return f"{kind}:{bus}"


def server_only(needed: str) -> bool:
    """Whether ``needed`` is a scope no token has: publishing to the audit bus."""
    return needed in _SERVER_ONLY


def grants(granted: Sequence[str], needed: str) -> bool:
    """Whether scopes ``granted`` allow what needs scope ``needed``."""
    if needed in _SERVER_ONLY:
        return False
    if ADMIN in granted:
        return True
    if needed in _ADMIN_ONLY:
        return False
    if needed in granted:
        return True
    kind, sep, bus = needed.partition(":")
    if not sep:
        return False
    prefix = kind + ":"
    return any(
        scope.startswith(prefix) and _matcher(scope[len(prefix) :]).match(bus) is not None
        for scope in granted
    )


@lru_cache(maxsize=1024)
def _matcher(pattern: str) -> re.Pattern[str]:
    """A bus name pattern (``*`` for any run of characters) as an anchored regex."""
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in pattern) + r"\Z")
