"""A delivery's stage: which writes it holds, when its runs arrive, what a rollback tells them."""

from __future__ import annotations

from typing import Any

from tideflow.runtime.journal import Finish, JournalWriter
from tideflow.runtime.status import InstanceStatus


def _writer() -> JournalWriter:
    pool: Any = None  # nothing here reaches the database
    return JournalWriter(pool, owner="me", lease_seconds=30)


async def test_a_staged_run_arrives_at_a_write_it_waits_for_not_at_one_it_does_not() -> None:
    writer = _writer()
    stage = writer.stage(["a", "b"])
    writer.note("a", 1, "state.left", "Wait", "Wait", {})
    writer.append("a", 1, "now", "", {"result": "t"}, awaited=False)  # the run goes on
    assert not stage.arrived.done()
    writer.transition("a", Finish(status=InstanceStatus.COMPLETED))
    assert not stage.arrived.done()  # b has not arrived
    assert writer.barrier("b") is stage.committed
    assert stage.arrived.done()
    assert len(stage.batch.timeline) == 1
    assert len(stage.batch.waiters) == 2
    assert not writer._batch  # nothing of theirs goes with the group commit
    assert writer.unstaged(["a", "b", "c"]) == ["c"]  # their leases are not committed yet


async def test_a_rolled_back_stage_tells_its_runs_they_hold_nothing() -> None:
    writer = _writer()
    stage = writer.stage(["a"])
    ended = writer.transition("a", Finish(status=InstanceStatus.COMPLETED))
    barrier = writer.barrier("a")
    writer.abandon(stage)
    assert ended.result().held is False
    assert barrier is not None
    assert barrier.result() is False
    assert writer.barrier("a") is None  # unstaged: later writes go with the group commit
    assert not writer._batch


async def test_writes_a_stage_did_not_write_go_with_the_group_commit_after_it() -> None:
    writer = _writer()
    stage = writer.stage(["a"])
    writer.note("a", 1, "state.left", "Wait", "Wait", {})
    ended = writer.transition("a", Finish(status=InstanceStatus.COMPLETED))
    writer.release(stage)  # the delivery committed without writing them (it timed out)
    assert stage.committed.result() is True
    assert not ended.done()
    assert len(writer._batch.timeline) == 1
    assert writer._batch.waiters == [("a", ended)]
    assert writer.unstaged(["a"]) == ["a"]
