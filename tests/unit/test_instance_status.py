"""One instance-status vocabulary: :class:`InstanceStatus`, defined once and used everywhere."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tideflow.runtime.result import Completed, ContinuedAs, Failed, Terminated, WorkflowError
from tideflow.runtime.state import InstanceState, from_json
from tideflow.runtime.status import InstanceStatus

PACKAGE = Path(__file__).resolve().parents[2] / "tideflow"
VALUES = {"running", "waiting", "suspended", "completed", "failed", "cancelled"}


def test_the_strings_users_see_stay_the_same() -> None:
    assert {s.value for s in InstanceStatus} == VALUES
    assert {s for s in InstanceStatus if s.final} == {"completed", "failed", "cancelled"}
    assert f"{InstanceStatus.WAITING}" == "waiting"


def test_no_module_spells_the_vocabulary_out_again() -> None:
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Tuple | ast.Set | ast.List):
                strings = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                if len(strings) >= 3 and strings <= VALUES:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert found == []


def test_run_outcomes_name_the_instance_status_they_leave() -> None:
    error = WorkflowError(name="e", message="m")
    assert Completed(output=1).status is InstanceStatus.COMPLETED
    assert Failed(error=error).status is InstanceStatus.FAILED
    assert Terminated(output=1).status is InstanceStatus.COMPLETED
    assert Terminated(output=1, reason="timeout").status is InstanceStatus.FAILED
    assert ContinuedAs(workflow_id="w", version=None, input={}).status is InstanceStatus.RUNNING


@pytest.mark.parametrize(
    ("old", "new"),
    [("terminated", "completed"), ("continued", "running"), ("failed", "failed")],
)
def test_version_2_states_get_instance_statuses(old: str, new: str) -> None:
    state = from_json({"schema_version": 2, "instance_id": "i", "workflow_id": "w", "status": old})
    assert state.status is InstanceStatus(new)
    assert InstanceState(instance_id="i", workflow_id="w").status is InstanceStatus.RUNNING
