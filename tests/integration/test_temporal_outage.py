"""A Temporal cluster that cannot be reached is an error the caller sees, and nothing is lost.

Cancel, suspend, resume and a signalled event each go to Temporal; when it does
not take them -- here a runtime whose client points at a port nothing listens
on, beside the real one -- they raise ``EngineUnavailable`` (the API answers
503 ``engine-unavailable``, naming the cluster and what was not delivered)
instead of logging it and answering as if done. A delivery of a waiting
instance's event through ``SignalDelivery`` is rolled back, so its wait stays
open and the event reaches the instance once Temporal is back. Only a refusal
because the instance has ended is taken quietly (the row shows the end).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from tests.integration.test_temporal_ends import WAITER
from tests.support.temporal import DevServer, deployed
from tideflow.api.errors import tideflow_error_response
from tideflow.errors import EngineUnavailable
from tideflow.runtime.hosts.temporal.runtime import TemporalOptions, TemporalRuntime
from tideflow.runtime.waits import SignalDelivery


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def runtimes(
    pool: Any, temporal_server: DevServer, tmp_path: Path
) -> AsyncIterator[tuple[TemporalRuntime, TemporalRuntime]]:
    """The real runtime (with a worker), and one whose cluster cannot be reached."""
    async with deployed(pool, temporal_server, tmp_path, WAITER, "outage") as made:
        away_options = TemporalOptions(f"127.0.0.1:{_free_port()}", task_queue="nowhere")
        away_client = await Client.connect(away_options.address, lazy=True)
        away = TemporalRuntime(pool, away_client, away_options, registry=made.registry)
        async with await made.runtime(pool) as running:
            yield running, away


async def _open_wait(pool: Any, instance_id: str) -> str:
    async with asyncio.timeout(30):
        while True:
            async with pool.acquire() as conn:
                key = await conn.fetchval(
                    "SELECT wait_key FROM tideflow_event_waits WHERE instance_id = $1",
                    instance_id,
                )
            if key is not None:
                return str(key)
            await asyncio.sleep(0.02)


async def test_an_unreachable_cluster_is_an_error_and_loses_nothing(
    pool: Any, runtimes: tuple[TemporalRuntime, TemporalRuntime]
) -> None:
    running, away = runtimes
    row = await running.start_instance(str(WAITER["id"]), {})
    key = await _open_wait(pool, row.id)
    event = {"specversion": "1.0", "id": "e1", "source": "test", "type": "go", "data": {"got": 7}}

    for attempt in (away.cancel, away.suspend, away.resume):
        with pytest.raises(EngineUnavailable) as raised:
            await attempt(row.id)
        assert away.options.address in str(raised.value)
    with pytest.raises(EngineUnavailable):
        await away.signal_event(row.id, event)
    answer = tideflow_error_response(raised.value)
    assert answer.status_code == 503
    assert b"engine-unavailable" in answer.body
    assert row.id.encode() in answer.body

    # The delivery through the unreachable cluster is rolled back: the wait stays open.
    with pytest.raises(EngineUnavailable):
        await SignalDelivery(pool, away).deliver_events(row.id, key, [event])
    assert await _open_wait(pool, row.id) == key
    assert (await running.instances.get(row.id)).status == "waiting"  # not cancelled

    # Once Temporal is reached, the same delivery answers the wait.
    assert await running.delivery.deliver_events(row.id, key, [event])
    async with asyncio.timeout(30):
        done = await running.wait_for_completion(row.id, None)
    assert (done.status, done.output) == ("completed", {"got": 7})
