"""An event for a Temporal instance's wait is neither lost nor taken twice when its
delivery fails between the signal and the commit.

``SignalDelivery`` drops the wait's row and signals the instance in one
transaction, the signal first: a crash before the signal leaves the wait open
(the batch comes again and signals then; before, the drop had committed and the
event was gone), a crash after it leaves the wait open too and the event is
signalled twice -- the instance drops the repeat by source and id, so its next
wait for the same type does not take it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.temporal import DevServer, deployed
from tideflow.runtime.hosts.temporal.runtime import TemporalRuntime
from tideflow.runtime.waits import SignalDelivery


def _wait(name: str, field: str, nxt: str | None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "name": name,
        "type": "event",
        "onEvents": [{"eventRefs": ["go"], "eventDataFilter": {"toStateData": f"${{ .{field} }}"}}],
    }
    if nxt is None:
        state["end"] = True
    else:
        state["transition"] = nxt
    return state


THREE_WAITS = {
    "id": "three-waits",
    "version": "1",
    "specVersion": "0.8",
    "start": "A",
    "events": [{"name": "go", "type": "go", "source": "test"}],
    "states": [_wait("A", "a", "B"), _wait("B", "b", "C"), _wait("C", "c", None)],
}


class Crash(Exception):
    """The process dies here (the delivery's transaction is rolled back)."""


class CrashingSignals:
    """The runtime's signals, with one crash before or after the next signal."""

    def __init__(self, runtime: TemporalRuntime) -> None:
        self.runtime = runtime
        self.crash: str | None = None  # "before" or "after" the signal, once

    async def signal_events(self, instance_id: str, events: list[dict[str, Any]]) -> None:
        crash, self.crash = self.crash, None
        if crash == "before":
            raise Crash
        await self.runtime.signal_events(instance_id, events)
        if crash == "after":
            raise Crash


@pytest.fixture
async def runtime(
    pool: Any, temporal_server: DevServer, tmp_path: Path
) -> AsyncIterator[TemporalRuntime]:
    async with (
        deployed(pool, temporal_server, tmp_path, THREE_WAITS, "signal-once") as made,
        await made.runtime(pool) as started,
    ):
        yield started


async def _open_wait(pool: Any, instance_id: str, other_than: set[str]) -> str:
    """The key of the instance's open wait, once it is a new one."""
    async with asyncio.timeout(30):
        while True:
            async with pool.acquire() as conn:
                keys = {
                    str(r["wait_key"])
                    for r in await conn.fetch(
                        "SELECT wait_key FROM tideflow_event_waits WHERE instance_id = $1",
                        instance_id,
                    )
                }
            if keys - other_than:
                return (keys - other_than).pop()
            await asyncio.sleep(0.02)


def _go(event_id: str, n: int) -> dict[str, Any]:
    return {"specversion": "1.0", "id": event_id, "source": "test", "type": "go", "data": n}


async def test_a_delivery_crashing_around_its_signal_is_made_again_and_taken_once(
    pool: Any, runtime: TemporalRuntime
) -> None:
    signals = CrashingSignals(runtime)
    delivery = SignalDelivery(pool, signals)
    row = await runtime.start_instance("three-waits", {})
    seen: set[str] = set()

    # A crash before the signal: nothing of the delivery stays, it is made again.
    first = await _open_wait(pool, row.id, seen)
    signals.crash = "before"
    with pytest.raises(Crash):
        await delivery.deliver_events(row.id, first, [_go("e1", 1)])
    assert await delivery.deliver_events(row.id, first, [_go("e1", 1)])  # still open
    seen.add(first)

    # A crash after the signal: the wait stays open, the event is signalled again.
    second = await _open_wait(pool, row.id, seen)
    signals.crash = "after"
    with pytest.raises(Crash):
        await delivery.deliver_events(row.id, second, [_go("e2", 2)])
    assert await delivery.deliver_events(row.id, second, [_go("e2", 2)])
    seen.add(second)

    # The repeated e2 is not taken by the next wait: it waits for e3.
    third = await _open_wait(pool, row.id, seen)
    assert await delivery.deliver_events(row.id, third, [_go("e3", 3)])
    async with asyncio.timeout(30):
        done = await runtime.wait_for_completion(row.id, None)
    assert (done.status, done.output) == ("completed", {"a": 1, "b": 2, "c": 3})
