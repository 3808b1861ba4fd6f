"""A long poll answers in the pass of the event loop after its wait ends (``api/long_poll.py``).

The wait runs in the request's own task; the watchers (the client's disconnect, the
server's drain) cancel it the way ``asyncio.timeout`` does. No I/O: the request is an
ASGI scope whose ``receive`` says ``http.disconnect`` when the test lets it; the loop's
passes are counted, not timed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.requests import Request

from tideflow.api.long_poll import wait_unless_abandoned


class Client:
    """A request whose client disconnects when :meth:`leave` is called."""

    def __init__(self) -> None:
        self.gone = asyncio.Event()
        self.draining = asyncio.Event()
        app = SimpleNamespace(state=SimpleNamespace(draining=self.draining))
        self.request = Request({"type": "http", "app": app}, self._receive)

    async def _receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    def leave(self) -> None:
        self.gone.set()


async def passes_until_done(task: asyncio.Future[Any]) -> int:
    """How many passes of the loop until ``task`` is done."""
    passes = 0
    while not task.done():
        await asyncio.sleep(0)
        passes += 1
    return passes


async def started(wait: Awaitable[Any], client: Client) -> asyncio.Task[Any]:
    """The request's task, waiting (its watchers running)."""
    task = asyncio.ensure_future(wait_unless_abandoned(client.request, wait))
    for _ in range(3):
        await asyncio.sleep(0)
    assert not task.done()
    return task


async def test_the_answer_is_ready_in_the_pass_after_the_wait_ends() -> None:
    before = asyncio.all_tasks()  # the loop is the session's: other tests' tasks may be there
    client = Client()
    ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = await started(ended, client)
    ended.set_result("the final row")
    assert await passes_until_done(task) == 1  # it was 5: a task for the wait, then a wait
    waited = task.result()
    assert waited is not None
    assert waited.result() == "the final row"
    await asyncio.sleep(0)  # the watchers were cancelled: nothing is left running
    assert asyncio.all_tasks() - before == set()


async def waits_forever(cancelled: list[bool]) -> str:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        cancelled.append(True)
        raise
    return "never"


@pytest.mark.parametrize("how", ["client leaves", "server drains"])
async def test_an_abandoned_wait_is_cancelled_and_the_request_goes_on(how: str) -> None:
    client = Client()
    cancelled: list[bool] = []
    task = await started(waits_forever(cancelled), client)
    client.leave() if how == "client leaves" else client.draining.set()
    assert await task is None
    assert cancelled == [True]
    assert task.cancelling() == 0  # the watcher's cancellation was taken back


async def test_after_an_abandoned_wait_the_request_task_can_wait_again() -> None:
    client = Client()

    async def request() -> str:
        first = await wait_unless_abandoned(client.request, waits_forever([]))
        assert first is None
        await asyncio.sleep(0)  # not cancelled again by a leftover cancellation
        return "answered"

    task = asyncio.ensure_future(request())
    await asyncio.sleep(0)
    client.leave()
    assert await task == "answered"


async def test_a_failed_wait_is_on_the_future() -> None:
    client = Client()

    async def fails() -> str:
        await asyncio.sleep(0)
        raise LookupError("no such instance")

    waited = await asyncio.ensure_future(wait_unless_abandoned(client.request, fails()))
    assert waited is not None
    with pytest.raises(LookupError, match="no such instance"):
        waited.result()


async def test_a_request_cancelled_from_outside_stays_cancelled() -> None:
    client = Client()
    task = await started(waits_forever([]), client)
    task.cancel()  # the server stops the request
    client.leave()  # and the client goes at the same moment
    with pytest.raises(asyncio.CancelledError):
        await task
