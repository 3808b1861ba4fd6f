"""Crash test of the durable runtime: ``tideflow serve`` is SIGKILLed with 500 instances running.

Each instance runs a 5-step workflow: four calls of a REST function on a
local test server that counts calls per ``Idempotency-Key``, and a 1 s
sleep in the middle. The server process is killed (SIGKILL: no shutdown,
nothing handed back) while the instances run, and a new one is started on
the same database (short leases, so it takes the dead process's instances
over quickly). Then every instance completes with the right output, none
is lost or duplicated, and no completed step's function is called again --
except the steps in flight at the kill, at most one per instance, which the
test counts and prints.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from tests.support.served import LOCAL, auth_for, copied_database, serve_process

pytestmark = pytest.mark.slow

INSTANCES = 500
CALL_STATES = ("S1", "S2", "S3", "S4")


class _Counting(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the runtime's client reuses connections
    counts: ClassVar[Counter[str]]
    lock: ClassVar[threading.Lock]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            self.counts[self.headers.get("Idempotency-Key", "")] += 1
        time.sleep(0.005)  # a little service time, so calls are in flight at the kill
        reply = json.dumps({"n": body["n"] + 1}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        return


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog of 5 resets connections under load
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # requests cut off by the SIGKILL are expected; the counts tell the story


@contextmanager
def counting_server() -> Iterator[tuple[str, Counter[str]]]:
    """A REST service on 127.0.0.1 that adds one and counts calls per idempotency key."""

    class Handler(_Counting):  # a class per server: its own counts
        counts: ClassVar[Counter[str]] = Counter()
        lock: ClassVar[threading.Lock] = threading.Lock()

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", Handler.counts
    finally:
        server.shutdown()
        server.server_close()


def five_steps(service: str) -> dict[str, Any]:
    def call(name: str, nxt: str | None) -> dict[str, Any]:
        return {
            "name": name,
            "type": "operation",
            "actions": [
                {
                    "functionRef": {"refName": "inc", "arguments": {"n": "${ .n }"}},
                    "actionDataFilter": {"results": "${ .n }", "toStateData": "${ .n }"},
                }
            ],
            **({"transition": nxt} if nxt else {"end": True}),
        }

    return {
        "id": "crash5",
        "version": "1",
        "specVersion": "0.8",
        "start": "S1",
        "functions": [{"name": "inc", "type": "custom", "operation": f"rest:POST:{service}/inc"}],
        "states": [
            call("S1", "S2"),
            call("S2", "Nap"),
            {"name": "Nap", "type": "sleep", "duration": "PT1S", "transition": "S3"},
            call("S3", "S4"),
            call("S4", None),
        ],
    }


@pytest.fixture
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    name = f"t_{_db_names[0]}_crash_runtime"
    async with copied_database(pg_server_url, pg_template, name) as url:
        yield url


async def _start_all(url: str) -> list[str]:
    gate = asyncio.Semaphore(50)
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=auth_for(url)) as http:

        async def one(n: int) -> str:
            async with gate:
                response = await http.post("/workflows/crash5/instances", json={"n": n})
                assert response.status_code == 201, response.text
                return str(response.json()["id"])

        return list(await asyncio.gather(*(one(n) for n in range(INSTANCES))))


async def _all_completed(url: str, ids: list[str], seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=auth_for(url)) as http:
        while True:
            shown = {}
            for instance_id in ids:
                shown[instance_id] = (await http.get(f"/instances/{instance_id}")).json()
            left = [i for i, body in shown.items() if body["status"] != "completed"]
            if not left:
                return shown
            bad = [shown[i] for i in left if shown[i]["status"] not in ("running", "waiting")]
            assert not bad, bad[:3]
            assert time.monotonic() < deadline, f"{len(left)} never completed: {shown[left[0]]}"
            await asyncio.sleep(0.5)


async def _told(url: str, instance_ids: list[str], logs: list[Path]) -> dict[str, Any]:
    """What the servers said of instances whose steps were called again: their timelines,
    and every warning or error logged."""
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=auth_for(url)) as http:
        timelines = {
            i: (await http.get(f"/instances/{i}/timeline")).json() for i in instance_ids[:3]
        }
    logged = [
        line
        for log in logs
        for line in log.read_text(errors="replace").splitlines()
        if "WARNING" in line or "ERROR" in line or any(i in line for i in instance_ids)
    ]
    return {"timelines": timelines, "logged": logged[:60]}


@pytest.mark.timeout(240)
async def test_sigkill_with_500_instances_running_loses_and_repeats_nothing(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIDEFLOW_LEASE_SECONDS", "3")
    flows = tmp_path / "flows"
    flows.mkdir()
    with counting_server() as (service, counts):
        (flows / "crash5.json").write_text(json.dumps(five_steps(service)))
        with serve_process(database, tmp_path, "--workflows", str(flows), *LOCAL) as first:
            ids = await _start_all(first.url)
            # Kill when some instances are past the sleep and most are not.
            while sum(counts.values()) < INSTANCES * 3 // 2:  # noqa: ASYNC110 -- another thread
                await asyncio.sleep(0.01)
            first.process.kill()
            first.process.wait(10)
        calls_at_kill = sum(counts.values())
        assert calls_at_kill < INSTANCES * len(CALL_STATES), "the kill came too late"
        with serve_process(database, tmp_path, "--workflows", str(flows), *LOCAL) as second:
            shown = await _all_completed(second.url, ids, seconds=150)
            repeated = {key: c for key, c in counts.items() if c > 1}
            per_instance = Counter(key.split("/")[0] for key in repeated)
            twice = sorted(i for i, c in per_instance.items() if c > 1)
            told = await _told(second.url, twice, [first.log, second.log]) if twice else None
    assert len(set(ids)) == INSTANCES
    for n, instance_id in enumerate(ids):
        assert shown[instance_id]["output"] == {"n": n + 4}, shown[instance_id]
    keys = {key for key in counts if key}
    assert len(keys) == INSTANCES * len(CALL_STATES)  # every step called, under its own key
    assert all(c == 2 for c in repeated.values()), repeated
    # at most one step per instance: the one in flight at the kill (else: what happened)
    assert not twice, json.dumps(
        {"again": sorted(k for k in repeated if k.split("/")[0] in twice), **(told or {})}, indent=1
    )
    print(
        f"\ncrash test: {calls_at_kill} calls before SIGKILL; "
        f"{len(repeated)} steps in flight at the kill were called again "
        f"({len(per_instance)} instances), no other step was"
    )
