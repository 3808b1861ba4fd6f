"""API tokens for in-process test servers."""

from __future__ import annotations

from pathlib import Path

from tideflow.auth.first_token import read_token_file
from tideflow.testing import InMemoryTokens


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header that carries ``token``."""
    return {"authorization": f"Bearer {token}"}


def admin_tokens() -> tuple[InMemoryTokens, str]:
    """In-memory tokens holding one admin token, and that token's text."""
    tokens = InMemoryTokens()
    return tokens, tokens.add("test admin")


def home_auth(home: Path) -> dict[str, str]:
    """The header with the first admin token a server saved in ``home``."""
    token = read_token_file(home)
    assert token is not None, f"no admin token saved in {home}"
    return bearer(token)
