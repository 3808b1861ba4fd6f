"""Fast recovery: a restarted ``tideflow serve`` continues its own instances at once.

30 instances sleep 2 s (in memory, leased by the server); the server is
stopped and started again on the same port and home, so with the same node
id. Leases are 30 s here (``TIDEFLOW_LEASE_SECONDS``): waiting them out would
take far longer than the 10 s the issue allows, so only a restart that takes
its own leases back at once passes.

- SIGKILL: nothing is handed back; the restarted server says it reclaimed
  the 30 and every instance completes within 10 s of it being ready.
- SIGTERM: the server drains (exit 0) and holds no lease afterwards; the
  restarted one finds nothing to recover and every instance still completes
  within 10 s of it being ready, none before its sleep's due time.
"""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.support.served import Served, copied_database, serve_process
from tideflow.api.testserver import free_port

pytestmark = pytest.mark.slow

INSTANCES = 30
NAP = {
    "id": "nap",
    "version": "1",
    "specVersion": "0.8",
    "start": "Nap",
    "states": [
        {"name": "Nap", "type": "sleep", "duration": "PT2S", "transition": "Done"},
        {"name": "Done", "type": "inject", "data": {"woke": True}, "end": True},
    ],
}


@pytest.fixture
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    async with copied_database(pg_server_url, pg_template, f"t_{_db_names[0]}_restart") as url:
        yield url


def _napping(server: Served) -> list[str]:
    """Deploy the napping workflow and start the instances; return once each sleeps."""
    with server.client() as http:
        assert http.post("/workflows", json=NAP).status_code == 201
        inputs = [{"n": n} for n in range(INSTANCES)]
        batch = http.post("/workflows/nap/instances:batch", json={"inputs": inputs})
        assert batch.status_code == 201, batch.text
        ids = [row["id"] for row in batch.json()["instances"]]
        deadline = time.monotonic() + 30
        for instance_id in ids:
            while http.get(f"/instances/{instance_id}").json()["currentState"] != "Nap":
                assert time.monotonic() < deadline, "the instances never began their sleep"
                time.sleep(0.05)
    return ids


def _all_complete(server: Served, ids: list[str], within: float) -> list[dict[str, Any]]:
    """Every instance as it is once completed; fails if one is not within ``within`` s."""
    deadline = time.monotonic() + within
    shown: list[dict[str, Any]] = []
    with server.client() as http:
        for instance_id in ids:
            left = max(0.0, deadline - time.monotonic())
            row = http.get(f"/instances/{instance_id}", params={"wait": left}).json()
            assert row["status"] == "completed", f"{instance_id} not completed in {within} s: {row}"
            shown.append(row)
    assert time.monotonic() <= deadline + 1  # the last answer came by the deadline
    return shown


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def _leased(database: str) -> int:
    conn = await asyncpg.connect(database)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM tideflow_instances WHERE lease_owner IS NOT NULL"
        )
        return count
    finally:
        await conn.close()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
async def test_a_restart_continues_its_sleeping_instances_at_once(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sig: signal.Signals
) -> None:
    monkeypatch.setenv("TIDEFLOW_LEASE_SECONDS", "30")
    port = free_port()  # the same port and home: the same node id after the restart
    with serve_process(database, tmp_path, port=port) as first:
        ids = _napping(first)
        first.process.send_signal(sig)
        code = first.process.wait(30)
    if sig == signal.SIGTERM:
        assert code == 0, first.output()[-3000:]
        assert "SIGTERM: draining" in first.output()
        assert await _leased(database) == 0  # every lease released by the drain
    else:
        assert await _leased(database) == INSTANCES
    with serve_process(database, tmp_path, port=port) as second:
        shown = _all_complete(second, ids, within=10)
        log = second.output()
    node = log.split(": node ", 1)[1].split(",", 1)[0]
    assert node in first.output()
    if sig == signal.SIGKILL:
        assert f"reclaimed {INSTANCES} instance(s) its previous run left running" in log
    else:
        assert "nothing to recover from a previous run" in log
    for row in shown:
        assert row["output"] == {"n": row["input"]["n"], "woke": True}
        slept = (_when(row["endedAt"]) - _when(row["startedAt"])).total_seconds()
        assert slept >= 2.0, row  # no sleep ends before its due time
