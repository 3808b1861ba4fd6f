"""The console's sessions: expiry on the clock, a bound on their number, CSRF checks."""

from __future__ import annotations

from tideflow.console.session import Sessions
from tideflow.testing import ManualClock


def test_a_session_expires_and_logout_ends_it() -> None:
    clock = ManualClock()
    sessions = Sessions(clock, ttl=60)
    one = sessions.open("tf_a_b")
    assert sessions.get(one.id) == one
    assert one.token == "tf_a_b"
    assert one.csrf != one.id
    clock.advance(61)
    assert sessions.get(one.id) is None
    two = sessions.open("tf_a_b")
    sessions.close(two.id)
    assert sessions.get(two.id) is None
    assert sessions.get(None) is None
    assert sessions.get("made-up") is None


def test_csrf_needs_the_sessions_own_token() -> None:
    session = Sessions(ManualClock()).open("")
    assert session.csrf_ok(session.csrf)
    assert not session.csrf_ok(None)
    assert not session.csrf_ok("")
    assert not session.csrf_ok(session.csrf + "x")


def test_the_oldest_sessions_go_first_beyond_the_bound() -> None:
    sessions = Sessions(ManualClock(), most=3)
    opened = [sessions.open(f"t{i}") for i in range(5)]
    assert len(sessions) == 3
    assert sessions.get(opened[0].id) is None
    assert sessions.get(opened[4].id) == opened[4]
    sessions.drop_token("t4")
    assert sessions.get(opened[4].id) is None
