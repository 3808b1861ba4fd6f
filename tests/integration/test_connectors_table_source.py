"""The PostgreSQL table source on a real database, without a server: batches in cursor
order, the position handed over with each batch, a scheduled read that drains and
returns (its connection closed), and a resume from a stored position."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from tideflow.clock import SYSTEM_CLOCK
from tideflow.connectors.base import SourceContext
from tideflow.connectors.mapping import Record
from tideflow.connectors.postgres import TableSource


def _context(url: str, position: Mapping[str, Any] | None, events: list[bool]) -> SourceContext:
    return SourceContext(
        name="rows",
        config={"url": url, "table": "public.readings", "cursor": "seq", "batch": 2},
        position=position,
        clock=SYSTEM_CLOCK,
        scheduled=True,
        on_connection=events.append,
    )


async def _connections(conn: asyncpg.Connection) -> int:
    value: int = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    )
    return value


async def test_scheduled_reads_drain_in_order_and_resume_from_the_position(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("CREATE TABLE readings (seq bigint PRIMARY KEY, celsius numeric)")
        await conn.executemany("INSERT INTO readings VALUES ($1, $2)", [(3, 1.5), (1, 2), (2, 3)])
        batches: list[tuple[list[str | None], Mapping[str, Any] | None]] = []

        async def emit(records: Sequence[Record], position: Mapping[str, Any] | None) -> None:
            batches.append(([r.id for r in records], position))

        connected: list[bool] = []
        before = await _connections(conn)
        await TableSource(_context(pg_url, None, connected)).run(emit)  # returns: drained
        assert batches == [
            (["public.readings:1", "public.readings:2"], {"cursor": 2, "type": "integer"}),
            (["public.readings:3"], {"cursor": 3, "type": "integer"}),
        ]
        assert connected == [True]
        assert await _connections(conn) == before  # its connection is closed between reads

        await conn.execute("INSERT INTO readings VALUES (4, 9)")
        batches.clear()
        await TableSource(_context(pg_url, {"cursor": 3, "type": "integer"}, [])).run(emit)
        assert batches == [(["public.readings:4"], {"cursor": 4, "type": "integer"})]
    finally:
        await conn.close()
