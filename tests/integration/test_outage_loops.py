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

from tests.integration.durable_support import Calls, call_state, deploy, runtime, workflow
from tideflow.api.testserver import free_port
from tideflow.errors import StoreError
from tideflow.notify import Listener
from tideflow.runtime import gateway
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


async def test_a_channel_added_while_the_listener_connects_is_heard_and_kills_no_task(
    pg_url: str, pool: asyncpg.Pool
) -> None:
    health = Supervisor("svc")
    listener = Listener(pool, "test", health=health)
    heard: list[str] = []
    listener.listen("tideflow_test", heard.append)
    admin = await asyncpg.connect(pg_url)
    health.spawn("listen", listener.run)
    try:
        # It holds its connection and LISTENs channel after channel (a service starting
        # while another one's listener connects): a channel added now.
        async with asyncio.timeout(10):
            while listener.backend_pid is None:  # noqa: ASYNC110 - set between two awaits
                await asyncio.sleep(0)
        assert not listener.connected.is_set()
        listener.listen("tideflow_later", heard.append)
        async with asyncio.timeout(10):
            while "later" not in heard:  # LISTENed from its next connect on
                await admin.execute("SELECT pg_notify('tideflow_later', 'later')")
                await asyncio.sleep(0.05)
        # the task went on: it did not die of the channels changing under its loop
        assert [(c.name, c.up, c.restarts) for c in health.health()] == [
            ("svc.listen", True, 0),
            ("svc.listen:test", True, 0),
        ]
    finally:
        await admin.close()
        await health.stop()


async def test_an_instance_stopped_by_a_failed_commit_is_replayed_without_its_lease_running_out(
    pg_url: str, pool: asyncpg.Pool
) -> None:
    calls = Calls()
    calls.gate = asyncio.Event()
    await deploy(
        pool, workflow("handback", [call_state("S", "slow", "T"), call_state("T", "inc", None)])
    )
    # A lease of ten minutes: only a hand-back lets the instance run again within the test.
    async with runtime(pool, calls, lease_seconds=600) as rt:
        row = await rt.start_instance("handback", {"n": 0})
        await _until(lambda: sum(calls.by_key.values()) == 1)  # inside the slow call
        admin = await asyncpg.connect(pg_url)
        try:
            locking = admin.transaction()
            await locking.start()
            await admin.execute("SELECT 1 FROM tideflow_instances WHERE id = $1 FOR UPDATE", row.id)
            calls.gate.set()  # the call returns; the commit of its result waits for the row
            pid = await _blocked_backend(admin)
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            await locking.rollback()
        finally:
            await admin.close()
        done = await rt.wait_for_completion(row.id, 30)
    assert (done.status, done.output) == ("completed", {"n": 2})
    # the slow call's commit failed: it was made again on replay (same key); inc once
    assert sorted(calls.by_key.values()) == [1, 2]


async def _blocked_backend(admin: asyncpg.Connection) -> int:
    async with asyncio.timeout(10):
        while True:
            pid = await admin.fetchval(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if pid is not None:
                return int(pid)
            await asyncio.sleep(0.01)


async def _until(check: object) -> None:
    assert callable(check)
    async with asyncio.timeout(10):
        while not check():  # noqa: ASYNC110 - the state changes in callbacks
            await asyncio.sleep(0.01)


async def test_a_group_commit_that_loses_a_deadlock_is_written_again(
    pg_url: str, pool: asyncpg.Pool
) -> None:
    # PostgreSQL's own deadlock error, raised once by the first journal insert: the whole
    # batch was rolled back, so the writer writes it again instead of failing it (which
    # would stop the runner and make its call again on replay)
    await pool.execute(
        """
        CREATE SEQUENCE test_deadlocks;
        CREATE FUNCTION test_deadlock_once() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF nextval('test_deadlocks') = 1 THEN
                RAISE EXCEPTION 'deadlock detected (test)' USING ERRCODE = 'deadlock_detected';
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER test_deadlock_once BEFORE INSERT ON tideflow_journal
            FOR EACH STATEMENT EXECUTE FUNCTION test_deadlock_once();
        """
    )
    calls = Calls()
    try:
        await deploy(
            pool, workflow("conflict", [call_state("S", "inc", "T"), call_state("T", "inc", None)])
        )
        async with runtime(pool, calls, lease_seconds=600) as rt:
            row = await rt.start_instance("conflict", {"n": 0})
            done = await rt.wait_for_completion(row.id, 30)
    finally:
        await pool.execute(
            "DROP TRIGGER test_deadlock_once ON tideflow_journal;"
            " DROP FUNCTION test_deadlock_once(); "
        )
    assert (done.status, done.output) == ("completed", {"n": 2})
    assert await pool.fetchval("SELECT last_value FROM test_deadlocks") >= 2  # it did fail once
    assert sorted(calls.by_key.values()) == [1, 1]  # and no call was made twice


async def test_renewing_leases_never_waits_for_a_row_lock(pg_url: str, pool: asyncpg.Pool) -> None:
    # A renewal waiting for rows that this process's own group commit locks in another order
    # could deadlock with it; it skips locked rows (the commit renews them) and still says
    # they are held
    await deploy(pool, workflow("leased", [call_state("S", "inc", None)]))
    ids = ["i-locked", "i-free"]
    for instance_id in ids:
        await pool.execute(
            "INSERT INTO tideflow_instances (id, workflow_id, version, input, lease_owner,"
            " lease_until) VALUES ($1, 'leased', '1', '{}', 'me', now())",
            instance_id,
        )
    admin = await asyncpg.connect(pg_url)
    try:
        locking = admin.transaction()
        await locking.start()
        await admin.execute("SELECT 1 FROM tideflow_instances WHERE id = 'i-locked' FOR UPDATE")
        async with pool.acquire() as conn:
            held = await asyncio.wait_for(gateway.renew_leases(conn, "me", ids, 60), 5)
        await locking.rollback()
    finally:
        await admin.close()
    assert held == set(ids)
    renewed = await pool.fetch(
        "SELECT id FROM tideflow_instances WHERE lease_until > now() + interval '30 seconds'"
    )
    assert [r["id"] for r in renewed] == ["i-free"]
