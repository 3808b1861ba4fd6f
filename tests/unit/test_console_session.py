"""The console's sessions: expiry on the clock, a bound on their number, CSRF checks, and
what a stored session keeps (a digest of its id, its token sealed under that id)."""

from __future__ import annotations

from tideflow.console.session import MemorySessions, digest, new_session, seal, unseal
from tideflow.testing import ManualClock


async def test_a_session_expires_and_logout_ends_it() -> None:
    clock = ManualClock()
    sessions = MemorySessions(clock, ttl=60)
    one = await sessions.open("tf_a_b")
    assert await sessions.get(one.id) == one
    assert one.token == "tf_a_b"
    assert one.csrf != one.id
    clock.advance(61)
    assert await sessions.get(one.id) is None
    two = await sessions.open("tf_a_b")
    await sessions.close(two.id)
    assert await sessions.get(two.id) is None
    assert await sessions.get(None) is None
    assert await sessions.get("made-up") is None


async def test_csrf_needs_the_sessions_own_token() -> None:
    session = await MemorySessions(ManualClock()).open("")
    assert session.csrf_ok(session.csrf)
    assert not session.csrf_ok(None)
    assert not session.csrf_ok("")
    assert not session.csrf_ok(session.csrf + "x")


async def test_the_oldest_sessions_go_first_beyond_the_bound() -> None:
    sessions = MemorySessions(ManualClock(), most=3)
    opened = [await sessions.open(f"t{i}") for i in range(5)]
    assert len(sessions) == 3
    assert await sessions.get(opened[0].id) is None
    assert await sessions.get(opened[4].id) == opened[4]


def test_a_sealed_token_opens_only_with_its_own_session_id() -> None:
    clock = ManualClock()
    one, two = new_session("x", clock.now()), new_session("x", clock.now())
    sealed = seal(one.id, "tf_0123456789ab_secret")
    assert b"secret" not in sealed
    assert unseal(one.id, sealed) == "tf_0123456789ab_secret"
    assert unseal(two.id, sealed) is None
    assert unseal(one.id, sealed[:-1] + bytes([sealed[-1] ^ 1])) is None  # tampered
    assert unseal(one.id, seal(one.id, "")) == ""


def test_the_stored_digest_is_not_the_id_and_differs_per_session() -> None:
    clock = ManualClock()
    one, two = new_session("", clock.now()), new_session("", clock.now())
    assert one.id != two.id
    assert one.id not in digest(one.id)
    assert digest(one.id) == digest(one.id) != digest(two.id)
    assert len(digest(one.id)) == 64
