"""Crash test: the server process is SIGKILLed and restarted while clients send events.

Clients send every event until they get a 2xx, retrying with the same
``source`` + ``id`` when the connection breaks (what any at-least-once sender
does). Afterwards every event that was acknowledged is in the store exactly
once, at the offset it was acknowledged with, in a gap-free log -- nothing
acknowledged was lost and nothing half-written became visible.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.auth import home_auth
from tideflow.api.testserver import free_port
from tideflow.http_binding import encode_batch, encode_binary

pytestmark = pytest.mark.slow

CLIENTS = 8
KILLS = 3
SOURCE = "/crash-test"


@dataclass
class Server:
    """``tideflow serve`` as a child process."""

    url: str
    port: int
    env: dict[str, str]
    process: asyncio.subprocess.Process | None = None
    starts: int = 0

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tideflow.cli",
            "serve",
            "--port",
            str(self.port),
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self.starts += 1
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as http:
            for _ in range(600):
                if self.process.returncode is not None:
                    raise AssertionError(f"tideflow serve exited with {self.process.returncode}")
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError("tideflow serve did not become healthy in 30 s")

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()


@dataclass
class Tally:
    """What the clients were told."""

    acks: dict[str, tuple[int, bool]] = field(default_factory=dict)
    retries: int = 0
    requests: int = 0
    target: int = 0
    reached: asyncio.Event = field(default_factory=asyncio.Event)

    def acknowledged(self, event_id: str, offset: int, duplicate: bool) -> None:
        self.acks[event_id] = (offset, duplicate)
        if len(self.acks) >= self.target:
            self.reached.set()

    async def wait_for_more(self, count: int) -> None:
        """Wait until ``count`` more events were acknowledged."""
        self.target = len(self.acks) + count
        self.reached.clear()
        await self.reached.wait()


@pytest.fixture
async def server(pg_url: str, tmp_path: Path) -> AsyncIterator[Server]:
    port = free_port()
    env = {**os.environ, "TIDEFLOW_DATABASE_URL": pg_url, "TIDEFLOW_HOME": str(tmp_path)}
    srv = Server(url=f"http://127.0.0.1:{port}", port=port, env=env)
    await srv.start()
    try:
        yield srv
    finally:
        if srv.process is not None and srv.process.returncode is None:
            await srv.kill()


def event(client: int, n: int) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"c{client}-{n}",
        "source": SOURCE,
        "type": "crash.test",
        "datacontenttype": "application/json",
        "data": {"client": client, "n": n},
    }


async def send_until_acknowledged(
    http: httpx.AsyncClient, events: list[dict[str, Any]], tally: Tally
) -> None:
    """Send (binary mode for one event, batched for more) until a 2xx; retry on broken links."""
    headers, body = encode_binary(events[0]) if len(events) == 1 else encode_batch(events)
    while True:
        tally.requests += 1
        try:
            response = await http.post("/events", headers=headers, content=body)
        except httpx.TransportError:
            tally.retries += 1
            await asyncio.sleep(0.05)  # the server is down: try again shortly
            continue
        if response.status_code >= 500:
            tally.retries += 1
            await asyncio.sleep(0.05)
            continue
        assert response.status_code == 202, response.text
        for sent, ack in zip(events, response.json()["events"], strict=True):
            tally.acknowledged(sent["id"], ack["offset"], ack["duplicate"])
        return


async def client_loop(
    url: str, number: int, stop: asyncio.Event, tally: Tally, auth: dict[str, str]
) -> int:
    """Send events until told to stop; return how many this client sent."""
    n = 0
    async with httpx.AsyncClient(base_url=url, timeout=10, headers=auth) as http:
        while not stop.is_set():
            size = 1 if n % 3 else 10
            await send_until_acknowledged(http, [event(number, n + i) for i in range(size)], tally)
            n += size
    return n


async def read_log(url: str, auth: dict[str, str]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=auth) as http:
        after = 0
        while True:
            page = (
                await http.get("/buses/default/events", params={"after": after, "limit": 1000})
            ).json()
            if not page["events"]:
                return records
            records.extend(page["events"])
            after = page["next"]


async def test_acknowledged_events_survive_sigkill(server: Server) -> None:
    tally = Tally()
    stop = asyncio.Event()
    auth = home_auth(Path(server.env["TIDEFLOW_HOME"]))
    clients = [
        asyncio.create_task(client_loop(server.url, c, stop, tally, auth)) for c in range(CLIENTS)
    ]
    for _ in range(KILLS):
        await asyncio.wait_for(tally.wait_for_more(200), 60)  # traffic flows: kill mid-stream
        await server.kill()
        await server.start()
    stop.set()
    sent = sum(await asyncio.gather(*clients))

    records = await read_log(server.url, auth)
    offsets = [r["offset"] for r in records]
    ids = [r["event"]["id"] for r in records]
    assert offsets == list(range(1, len(records) + 1)), "the log has a gap or is out of order"
    assert len(ids) == len(set(ids)), "an event was stored twice"
    assert len(tally.acks) == sent
    assert set(ids) == set(tally.acks), (
        "an acknowledged event is missing (or an unknown one is there)"
    )
    at = dict(zip(ids, offsets, strict=True))
    for event_id, (offset, _duplicate) in tally.acks.items():
        assert at[event_id] == offset, (
            f"{event_id} was acknowledged at {offset}, stored at {at[event_id]}"
        )
    assert server.starts == KILLS + 1
    assert tally.retries > 0, "no request was interrupted: the kills came at quiet moments"
