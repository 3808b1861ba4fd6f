"""An event that kills the process of its consumer is dead-lettered after
``TIDEFLOW_QUARANTINE_AFTER`` crashes (3 here), counted in the database across restarts.

A real process (``tests/support/poison_consumer.py``) runs an internal subscription whose
consumer SIGKILLs its process on one event. Started again and again, as a supervisor would,
it is killed three times; the fourth start dead-letters the event without handing it over
and consumes the events after it. The counts in memory died with each process: without the
durable count, every start would be killed again.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.connectors import eventually
from tideflow.db import create_pool
from tideflow.eventstore.gateway import PostgresEventStore

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[2]


def event(n: int, kind: str = "test.good") -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"e{n}", "source": "/t", "type": kind, "data": n}


def start(pg_url: str, out: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "tests.support.poison_consumer", pg_url, "work", str(out)]
    return subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE)


def consumed(out: Path) -> list[str]:
    return out.read_text().split() if out.exists() else []


async def test_an_event_that_kills_the_process_is_dead_lettered_after_three_crashes(
    pg_url: str, tmp_path: Path
) -> None:
    pool = await create_pool(pg_url, min_size=1, max_size=2)
    try:
        async with PostgresEventStore(pool) as store:
            await store.create_bus("work")
            await store.append("work", [event(1), event(2, "test.poison"), event(3)])
    finally:
        await pool.close()
    out = tmp_path / "consumed.txt"
    for crash in range(3):
        process = start(pg_url, out)
        _, stderr = await asyncio.to_thread(process.communicate, timeout=120)
        assert process.returncode == -signal.SIGKILL, (crash, stderr.decode()[-2000:])
    # e1 is consumed again on each start (its batch with e2 never finished), e3 never reached
    assert set(consumed(out)) <= {"e1"}
    process = start(pg_url, out)
    try:

        async def e3_consumed_or_exited() -> bool:
            return "e3" in consumed(out) or process.poll() is not None

        await eventually(e3_consumed_or_exited, timeout=120)
        assert process.poll() is None, process.communicate()[1].decode()[-2000:]
    finally:
        process.terminate()
        await asyncio.to_thread(process.communicate, timeout=60)
    assert "e2" not in consumed(out)
    assert consumed(out).count("e3") == 1
    pool = await create_pool(pg_url, min_size=1, max_size=2)
    try:
        async with PostgresEventStore(pool) as store:
            letters = [s.event for s in await store.read("work.deadletter")]
        async with pool.acquire() as conn:
            left = await conn.fetchval("SELECT count(*) FROM tideflow_consumer_attempts")
    finally:
        await pool.close()
    assert [letter["id"] for letter in letters] == ["test.poison:e2"]
    assert "died 3 times" in str(letters[0])
    assert left == 0
