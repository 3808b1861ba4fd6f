"""Replay safety: recorded Temporal histories of ``tideflow.instance`` replay without a diff.

``tests/golden/temporal/*.json`` are histories recorded from real runs on a
Temporal dev server -- the Effects contract scenarios on the Temporal host and
the examples through ``tideflow serve --engine temporal`` (see
``tests/support/temporal.py`` for how to record them again). Each is replayed
here with ``temporalio.worker.Replayer`` and today's workflow code, in
Temporal's sandbox (the workers run it outside: the sandbox here catches a call
that would make a run non-deterministic): a change to the interpreter or the Temporal host
that would make a running instance take another path (another activity,
timer or child at some step) raises a nondeterminism error and fails.
No server is needed: replay is offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from tests.support.temporal import GOLDEN
from tideflow.runtime.hosts.temporal import InstanceWorkflow, workflow_runner
from tideflow.runtime.hosts.temporal._values import with_values

HISTORIES = sorted(GOLDEN.glob("*.json"))


def test_histories_are_recorded() -> None:
    names = {path.stem for path in HISTORIES}
    assert len(names) >= 10, names
    assert any(name.startswith("contract-") for name in names)
    assert any(name.startswith("example-") for name in names)


def _recorded(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    recorded = _recorded(path)
    started = recorded["events"][0]["workflowExecutionStartedEventAttributes"]
    assert started["workflowType"]["name"] == "tideflow.instance"
    history = WorkflowHistory.from_json(path.stem, recorded)
    runner = workflow_runner(sandboxed=True)
    replayer = Replayer(
        workflows=[InstanceWorkflow],
        workflow_runner=runner,
        data_converter=with_values(DataConverter.default),  # as the workers read them
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
