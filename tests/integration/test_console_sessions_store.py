"""Console sessions on PostgreSQL: shared by two gateways (two processes), expiring, purged at
the next login, bounded, and stored so that the rows alone sign no one in."""

from __future__ import annotations

from typing import Any

from tideflow.console.gateway import PostgresSessions
from tideflow.testing import ManualClock

TOKEN = "tf_0123456789ab_s3cr3t-text-of-the-token"


async def test_a_session_opened_by_one_gateway_is_known_to_another(pool: Any) -> None:
    clock = ManualClock()
    one, other = PostgresSessions(pool, clock), PostgresSessions(pool, clock)
    session = await one.open(TOKEN)
    assert await other.get(session.id) == session
    assert (await other.get(session.id)).token == TOKEN  # type: ignore[union-attr]
    assert await other.get(session.id + "x") is None
    assert await other.get(None) is None
    await other.close(session.id)
    assert await one.get(session.id) is None


async def test_rows_hold_neither_the_session_id_nor_the_token(pool: Any) -> None:
    session = await PostgresSessions(pool, ManualClock()).open(TOKEN)
    stored = await pool.fetchval(
        "SELECT row_to_json(s)::text || encode(sealed, 'escape') FROM tideflow_console_sessions s"
    )
    assert session.id not in stored
    assert "s3cr3t" not in stored
    assert session.csrf in stored  # kept as is: without the cookie it is worth nothing


async def test_expired_sessions_are_refused_and_purged_by_the_next_login(pool: Any) -> None:
    clock = ManualClock()
    sessions = PostgresSessions(pool, clock, ttl=60)
    old = await sessions.open(TOKEN)
    clock.advance(61)
    assert await sessions.get(old.id) is None
    assert await pool.fetchval("SELECT count(*) FROM tideflow_console_sessions") == 1
    new = await sessions.open(TOKEN)
    assert await pool.fetchval("SELECT count(*) FROM tideflow_console_sessions") == 1
    assert await sessions.get(new.id) == new


async def test_a_login_beyond_the_bound_drops_the_oldest(pool: Any) -> None:
    clock = ManualClock()
    sessions = PostgresSessions(pool, clock, most=3)
    opened = []
    for i in range(5):
        opened.append(await sessions.open(f"t{i}"))
        clock.advance(1)
    assert await pool.fetchval("SELECT count(*) FROM tideflow_console_sessions") == 3
    assert await sessions.get(opened[1].id) is None
    assert [s.token for s in [await sessions.get(o.id) for o in opened[2:]] if s] == [
        "t2",
        "t3",
        "t4",
    ]
