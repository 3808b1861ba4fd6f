"""``tideflow.begin``: a run's definition and its first record in the mirror.

The activity is called directly on a real PostgreSQL (no Temporal server: it is a
plain coroutine). A first run whose starter has just created the mirrored row
(``mirrored``, what :class:`TemporalRuntime` sends) writes nothing more; one that
finds no row -- a sub-flow's child, a later run -- creates and moves it on. Both
report ``started``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tideflow import ids
from tideflow.deploy import deploy_definition
from tideflow.runtime.functions import FunctionInvoker
from tideflow.runtime.gateway import PostgresRegistry
from tideflow.runtime.hosts.temporal import InstanceActivities, InstanceStart
from tideflow.runtime.hosts.temporal.gateway import PostgresMirror
from tideflow.runtime.lifecycle import LifecycleNotice

DEFINITION = {
    "id": "begin-probe",
    "version": "1",
    "specVersion": "0.8",
    "start": "Done",
    "states": [{"name": "Done", "type": "inject", "data": {"ok": True}, "end": True}],
}


async def test_begin_writes_the_first_record_unless_the_starter_did(
    pool: Any, tmp_path: Path
) -> None:
    registry = PostgresRegistry(pool)
    await deploy_definition(registry, json.dumps(DEFINITION), "application/json")
    reported: list[LifecycleNotice] = []

    async def publish(_: str, batch: Sequence[dict[str, Any]]) -> None:
        pass

    async with FunctionInvoker() as invoker:
        activities = InstanceActivities(
            registry,
            invoker,
            publish,
            base_dir=tmp_path,
            mirror=PostgresMirror(pool),
            on_lifecycle=reported.append,
        )
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
