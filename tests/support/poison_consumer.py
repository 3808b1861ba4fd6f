"""A process whose in-process consumer is killed by one event (the poisoned-event test).

``python -m tests.support.poison_consumer DSN BUS OUT``: a dispatcher on ``DSN`` runs the
internal subscription ``test.poison`` on ``BUS``; its consumer appends each event's id to
the file ``OUT`` and, on an event of type ``test.poison``, SIGKILLs its own process --
what a crash in native code or the kernel's OOM killer would do. Test code only: the
product has no such switch.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from tideflow.db import create_pool
from tideflow.eventstore.gateway import PostgresEventStore
from tideflow.triggers.dispatcher import Dispatcher
from tideflow.triggers.gateway import PostgresSubscriptions

SUBSCRIPTION = "test.poison"


async def main(dsn: str, bus: str, out: str) -> None:
    pool = await create_pool(dsn, min_size=1, max_size=4)
    async with PostgresEventStore(pool) as store:
        subscriptions = PostgresSubscriptions(pool)
        async with Dispatcher(store, subscriptions, quarantine_after=3) as dispatcher:

            async def consume(batch: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
                for _, event in batch:
                    if event["type"] == "test.poison":
                        os.kill(os.getpid(), signal.SIGKILL)
                with open(out, "a") as file:  # noqa: ASYNC230 - a test's few lines
                    file.writelines(f"{event['id']}\n" for _, event in batch)

            await dispatcher.attach(SUBSCRIPTION, bus, consume, start="earliest")
            await asyncio.Event().wait()  # until the test stops or the event kills it


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
