"""Archive every due segment of a database, saying what it does on stdout (the SIGKILL test).

    python -m tests.support.archive_worker DATABASE_URL

Prints ``write`` before each segment file is written and ``written`` once it is verified (its
partition is dropped right after), so the test can kill it at a random step.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from tideflow.db import create_pool
from tideflow.eventstore.archive import ArchiveFiles, WrittenSegment
from tideflow.eventstore.archive_format import LogRow
from tideflow.eventstore.gateway import PostgresEventStore


class LoudFiles(ArchiveFiles):
    async def write(
        self, location: str, rows: Sequence[LogRow], metadata: dict[str, str]
    ) -> WrittenSegment:
        print("write", flush=True)
        written = await super().write(location, rows, metadata)
        print("written", flush=True)
        return written


async def main(url: str) -> None:
    pool = await create_pool(url, min_size=1, max_size=4)
    try:
        store = PostgresEventStore(
            pool, retention_interval=None, archive_interval=None, archive_files=LoudFiles()
        )
        while await store.archive_once():
            pass
        print("done", flush=True)
    finally:
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
