"""Cooperative yield points: a run's CPU-only work gives the event loop a turn.

Internal. An iteration whose actions only evaluate expressions never awaits
an effect, so a long ``foreach`` (or 1.0 ``for``) would hold the event loop
-- and every other instance, request and ``/healthz`` on it -- until it
ends. The loops of the interpreters therefore pass the loop a turn every
:data:`ITERATIONS_PER_TURN` iterations with a plain ``await
asyncio.sleep(0)``: no I/O, no clock, no effect, so the interpreters stay
pure and a replay takes the same steps (see docs/runtime.md, "Cooperative
yield points").

Concurrent iterations need more than a yield inside each: all the tasks of
one batch are ready at once, and the event loop runs every ready task before
it polls for I/O again, so :func:`gather_in_turns` lets the tasks begin
:data:`ITERATIONS_PER_TURN` at a time, one group per pass of the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from tideflow.supervise import scoped

ITERATIONS_PER_TURN = 16
"""Iterations between two turns (about 1-20 ms of expression work on a busy machine)."""


class Turns:
    """Counts one loop's iterations and passes the event loop a turn every group."""

    def __init__(self) -> None:
        self._since = 0

    async def after(self, iterations: int = 1) -> None:
        """Count ``iterations`` done; yield once a group of them is complete."""
        self._since += iterations
        if self._since >= ITERATIONS_PER_TURN:
            self._since = 0
            await asyncio.sleep(0)


async def gather_in_turns(coros: list[Coroutine[Any, Any, Any]]) -> list[Any]:
    """Await all (results in order), letting them begin a group per turn of the loop.

    On the first failure the others are cancelled and it is raised, as with
    a plain gather; a coroutine cancelled before its turn is closed unstarted.
    """
    turns = [asyncio.Event() for _ in range(0, len(coros), ITERATIONS_PER_TURN)]
    waiting = [_after(turns[i // ITERATIONS_PER_TURN], c) for i, c in enumerate(coros)]
    async with scoped(waiting) as tasks:
        gathered = asyncio.gather(*tasks)
        gathered.add_done_callback(_retrieved)  # read below, unless cancelled first
        for turn in turns:
            if gathered.done():
                break
            turn.set()  # its group runs in the next pass, before this loop goes on
            await asyncio.sleep(0)
        return list(await gathered)


async def _after(turn: asyncio.Event, coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        await turn.wait()
    except BaseException:
        coro.close()
        raise
    return await coro


def _retrieved(gathered: asyncio.Future[Any]) -> None:
    if not gathered.cancelled():
        gathered.exception()
