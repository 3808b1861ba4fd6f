"""The pool's reset: asyncpg's reset query (a round trip on every release) runs only for
connections marked with session state (:func:`tideflow.db.keeps_session_state`)."""

from __future__ import annotations

from tideflow.db import create_pool, keeps_session_state

ADVISORY = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"


async def test_a_marked_connection_is_reset_when_given_back_and_another_is_not(
    pg_url: str,
) -> None:
    pool = await create_pool(pg_url, min_size=1, max_size=1)  # the same connection each time
    try:
        async with pool.acquire() as conn:
            keeps_session_state(conn)
            await conn.execute("LISTEN tideflow_test_marked")
            await conn.execute("SELECT pg_advisory_lock(4242)")
            pid = conn.get_server_pid()
        async with pool.acquire() as conn:
            assert conn.get_server_pid() == pid
            assert await conn.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0
            assert await conn.fetchval(ADVISORY) == 0
            await conn.execute("SET application_name = 'left unmarked'")
        async with pool.acquire() as conn:  # not marked: given back without the reset query
            assert conn.get_server_pid() == pid
            assert await conn.fetchval("SHOW application_name") == "left unmarked"
    finally:
        await pool.close()
