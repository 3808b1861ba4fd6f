"""Cooperative yield points: a run's CPU-only work gives the event loop a turn.

Internal. An iteration whose actions only evaluate expressions never awaits
an effect, so a long ``foreach`` (or 1.0 ``for``, or a loop of states) would
hold the event loop -- and every other instance, request and ``/healthz`` on
it -- until it ends. The loops of the interpreters therefore ask the run's
:class:`~tideflow.runtime.effects.Pace` after each iteration whether a turn
is due, and if so pass the loop one with a plain ``await asyncio.sleep(0)``:
no I/O, no effect, nothing journaled, so the interpreters stay pure and a
replay takes the same steps (see docs/runtime.md, "Cooperative yield
points"). *When* a turn is due is the host's decision: the durable and the
local host slice by their clock's elapsed time
(:class:`tideflow.runtime.hosts.plumbing.ClockPace`); without a host's pace
a run counts (:class:`CountedPace`).

Concurrent iterations need more than a check inside each: all the tasks of
one batch would be ready at once, and the event loop runs every ready task
before it polls for I/O again, so :func:`gather_in_turns` creates them a
group at a time, the next group only once the previous one has begun, and
each iteration asks the pace before it begins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from tideflow.runtime.effects import Pace
from tideflow.supervise import TaskSet

ITERATIONS_PER_TURN = 16
"""Iterations between two turns of a :class:`CountedPace`, and the size of a group of
:func:`gather_in_turns` (tasks created per pass of the event loop)."""


class CountedPace:
    """A turn every :data:`ITERATIONS_PER_TURN` checks: for runs whose host gives no pace
    (tests, Temporal's deterministic workflow loop)."""

    __slots__ = ("_since",)

    def __init__(self) -> None:
        self._since = 0

    def due(self) -> int:
        self._since += 1
        if self._since < ITERATIONS_PER_TURN:
            return 0
        self._since = 0
        return 1

    def resumed(self, turn: int) -> None:
        return None


async def take_turn(pace: Pace) -> None:
    """Pass the event loop turns while ``pace`` says one is due.

    Asked again after each turn: of the parallel iterations that waited in
    the same pass, the first back starts a new slice, and the others wait
    again once it is spent.
    """
    while turn := pace.due():
        await asyncio.sleep(0)
        pace.resumed(turn)


class _Starts:
    """How many iterations of a :func:`gather_in_turns` have begun, and its first failure."""

    __slots__ = ("begun", "error", "ready", "target")

    def __init__(self) -> None:
        self.begun = 0
        self.target = 0
        self.error: BaseException | None = None
        self.ready = asyncio.Event()
        """Set once ``target`` iterations have begun or one failed."""

    def began(self) -> None:
        self.begun += 1
        if self.begun >= self.target:
            self.ready.set()

    def note(self, task: asyncio.Future[Any]) -> None:
        """A task ended: keep the first failure (reading it marks it retrieved)."""
        error = asyncio.CancelledError() if task.cancelled() else task.exception()
        if error is not None and self.error is None:
            self.error = error
            self.ready.set()

    async def until_begun(self, target: int) -> None:
        """Wait until ``target`` iterations have begun (or one failed)."""
        self.target = target
        if self.begun < target and self.error is None:
            self.ready.clear()
            await self.ready.wait()


async def gather_in_turns(coros: list[Coroutine[Any, Any, Any]], pace: Pace) -> list[Any]:
    """Await all (results in order), creating their tasks a group per turn of the loop.

    A group of :data:`ITERATIONS_PER_TURN` is created once every task of the
    previous one has begun; each begins only after asking ``pace`` (and taking
    the turn it says is due). On the first failure the others are cancelled
    and it is raised, as with a plain gather; those not begun are closed
    unstarted.
    """
    starts = _Starts()
    owned = TaskSet("iterations", awaited=True)  # their failures reach the caller, below
    tasks: list[asyncio.Future[Any]] = []
    try:
        for index, coro in enumerate(coros):
            if index and index % ITERATIONS_PER_TURN == 0:
                await starts.until_begun(index)  # the group before has begun
            if starts.error is not None:
                raise starts.error
            task = owned.spawn(_begin(coro, pace, starts))
            task.add_done_callback(starts.note)
            tasks.append(task)
        return list(await asyncio.gather(*tasks))
    finally:
        await owned.cancel()
        for coro in coros:
            coro.close()  # those never begun: no "never awaited" warning; no-op for the rest


async def _begin(coro: Coroutine[Any, Any, Any], pace: Pace, starts: _Starts) -> Any:
    await take_turn(pace)
    starts.began()
    return await coro
