"""Loops that need the database neither hang nor die while it is away.

The journal writer fails the writes queued while no connection can be had
(their runners stop; nothing waits forever) and keeps trying; the one LISTEN
implementation reconnects after its connection is killed and tells its users
that notifications may have been missed.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tideflow.api.testserver import free_port
from tideflow.errors import StoreError
from tideflow.notify import Listener
from tideflow.runtime.journal import JournalWriter
from tideflow.supervise import Supervisor


async def test_the_journal_writer_fails_queued_writes_while_the_database_is_away() -> None:
    # Nothing listens on this port: every connection attempt is refused.
    pool = await asyncpg.create_pool(f"postgresql://x@127.0.0.1:{free_port()}/x", min_size=0)
    writer = JournalWriter(pool, owner="me", lease_seconds=30)
    running = asyncio.create_task(writer.run())
    try:
        for attempt in range(3):  # each retry fails what was queued since the last
            with pytest.raises(StoreError, match="journal commit failed"):
                await asyncio.wait_for(writer.append("i-1", 1, "call", f"k{attempt}", {}), 10)
        assert not running.done()  # still trying
        writer.close()
        await asyncio.wait_for(running, 10)  # and it ends when closed, database or not
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await pool.close()


async def test_the_listener_reconnects_and_reports_it(pg_url: str, pool: asyncpg.Pool) -> None:
    health = Supervisor("svc")
    listener = Listener(pool, "test", health=health)
    heard: list[str] = []
    reconnects: list[int] = []
    drops: list[int] = []
    listener.listen("tideflow_test", heard.append)
    listener.on_reconnect(lambda: reconnects.append(1))
    listener.on_lost(lambda: drops.append(1))
    health.spawn("listen", listener.run)
    admin = await asyncpg.connect(pg_url)
    try:
        await asyncio.wait_for(listener.connected.wait(), 10)
        assert [(c.name, c.up) for c in health.health()] == [
            ("svc.listen", True),
            ("svc.listen:test", True),
        ]
        await admin.execute("SELECT pg_notify('tideflow_test', 'one')")
        await _until(lambda: heard == ["one"])
        pid = listener.backend_pid
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        await _until(lambda: drops == [1])
        await _until(lambda: len(reconnects) == 2)  # the first connect, then the reconnect
        assert listener.backend_pid not in (None, pid)
        await admin.execute("SELECT pg_notify('tideflow_test', 'two')")
        await _until(lambda: heard == ["one", "two"])
        assert all(c.up for c in health.health())
    finally:
        await admin.close()
        await health.stop()


async def _until(check: object) -> None:
    assert callable(check)
    async with asyncio.timeout(10):
        while not check():  # noqa: ASYNC110 - the state changes in callbacks
            await asyncio.sleep(0.01)
