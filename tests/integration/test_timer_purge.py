"""Timer hygiene: fired and cancelled timers leave tideflow_timers after their retention,
in batches; pending ones stay (real PostgreSQL, an injected clock, no sleeping)."""

from __future__ import annotations

import asyncpg

from tideflow.clock import SYSTEM_CLOCK
from tideflow.db import load_queries
from tideflow.testing import ManualClock
from tideflow.timer.records import TimerRecord, TimerState
from tideflow.timer.service import TimerService

HOUR = 3600.0


async def _noop(timers: list[TimerRecord], conn: asyncpg.Connection) -> None:
    return None


def _service(pool: asyncpg.Pool, clock: ManualClock, **options: float) -> TimerService:
    service = TimerService(pool, clock=clock, retention=HOUR, **options)  # type: ignore[arg-type]
    service.register("test", _noop)
    return service


async def _states(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch("SELECT state, count(*) AS n FROM tideflow_timers GROUP BY state")
    return {r["state"]: r["n"] for r in rows}


async def test_fired_and_cancelled_timers_are_deleted_after_the_retention_in_batches(
    pool: asyncpg.Pool,
) -> None:
    # touched_at is the database's time: the injected clock starts at the real time
    clock = ManualClock(SYSTEM_CLOCK.now())
    service = _service(pool, clock, purge_batch=4, purge_batches=2)
    for n in range(10):
        await service.add_after("test", 1, {"n": n}, idempotency_key=f"fired-{n}")
    for n in range(3):
        await service.cancel((await service.add_after("test", 60, timer_id=f"c{n}")).id)
    await service.add_after("test", 2 * HOUR, timer_id="later")
    clock.advance(1)
    assert len(await service.run_once()) == 10
    assert await _states(pool) == {"fired": 10, "cancelled": 3, "pending": 1}

    assert await service.purge() == 0  # all ended just now: kept for the retention
    again = await service.add_after("test", 1, idempotency_key="fired-0")
    assert again.state is TimerState.FIRED  # a repeated key still finds its timer

    clock.advance(HOUR + 5)
    assert await service.purge() == 8  # two batches of four, the rest left for the next pass
    assert await service.purge() == 5
    assert await service.purge() == 0
    assert await _states(pool) == {"pending": 1}  # the pending timer is never touched
    clock.advance(HOUR)
    assert len(await service.run_once()) == 1  # ... and still fires when due


async def test_a_re_armed_wake_up_timer_is_pending_again_and_not_deleted(
    pool: asyncpg.Pool,
) -> None:
    clock = ManualClock(SYSTEM_CLOCK.now())
    service = _service(pool, clock)
    await service.add_after("test", 1, timer_id="w", idempotency_key="i/1/step")
    clock.advance(1)
    assert len(await service.run_once()) == 1
    # the runtime re-arms a fired wake-up timer with its key (a re-park on the same step)
    await pool.execute(
        "UPDATE tideflow_timers SET state = 'pending', fired_at = NULL, touched_at = now() "
        "WHERE idempotency_key = 'i/1/step'"
    )
    clock.advance(2 * HOUR)
    assert await service.purge() == 0
    assert await _states(pool) == {"pending": 1}


async def test_the_purge_finds_its_rows_through_an_index(pool: asyncpg.Pool) -> None:
    purge = load_queries("tideflow.timer")["purge_ended"]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")  # an empty table: force the choice
        plan = "\n".join(
            r[0] for r in await conn.fetch(f"EXPLAIN {purge}", SYSTEM_CLOCK.now(), 100)
        )
    assert "tideflow_timers_ended" in plan


async def test_the_table_stays_small_however_many_timers_fired(pool: asyncpg.Pool) -> None:
    """The CI-sized variant of bench/timer.py's ``table`` part: 2,000 timers fired in
    chunks, the purge (retention 0) and a vacuum (what autovacuum does) after each."""
    service = TimerService(pool, retention=0.0, purge_batch=200)
    service.register("test", _noop)
    sizes = []
    for _ in range(4):
        now = SYSTEM_CLOCK.now()
        await service.add_many("test", [(now, None, None)] * 500)
        assert len(await service.fire_due()) == 500
        assert await service.purge() == 500
        await pool.execute("VACUUM tideflow_timers")
        sizes.append(await pool.fetchval("SELECT pg_relation_size('tideflow_timers')"))
    assert await _states(pool) == {}
    assert sizes[-1] <= sizes[0]  # space freed by each purge is used again, not added to
