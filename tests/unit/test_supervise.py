"""The supervisor: a dying task is restarted after its back-off or stops its service,
visibly (health, on_stop), never silently."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tideflow.supervise import Backoff, HealthBoard, Policy, Supervisor, scoped
from tideflow.testing import ManualClock


async def turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


class Flaky:
    """A loop that fails ``failures`` times, then runs until cancelled."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.starts = 0
        self.running = asyncio.Event()

    async def run(self) -> None:
        self.starts += 1
        if self.starts <= self.failures:
            raise RuntimeError(f"boom {self.starts}")
        self.running.set()
        await asyncio.Event().wait()


async def test_a_dying_task_is_restarted_after_its_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    supervisor = Supervisor("svc", clock=clock, backoff=Backoff(first=1.0, factor=2.0))
    flaky = Flaky(failures=2)
    supervisor.spawn("loop", flaky.run)
    await turns()
    [health] = supervisor.health()
    assert (health.name, health.up, health.state, health.error) == (
        "svc.loop",
        False,
        "restarting",
        "RuntimeError: boom 1",
    )
    assert "svc: task loop died" in caplog.text
    assert "Traceback" in caplog.text
    clock.advance(1.0)  # first back-off
    await turns()
    assert flaky.starts == 2
    clock.advance(1.0)  # the second back-off is 2 s: not yet
    await turns()
    assert flaky.starts == 2
    clock.advance(1.0)
    await asyncio.wait_for(flaky.running.wait(), 5)
    [health] = supervisor.health()
    assert (health.up, health.state, health.restarts) == (True, "running", 2)
    await supervisor.stop()


async def test_a_stop_task_stops_its_service_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stopped: list[BaseException] = []
    supervisor = Supervisor("svc", clock=ManualClock(), on_stop=stopped.append)
    flaky = Flaky(failures=1)
    with caplog.at_level(logging.CRITICAL):
        supervisor.spawn("core", flaky.run, policy=Policy.STOP)
        await turns()
    assert [str(e) for e in stopped] == ["boom 1"]
    assert flaky.starts == 1
    board = HealthBoard()
    board.watch(supervisor)
    report = await board.report()
    assert not report.up
    assert [(c.name, c.state) for c in report.down] == [("svc.core", "stopped")]
    assert "the service is stopped" in caplog.text


async def test_a_finished_task_is_up_and_not_restarted() -> None:
    supervisor = Supervisor("svc", clock=ManualClock())
    runs: list[int] = []

    async def once() -> None:
        runs.append(1)

    await supervisor.spawn("drain", once)
    assert runs == [1]
    assert [(h.up, h.state) for h in supervisor.health()] == [(True, "finished")]


async def test_conditions_and_probes_are_part_of_the_report() -> None:
    class Down:
        name = "database"

        async def check(self) -> str | None:
            return "unreachable: refused"

    supervisor = Supervisor("svc", clock=ManualClock())
    supervisor.report("listen:x", "ConnectionError: gone")
    board = HealthBoard()
    board.watch(supervisor)
    board.probe(Down())
    report = await board.report()
    assert [(c.name, c.error) for c in report.down] == [
        ("database", "unreachable: refused"),
        ("svc.listen:x", "ConnectionError: gone"),
    ]
    supervisor.report("listen:x", None)
    board.probes.clear()
    assert (await board.report()).up


async def test_cancel_stops_one_task_and_a_name_cannot_run_twice() -> None:
    supervisor = Supervisor("svc", clock=ManualClock())
    first, second = Flaky(0), Flaky(0)
    supervisor.spawn("a", first.run)
    supervisor.spawn("b", second.run)
    await turns()
    with pytest.raises(RuntimeError, match="running already"):
        supervisor.spawn("a", first.run)
    await supervisor.cancel("a")
    assert not supervisor.running("a")
    assert supervisor.running("b")
    assert [h.name for h in supervisor.health()] == ["svc.b"]
    await supervisor.stop()
    assert not supervisor.running("b")


async def test_scoped_cancels_what_is_left_and_leaves_done_tasks_without_a_turn() -> None:
    async def quick() -> int:
        return 1

    async def failing() -> None:
        raise RuntimeError("boom")

    loop = asyncio.get_running_loop()
    async with scoped([quick(), failing()]) as tasks:
        await asyncio.wait(tasks)
        passed: list[int] = []
        loop.call_soon(passed.append, 1)
    assert passed == []  # all were done: leaving the block passed the loop no turn
    assert tasks[0].result() == 1
    assert isinstance(tasks[1].exception(), RuntimeError)

    async with scoped([quick(), asyncio.Event().wait()]) as (done, waiting):
        await done
    assert waiting.cancelled()  # not done: cancelled and awaited on the way out
