"""How a run begins: its definition and its first record in the mirror.

``tideflow.begin`` is called directly on a real PostgreSQL (no Temporal server: it
is a plain coroutine). A first run whose starter has just created the mirrored row
(``mirrored``) writes nothing more; one that finds no row -- a sub-flow's child, a
later run -- creates and moves it on. Both report ``started``.

A run started through :class:`TemporalRuntime` (on a dev server) gets its definition
with its input (``InstanceStart.definition``): the starter created the row and
reports ``started``, so the run begins with its first function call, no
``tideflow.begin``. Its history is recorded as a golden one
(``tests/support/temporal.py``), so replay covers this start.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.support.temporal import DevServer, record_history
from tideflow import ids
from tideflow.deploy import deploy_definition
from tideflow.runtime.functions import FunctionInvoker
from tideflow.runtime.gateway import PostgresRegistry
from tideflow.runtime.hosts.temporal import InstanceActivities, InstanceStart
from tideflow.runtime.hosts.temporal.gateway import PostgresMirror
from tideflow.runtime.hosts.temporal.runtime import TemporalOptions, TemporalRuntime
from tideflow.runtime.lifecycle import LifecycleNotice

DEFINITION = {
    "id": "begin-probe",
    "version": "1",
    "specVersion": "0.8",
    "start": "Done",
    "states": [{"name": "Done", "type": "inject", "data": {"ok": True}, "end": True}],
}


TWO_CALLS = {
    "id": "inline-start",
    "version": "1",
    "specVersion": "0.8",
    "start": "Twice",
    "functions": [{"name": "inc", "type": "custom", "operation": "rest:post:http://x/y"}],
    "states": [
        {
            "name": "Twice",
            "type": "operation",
            "actions": [
                {"functionRef": {"refName": "inc", "arguments": {"n": "${ .n }"}}},
                {"functionRef": {"refName": "inc", "arguments": {"n": "${ .n }"}}},
            ],
            "end": True,
        }
    ],
}


def inc(args: dict[str, Any]) -> dict[str, Any]:
    return {"n": args["n"] + 1}


async def _publish(_: str, batch: Sequence[dict[str, Any]]) -> None:
    pass


async def _deployed(pool: Any, definition: dict[str, Any]) -> PostgresRegistry:
    registry = PostgresRegistry(pool)
    await deploy_definition(registry, json.dumps(definition), "application/json")
    return registry


def _activities(
    pool: Any, registry: PostgresRegistry, invoker: FunctionInvoker, folder: Path, report: Any
) -> InstanceActivities:
    mirror = PostgresMirror(pool)
    return InstanceActivities(
        registry, invoker, _publish, base_dir=folder, mirror=mirror, on_lifecycle=report
    )


async def test_begin_writes_the_first_record_unless_the_starter_did(
    pool: Any, tmp_path: Path
) -> None:
    registry = await _deployed(pool, DEFINITION)
    reported: list[LifecycleNotice] = []
    async with FunctionInvoker() as invoker:
        activities = _activities(pool, registry, invoker, tmp_path, reported.append)
        trusted, unmirrored, later = ids.new_id(), ids.new_id(), ids.new_id()
        for instance_id, mirrored, run_no in ((trusted, True, 1), (unmirrored, False, 1),
                                               (later, True, 2)):  # fmt: skip
            start = InstanceStart(
                workflow_id="begin-probe",
                input={"n": 1},
                instance_id=instance_id,
                run_no=run_no,
                mirrored=mirrored,
            )
            stored = await activities.begin(start)
            assert (stored.workflow_id, stored.version) == ("begin-probe", "1")
    rows = await pool.fetch(
        "SELECT id, status, run_no FROM tideflow_instances WHERE id = ANY($1::text[])",
        [trusted, unmirrored, later],
    )
    found = {r["id"]: (r["status"], r["run_no"]) for r in rows}
    # trusted: the starter's row is taken as written (here: none was, so none is)
    assert found == {unmirrored: ("running", 1), later: ("running", 2)}
    started = [(n.kind, n.instance_id, n.run_no) for n in reported]
    assert started == [("started", trusted, 1), ("started", unmirrored, 1), ("started", later, 2)]


async def test_a_started_instance_begins_with_its_first_call(
    pool: Any, temporal_server: DevServer, tmp_path: Path
) -> None:
    from temporalio.client import Client

    registry = await _deployed(pool, TWO_CALLS)
    reported: list[LifecycleNotice] = []
    client = await Client.connect(temporal_server.address, namespace=temporal_server.namespace)
    options = TemporalOptions(
        temporal_server.address,
        namespace=temporal_server.namespace,
        task_queue=f"inline-{ids.new_id()}",
    )
    async with FunctionInvoker(overrides={"inc": inc}, sync_threads=2) as invoker:
        activities = _activities(pool, registry, invoker, tmp_path, reported.append)
        runtime = TemporalRuntime(
            pool, client, options, registry=registry, activities=activities,
            on_lifecycle=reported.append,
        )  # fmt: skip
        async with runtime:
            row = await runtime.start_instance("inline-start", {"n": 1})
            done = await runtime.wait_for_completion(row.id, 30)
    assert (done.status, done.output) == ("completed", {"n": 3})
    history = await client.get_workflow_handle(row.id).fetch_history()
    kinds = [event.WhichOneof("attributes") for event in history.events]
    scheduled = kinds.index("activity_task_scheduled_event_attributes")
    # nothing between the start and the first call; one local activity: the last record
    assert "marker_recorded_event_attributes" not in kinds[:scheduled]
    assert kinds.count("marker_recorded_event_attributes") == 1
    assert kinds.count("activity_task_scheduled_event_attributes") == 2
    started = [n for n in reported if n.kind == "started"]
    assert [(n.instance_id, n.workflow_id, n.version) for n in started] == [
        (row.id, "inline-start", "1")
    ]
    assert [n.kind for n in reported if n.instance_id == row.id][-1] == "completed"
    await record_history(client, row.id, "runtime-inline-start")
