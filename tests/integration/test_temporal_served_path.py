"""The event path of ``tideflow serve --engine temporal`` around Temporal: the waits a
batch answers are signalled together, in one transaction, and a waiter is answered at
the end's commit without waiting for its Temporal long poll to wind down.

- ``SignalDelivery.deliver_many`` drops the batch's waits in one statement and signals
  their instances all at once before that drop commits (before: one transaction, and one
  signal round trip after another, per wait). A signal not taken rolls the whole drop
  back: every wait of the batch is open again (before: the waits answered earlier in the
  batch had committed), and the next batch completes every instance.
- The drop's commit does not wait for the WAL flush (``synchronous_commit`` off for that
  transaction only): its events were signalled before it, and a drop PostgreSQL's crash loses
  is a wait open again, as after this process's crash (before: each delivery's commit was one
  more flush the next event's append queued behind).
- ``TemporalRuntime.wait_for_completion`` answers once the end is committed, while the
  wait for the workflow's result beside it (a Temporal long poll) is still on its way out
  (before: the answer waited for it).
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

ONE_WAIT = {
    "id": "one-wait",
    "version": "1",
    "specVersion": "0.8",
    "start": "A",
    "events": [{"name": "go", "type": "go", "source": "test"}],
    "states": [
        {
            "name": "A",
            "type": "event",
            "onEvents": [{"eventRefs": ["go"], "eventDataFilter": {"toStateData": "${ .a }"}}],
            "end": True,
        }
    ],
}


class Refused(Exception):
    """Temporal did not take a signal (the delivery rolls back)."""


class CountedSignals:
    """The runtime's signals, counting how many are in flight at once; a signal to
    ``refuse`` is not taken."""

    def __init__(self, runtime: TemporalRuntime) -> None:
        self.runtime = runtime
        self.refuse: str | None = None
        self.in_flight = 0
        self.most = 0

    async def signal_events(self, instance_id: str, events: list[dict[str, Any]]) -> None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0)  # the others of the batch are sent meanwhile
            if instance_id == self.refuse:
                raise Refused
            await self.runtime.signal_events(instance_id, events)
        finally:
            self.in_flight -= 1


class SeenSetting:
    """The runtime's signals, noting the delivery transaction's ``synchronous_commit`` (on the
    connection the delivery was given) as each signal is sent."""

    def __init__(self, runtime: TemporalRuntime, conn: Any) -> None:
        self.runtime = runtime
        self.conn = conn
        self.seen: list[str] = []

    async def signal_events(self, instance_id: str, events: list[dict[str, Any]]) -> None:
        self.seen.append(await self.conn.fetchval("SELECT current_setting('synchronous_commit')"))
        await self.runtime.signal_events(instance_id, events)


class SlowToCancel(TemporalRuntime):
    """A runtime whose wait for a workflow's result ends only when the test lets it."""

    let_go: asyncio.Event

    async def _result(self, instance_id: str) -> None:
        try:
            await super()._result(instance_id)
            await self.let_go.wait()
        except asyncio.CancelledError:
            await self.let_go.wait()  # a long way out
            raise


@pytest.fixture
async def runtime(
    pool: Any, temporal_server: DevServer, tmp_path: Path
) -> AsyncIterator[SlowToCancel]:
    async with deployed(pool, temporal_server, tmp_path, ONE_WAIT, "served-path") as made:
        started: SlowToCancel = await made.runtime(pool, SlowToCancel)
        started.let_go = asyncio.Event()
        async with started:
            try:
                yield started
            finally:
                started.let_go.set()


async def _wait_key(pool: Any, instance_id: str) -> str:
    """The key of the instance's open wait, once it is open."""
    async with asyncio.timeout(30):
        while True:
            async with pool.acquire() as conn:
                key = await conn.fetchval(
                    "SELECT wait_key FROM tideflow_event_waits WHERE instance_id = $1", instance_id
                )
            if key is not None:
                return str(key)
            await asyncio.sleep(0.02)


async def _open(pool: Any, instance_ids: list[str]) -> int:
    async with pool.acquire() as conn:
        found: int = await conn.fetchval(
            "SELECT count(*) FROM tideflow_event_waits WHERE instance_id = ANY($1)", instance_ids
        )
    return found


def _go(event_id: str, n: int, type: str = "go") -> dict[str, Any]:
    return {"specversion": "1.0", "id": event_id, "source": "test", "type": type, "data": n}


async def test_a_batch_is_signalled_together_and_rolled_back_together(
    pool: Any, runtime: SlowToCancel
) -> None:
    runtime.let_go.set()  # this test waits for ends the ordinary way
    signals = CountedSignals(runtime)
    delivery = SignalDelivery(pool, signals)
    rows = [await runtime.start_instance("one-wait", {}) for _ in range(3)]
    ids = [row.id for row in rows]
    keys = {i: await _wait_key(pool, i) for i in ids}
    # Events their waits do not take: the instances signalled before the refusal keep
    # waiting (with the events they take, they would end and drop their waits themselves,
    # which a dev server without its one shard's read limit does before the count below).
    strays = [(i, keys[i], [_go(f"s{n}", n, "stray")]) for n, i in enumerate(ids)]

    signals.refuse = ids[2]  # the last one's signal is not taken: none of the drop stays
    with pytest.raises(Refused):
        await delivery.deliver_many(strays)
    assert signals.most == 3  # sent together (before: one after another)
    assert await _open(pool, ids) == 3  # before: the first two waits had been answered

    signals.refuse = None
    answers = [(i, keys[i], [_go(f"e{n}", n)]) for n, i in enumerate(ids)]
    assert await delivery.deliver_many(answers) == [True, True, True]
    assert await _open(pool, ids) == 0
    for n, instance_id in enumerate(ids):  # each takes its event, past the stray one
        async with asyncio.timeout(30):
            done = await runtime.wait_for_completion(instance_id, None)
        assert (done.status, done.output) == ("completed", {"a": n})


async def test_a_waiter_is_answered_without_waiting_for_the_result_poll(
    pool: Any, runtime: SlowToCancel
) -> None:
    row = await runtime.start_instance("one-wait", {})
    key = await _wait_key(pool, row.id)
    waiter = asyncio.create_task(runtime.wait_for_completion(row.id, 60))
    assert await runtime.delivery.deliver_many([(row.id, key, [_go("e1", 7)])]) == [True]
    async with asyncio.timeout(30):  # before: held until the result's poll had ended
        done = await waiter
    assert (done.status, done.output) == ("completed", {"a": 7})


async def test_the_drop_commits_without_waiting_for_the_wal_flush(
    pool: Any, runtime: SlowToCancel
) -> None:
    runtime.let_go.set()  # this test waits for the end the ordinary way
    row = await runtime.start_instance("one-wait", {})
    key = await _wait_key(pool, row.id)
    async with pool.acquire() as conn:
        signals = SeenSetting(runtime, conn)
        delivery = SignalDelivery(pool, signals)
        assert await delivery.deliver_many([(row.id, key, [_go("e1", 5)])], conn) == [True]
        assert signals.seen == ["off"]  # before: "on", the commit waited for its flush
        setting = await conn.fetchval("SELECT current_setting('synchronous_commit')")
        assert setting == "on"  # that transaction's only
    assert await _open(pool, [row.id]) == 0
    async with asyncio.timeout(30):
        done = await runtime.wait_for_completion(row.id, None)
    assert (done.status, done.output) == ("completed", {"a": 5})
