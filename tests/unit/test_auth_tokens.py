"""API tokens, scopes and the verifier's cache (pure, with in-memory tokens and a manual clock)."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

import tideflow.auth
from tideflow.auth.first_token import ensure_first_token, read_token_file, token_file
from tideflow.auth.scopes import grants, parse_scope, parse_scopes
from tideflow.auth.tokens import digest, issue, token_id_of
from tideflow.auth.verifier import TokenVerifier
from tideflow.errors import AuthenticationRequired, InvalidArgument, TokenNotFound
from tideflow.testing import InMemoryTokens, ManualClock

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("granted", "needed", "allowed"),
    [
        (["admin"], "deploy", True),
        (["admin"], "publish:orders", True),
        (["read"], "read", True),
        (["read"], "run", False),
        (["run"], "read", False),
        (["deploy"], "admin", False),
        (["publish:orders"], "publish:orders", True),
        (["publish:orders"], "publish:orders2", False),
        (["publish:orders"], "subscribe:orders", False),
        (["publish:*"], "publish:anything", True),
        (["publish:*"], "subscribe:anything", False),
        (["subscribe:orders.*"], "subscribe:orders.eu", True),
        (["subscribe:orders.*"], "subscribe:ordersXeu", False),
        (["subscribe:*.eu"], "subscribe:orders.eu", True),
        (["publish:*"], "deploy", False),
        ([], "read", False),
        (["admin"], "subscribe:tideflow.audit", True),
        (["subscribe:*"], "subscribe:tideflow.audit", False),
        (["subscribe:tideflow.*"], "subscribe:tideflow.audit", False),
        (["subscribe:*"], "subscribe:tideflow.lifecycle", True),
        (["admin"], "publish:tideflow.audit", False),
        (["publish:*"], "publish:tideflow.audit", False),
    ],
)
def test_grants(granted: list[str], needed: str, allowed: bool) -> None:
    assert grants(granted, needed) is allowed


@pytest.mark.parametrize(
    "bad",
    [
        *("", "root", "publish", "publish:", "publish:a/b", "write:x", "read\n", "publish:x\n"),
        *("subscribe:tideflow.audit", "publish:tideflow.audit"),
    ],
)
def test_invalid_scopes_are_refused(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid scope"):
        parse_scope(bad)


def test_scopes_are_kept_in_order_without_repeats() -> None:
    assert parse_scopes(["run", "read", "run", "publish:*"]) == ("run", "read", "publish:*")
    with pytest.raises(InvalidArgument, match="at least one scope"):
        parse_scopes([])


def test_an_issued_token_is_stored_as_a_digest_only() -> None:
    issued = issue("ci", ["deploy", "run"], NOW)
    assert issued.text.startswith("tf_")
    assert token_id_of(issued.text) == issued.record.id
    assert issued.record.digest == digest(issued.text)
    assert issued.text not in repr(issued.record)
    assert "digest" not in issued.record.to_json()
    assert issued.record.to_json()["scopes"] == ["deploy", "run"]
    assert issue("ci", ["run"], NOW).text != issued.text


@pytest.mark.parametrize("name", ["", "x" * 101, "line\nbreak"])
def test_token_names_are_checked(name: str) -> None:
    with pytest.raises(InvalidArgument, match="token name"):
        issue(name, ["read"], NOW)


@pytest.mark.parametrize("text", ["", "tf_", "Bearer x", "tf_0123456789ab_short", "tf_" + "z" * 56])
def test_malformed_tokens_have_no_id(text: str) -> None:
    assert token_id_of(text) is None


async def test_the_verifier_accepts_a_stored_token_and_refuses_others_alike() -> None:
    tokens = InMemoryTokens()
    issued = issue("ci", ["read"], NOW)
    await tokens.create(issued.record)
    verifier = TokenVerifier(tokens, ManualClock())
    principal = await verifier.verify(issued.text)
    assert (principal.token_id, principal.name) == (issued.record.id, "ci")
    assert principal.scopes == ("read",)
    assert principal.allows("read")
    assert not principal.allows("run")
    wrong_secret = issued.text[:-4] + ("AAAA" if not issued.text.endswith("AAAA") else "BBBB")
    unknown = issue("other", ["read"], NOW).text
    messages = set()
    for text in (wrong_secret, unknown, "garbage"):
        with pytest.raises(AuthenticationRequired) as caught:
            await verifier.verify(text)
        messages.add(caught.value.message)
    assert len(messages) == 1  # never tells whether an id exists


async def test_a_revocation_holds_at_once_here_and_within_the_ttl_elsewhere() -> None:
    tokens = InMemoryTokens()
    issued = issue("ci", ["run"], NOW)
    await tokens.create(issued.record)
    clock = ManualClock()
    here, elsewhere = TokenVerifier(tokens, clock, ttl=5), TokenVerifier(tokens, clock, ttl=5)
    await here.verify(issued.text)
    await elsewhere.verify(issued.text)
    await tokens.revoke(issued.record.id, NOW)
    here.forget(issued.record.id)
    with pytest.raises(AuthenticationRequired):
        await here.verify(issued.text)
    assert (await elsewhere.verify(issued.text)).token_id == issued.record.id  # cached
    clock.advance(5.1)
    with pytest.raises(AuthenticationRequired):
        await elsewhere.verify(issued.text)


async def test_revoking_unknown_tokens_fails_and_a_second_revocation_keeps_the_first_time() -> None:
    tokens = InMemoryTokens()
    issued = issue("ci", ["run"], NOW)
    await tokens.create(issued.record)
    first = await tokens.revoke(issued.record.id, NOW)
    again = await tokens.revoke(issued.record.id, datetime(2027, 1, 1, tzinfo=UTC))
    assert first.revoked_at == again.revoked_at == NOW
    with pytest.raises(TokenNotFound):
        await tokens.revoke("000000000000", NOW)


async def test_the_first_token_is_made_once_and_saved_for_its_owner_only(tmp_path: Path) -> None:
    tokens = InMemoryTokens()
    text = await ensure_first_token(tokens, tmp_path / "home")
    assert text is not None
    assert read_token_file(tmp_path / "home") == text
    assert stat.S_IMODE(token_file(tmp_path / "home").stat().st_mode) == 0o600
    assert (await TokenVerifier(tokens).verify(text)).scopes == ("admin",)
    assert await ensure_first_token(tokens, tmp_path / "home") is None
    assert await ensure_first_token(tokens, tmp_path / "other") is None
    assert read_token_file(tmp_path / "other") is None
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["admin-token"]


def test_exports() -> None:
    for name in tideflow.auth.__all__:
        assert getattr(tideflow.auth, name) is not None


async def test_clearing_the_cache_looks_every_token_up_again() -> None:
    tokens = InMemoryTokens()
    issued = issue("ci", ["run"], NOW)
    await tokens.create(issued.record)
    verifier = TokenVerifier(tokens, ManualClock(), ttl=3600)
    await verifier.verify(issued.text)
    await tokens.revoke(issued.record.id, NOW)
    assert (await verifier.verify(issued.text)).name == "ci"  # cached
    verifier.clear()  # a reconnected listener may have missed the notification
    with pytest.raises(AuthenticationRequired):
        await verifier.verify(issued.text)
