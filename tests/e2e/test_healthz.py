"""``GET /healthz`` and ``GET /readyz`` over HTTP: 200 with the components, 503 naming
the one that is down; ``/readyz`` also 503 while the server drains."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from tideflow.api.app import create_app
from tideflow.api.services import Services
from tideflow.api.testserver import serve_app
from tideflow.settings import Settings
from tideflow.supervise import HealthBoard, Policy, Supervisor
from tideflow.testing import InMemoryEventStore, ManualClock


class Switch:
    """A probe the test turns down."""

    name = "database"

    def __init__(self) -> None:
        self.error: str | None = None

    async def check(self) -> str | None:
        return self.error


async def test_healthz_names_what_is_down() -> None:
    supervisor = Supervisor("svc", clock=ManualClock())
    probe = Switch()
    board = HealthBoard()
    board.watch(supervisor)
    board.probe(probe)
    crash = asyncio.Event()

    async def core() -> None:
        await crash.wait()
        raise RuntimeError("core failed")

    @asynccontextmanager
    async def opener(settings: Settings) -> AsyncIterator[Services]:
        yield Services(settings=settings, events=InMemoryEventStore(), health=board)

    supervisor.spawn("core", core, policy=Policy.STOP)
    app = create_app(Settings(), opener)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as http:
        ok = await http.get("/healthz")
        assert ok.status_code == 200
        assert ok.json()["status"] == "ok"
        assert [(c["name"], c["up"]) for c in ok.json()["components"]] == [
            ("database", True),
            ("svc.core", True),
        ]
        probe.error = "unreachable: refused"
        down = await http.get("/healthz")
        assert (down.status_code, down.json()["detail"]) == (
            503,
            "database: unreachable: refused",
        )
        probe.error = None
        crash.set()
        await supervisor.wait("core")
        stopped = (await http.get("/healthz")).json()
        assert stopped["status"] == "unavailable"
        assert stopped["detail"] == "svc.core: RuntimeError: core failed"
    await supervisor.stop()


async def test_readyz_is_healthz_and_not_draining() -> None:
    probe = Switch()
    board = HealthBoard()
    board.probe(probe)

    @asynccontextmanager
    async def opener(settings: Settings) -> AsyncIterator[Services]:
        yield Services(settings=settings, events=InMemoryEventStore(), health=board)

    app = create_app(Settings(), opener)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as http:
        ready = await http.get("/readyz")
        assert (ready.status_code, ready.json()["status"]) == (200, "ok")
        assert [c["name"] for c in ready.json()["components"]] == ["database"]
        probe.error = "unreachable: refused"
        down = await http.get("/readyz")
        assert (down.status_code, down.json()["detail"]) == (503, "database: unreachable: refused")
        probe.error = None
        app.state.draining.set()  # what the server does as its shutdown begins
        draining = await http.get("/readyz")
        assert draining.status_code == 503
        assert draining.json()["detail"] == "draining: the server is shutting down"
        assert (await http.get("/healthz")).status_code == 200  # alive all the same
        probe.error = "unreachable: refused"
        both = (await http.get("/readyz")).json()["detail"]
        assert both == "draining: the server is shutting down; database: unreachable: refused"
