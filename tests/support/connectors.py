"""Helpers for the connector tests: a served ``tideflow serve`` with connectors, and a
workflow that turns an order event into an accepted event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.served import Served, serve_process

ORDER_WORKFLOW = """\
id: accept-order
version: '1.0'
specVersion: '0.8'
start: Wait for order
events:
  - name: Order
    type: com.example.order
    source: {source}
  - name: Accepted
    type: com.example.order.accepted
    kind: produced
states:
  - name: Wait for order
    type: event
    onEvents:
      - eventRefs: [Order]
        eventDataFilter:
          toStateData: ${{ .order }}
    end:
      produceEvents:
        - eventRef: Accepted
          data: '${{ {{orderId: .order.id, total: .order.total}} }}'
"""
"""Starts on ``com.example.order`` (data: the order) and ends producing
``com.example.order.accepted`` with ``{orderId, total}`` on the default bus."""


def write_order_workflow(folder: Path, source: str) -> Path:
    """The order workflow in ``folder``, started by events of ``source``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "accept-order.yaml").write_text(ORDER_WORKFLOW.format(source=source))
    return folder


@asynccontextmanager
async def served(database: str, home: Path, *args: str) -> AsyncIterator[Served]:
    """``tideflow serve ARGS`` started and stopped without blocking the test's loop."""
    manager = serve_process(database, home, *args)
    server = await asyncio.to_thread(manager.__enter__)
    try:
        yield server
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:  # noqa: ASYNC109
    """The first truthy result of ``check``, polled until ``timeout``."""
    async with asyncio.timeout(timeout):
        while not (result := await check()):  # noqa: ASYNC110 - the state is elsewhere
            await asyncio.sleep(0.05)
    return result


async def bus_events(http: httpx.AsyncClient, bus: str) -> list[dict[str, Any]]:
    """Every event of ``bus`` (structured form), in offset order."""
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        response = await http.get(f"/buses/{bus}/events", params={"after": after, "limit": 1000})
        assert response.status_code == 200, response.text
        page = response.json()["events"]
        if not page:
            return events
        events += [e["event"] for e in page]
        after = page[-1]["offset"]


async def create_connector(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """``POST /connectors``, asserting 201."""
    response = await http.post("/connectors", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
