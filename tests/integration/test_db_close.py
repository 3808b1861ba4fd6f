"""Closing the pool never hangs the process on a connection left acquired."""

from __future__ import annotations

import asyncpg

from tideflow.db import close_pool, create_pool


async def test_close_pool_terminates_a_connection_still_held(pg_url: str) -> None:
    pool = await create_pool(pg_url, max_size=2)
    leaked = await pool.acquire()  # a service that failed half-way through start-up
    leaked_pid = leaked.get_server_pid()
    await close_pool(pool, grace_seconds=0.2)  # returns instead of waiting for the release
    assert pool.is_closing()
    observer = await asyncpg.connect(pg_url)
    try:
        for _ in range(50):  # the server notices the closed socket within moments
            alive = await observer.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", leaked_pid
            )
            if alive == 0:
                break
            await observer.execute("SELECT pg_sleep(0.05)")
        assert alive == 0
    finally:
        await observer.close()


async def test_close_pool_closes_an_idle_pool_gracefully(pg_url: str) -> None:
    pool = await create_pool(pg_url, max_size=2)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT 1") == 1
    await close_pool(pool, grace_seconds=5)
    assert pool.is_closing()
    assert isinstance(pool, asyncpg.Pool)
