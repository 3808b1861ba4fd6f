"""API tokens on PostgreSQL: stored as digests, listed, revoked; one first token per database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from tideflow.auth.first_token import ensure_first_token, read_token_file
from tideflow.auth.gateway import PostgresTokens
from tideflow.auth.tokens import issue
from tideflow.auth.verifier import TokenVerifier
from tideflow.errors import AlreadyExists, AuthenticationRequired, TokenNotFound

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def test_tokens_are_stored_as_digests_and_revoked(pool: Any) -> None:
    tokens = PostgresTokens(pool)
    issued = issue("ci", ["deploy", "publish:*"], NOW)
    await tokens.create(issued.record)
    with pytest.raises(AlreadyExists):
        await tokens.create(issued.record)
    assert await tokens.find(issued.record.id) == issued.record
    stored = await pool.fetchval("SELECT row_to_json(t)::text FROM tideflow_tokens t")
    assert issued.text not in stored
    assert issued.text[len("tf_0123456789ab_") :] not in stored  # the secret
    assert [r.id for r in await tokens.list()] == [issued.record.id]
    verifier = TokenVerifier(tokens)
    assert (await verifier.verify(issued.text)).scopes == ("deploy", "publish:*")
    revoked = await tokens.revoke(issued.record.id, NOW)
    assert revoked.revoked_at == NOW
    verifier.forget(issued.record.id)
    with pytest.raises(AuthenticationRequired):
        await verifier.verify(issued.text)
    with pytest.raises(TokenNotFound):
        await tokens.revoke("0123456789ab", NOW)


async def test_servers_starting_at_once_make_one_first_token(pool: Any, tmp_path: Any) -> None:
    tokens = PostgresTokens(pool)
    homes = [tmp_path / f"home{n}" for n in range(4)]
    made = await asyncio.gather(*(ensure_first_token(tokens, home) for home in homes))
    texts = [text for text in made if text is not None]
    assert len(texts) == 1
    assert [read_token_file(home) for home in homes].count(texts[0]) == 1
    assert [r.scopes for r in await tokens.list()] == [("admin",)]
