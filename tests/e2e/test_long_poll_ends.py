"""A bus long poll (``GET /buses/{bus}/events?wait=``) ends with its client and with the
server: an abandoned one leaves no wait behind, and a shutdown answers an open one at
once (an empty page) instead of holding the shutdown up and cancelling it with a
traceback. ``GET /instances/{id}?wait=`` is covered the same way in
``test_api_instances_wait_batch.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.auth import home_auth
from tideflow.api.app import create_app
from tideflow.api.testserver import serve_app
from tideflow.serve import open_system
from tideflow.settings import Settings

BUS = "quiet"


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(20):
        while not condition():  # noqa: ASYNC110 -- the server's state, in this loop
            await asyncio.sleep(0.02)


async def test_an_abandoned_bus_poll_leaves_no_wait_behind(pg_url: str, tmp_path: Path) -> None:
    app = create_app(Settings(database_url=pg_url, home=tmp_path), open_system)
    async with (
        serve_app(app) as url,
        httpx.AsyncClient(base_url=url, headers=home_auth(tmp_path), timeout=60) as http,
    ):
        assert (await http.post("/buses", json={"name": BUS})).status_code == 201
        waiters = app.state.services.events.waiters
        poll = asyncio.ensure_future(http.get(f"/buses/{BUS}/events", params={"wait": 30}))
        await _until(lambda: waiters.watching(BUS) == 1)
        poll.cancel()  # the client closes its connection
        with pytest.raises(asyncio.CancelledError):
            await poll
        await _until(lambda: waiters.watching(BUS) == 0)


async def test_a_shutdown_answers_an_open_bus_poll(
    pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(Settings(database_url=pg_url, home=tmp_path), open_system)
    async with httpx.AsyncClient(timeout=60) as http:
        async with serve_app(app) as url:
            http.headers.update(home_auth(tmp_path))  # saved by the server's start
            assert (await http.post(f"{url}/buses", json={"name": BUS})).status_code == 201
            waiters = app.state.services.events.waiters
            poll = asyncio.ensure_future(http.get(f"{url}/buses/{BUS}/events?wait=30"))
            await _until(lambda: waiters.watching(BUS) == 1)
        answer = await poll  # the block's end shut the server down
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"bus": BUS, "events": [], "next": 0}
    assert "graceful shutdown exceeded" not in caplog.text
    assert "Traceback" not in caplog.text
