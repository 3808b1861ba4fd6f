"""The only place that makes random identifiers."""

from __future__ import annotations

import os
import secrets
import time
import uuid


def new_id() -> str:
    """A new random UUID (version 4) as a string."""
    return str(uuid.uuid4())


def new_sortable_id() -> str:
    """A UUID version 7: random, but sorts by creation time (good for index locality)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def new_token_parts() -> tuple[str, str]:
    """A new API token's public id (12 hex digits) and its secret (256 random bits)."""
    return secrets.token_hex(6), secrets.token_urlsafe(32)
