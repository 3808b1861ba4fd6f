"""Waiting for a Temporal instance's end: the final mirrored row as soon as it is committed.

The workflow's last record commits the instance's end to the mirror before the
workflow completes, so :meth:`TemporalRuntime.wait_for_completion` answers from
there: handed over by the worker of its own process, or announced by the ``done``
notification of the committing transaction when the worker is elsewhere. Here the
runtimes never hear of the completion from Temporal (their wait for the workflow's
result never answers): an answer can only come from the mirror, and it must be the
row the status API shows. The result is still awaited for ends Tideflow does not
record: a workflow terminated through Temporal.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.temporal import DevServer, Setting, deployed
from tideflow.runtime.hosts.temporal.runtime import TemporalRuntime, connect
from tideflow.runtime.rows import InstanceRow

WAITER = {
    "id": "ends-waiter",
    "version": "1",
    "specVersion": "0.8",
    "start": "Wait",
    "events": [{"name": "go", "type": "go", "source": "test"}],
    "states": [
        {
            "name": "Wait",
            "type": "event",
            "onEvents": [{"eventRefs": ["go"]}],
            "end": True,
        }
    ],
}


class _Deaf:
    """A workflow handle whose ``result()`` never answers (a stand-in for a slow or lost
    long poll of the Temporal history); everything else goes to the real handle."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    async def result(self) -> Any:
        await asyncio.Event().wait()


class DeafToTemporal(TemporalRuntime):
    """A runtime that never hears of a workflow's completion from Temporal."""

    def handle(self, instance_id: str) -> Any:
        return _Deaf(super().handle(instance_id))


async def _waiting(runtime: TemporalRuntime, instance_id: str) -> None:
    while (await runtime.instances.get(instance_id)).status != "waiting":  # noqa: ASYNC110
        await asyncio.sleep(0.02)


@pytest.fixture
async def setting(pool: Any, temporal_server: DevServer, tmp_path: Path) -> AsyncIterator[Setting]:
    async with deployed(pool, temporal_server, tmp_path, WAITER, "ends") as made:
        yield made


async def test_an_end_is_answered_from_the_mirror_here_and_in_another_process(
    pool: Any, setting: Setting
) -> None:
    options, registry = setting.options, setting.registry
    worker_side = DeafToTemporal(
        pool, await connect(options), options, registry=registry, activities=setting.activities
    )
    elsewhere = DeafToTemporal(pool, await connect(options), options, registry=registry)
    async with worker_side, elsewhere:
        row = await worker_side.start_instance("ends-waiter", {})
        await _waiting(worker_side, row.id)
        here = asyncio.ensure_future(worker_side.wait_for_completion(row.id, None))
        there = asyncio.ensure_future(elsewhere.wait_for_completion(row.id, None))
        await asyncio.sleep(0.2)  # both waits open (a wait opened later reads the end)
        assert not here.done()
        assert not there.done()
        event = {"specversion": "1.0", "id": "e1", "source": "test", "type": "go",
                 "data": {"got": 7}}  # fmt: skip
        await worker_side.signal_event(row.id, event)
        answers: tuple[InstanceRow, InstanceRow] = await asyncio.gather(here, there)
        shown = await worker_side.instances.get(row.id)
    assert (shown.status, shown.output) == ("completed", {"got": 7})
    for answer in answers:
        assert (answer.id, answer.status, answer.output) == (row.id, "completed", {"got": 7})
        assert answer.ended_at == shown.ended_at


async def test_an_end_tideflow_did_not_record_still_ends_the_wait(
    pool: Any, setting: Setting
) -> None:
    options = setting.options
    runtime = TemporalRuntime(
        pool,
        await connect(options),
        options,
        registry=setting.registry,
        activities=setting.activities,
    )
    async with runtime:
        row = await runtime.start_instance("ends-waiter", {})
        await _waiting(runtime, row.id)
        waited = asyncio.ensure_future(runtime.wait_for_completion(row.id, None))
        await asyncio.sleep(0.2)
        assert not waited.done()
        await runtime.handle(row.id).terminate("test")
        answer = await waited  # no timeout: only the workflow's result can end it
    assert (answer.id, answer.status) == (row.id, "waiting")  # the mirror never heard
