"""Two ``tideflow serve`` processes on one database share 1,000 instances, running none twice.

Each server deploys ``examples/workflows`` on start; half of the instances
are started through one server and half through the other, so both run a
share. The journal then shows every function call of every instance exactly
once (one row per step key), and every instance ends with the example's
output.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.served import auth_for, serve_process

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "workflows"
INSTANCES = 1000


async def _start_all(urls: list[str], body: dict[str, object]) -> list[str]:
    """Start INSTANCES instances, alternating servers, 32 requests at a time."""
    gate = asyncio.Semaphore(32)
    async with httpx.AsyncClient(timeout=60) as http:

        async def start(i: int) -> str:
            async with gate:
                url = urls[i % len(urls)]
                path = f"{url}/workflows/order-checkout/instances"
                response = await http.post(path, json=body, headers=auth_for(url))
                assert response.status_code == 201, response.text
                return str(response.json()["id"])

        return await asyncio.gather(*(start(i) for i in range(INSTANCES)))


async def _wait_all_ended(conn: asyncpg.Connection, seconds: float) -> dict[str, int]:
    deadline = time.monotonic() + seconds
    while True:
        rows = await conn.fetch("SELECT status, count(*) AS n FROM tideflow_instances GROUP BY 1")
        counts = {r["status"]: r["n"] for r in rows}
        ended = sum(n for s, n in counts.items() if s in ("completed", "failed", "cancelled"))
        if ended >= INSTANCES or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(0.25)


def _calls_run_by(url: str) -> float:
    """Function calls this server ran: the count of its step-latency histogram."""
    text = httpx.get(f"{url}/metrics", timeout=10, headers=auth_for(url)).text
    lines = [line for line in text.splitlines() if line.startswith("tideflow_step_seconds_count")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


@pytest.mark.timeout(300)
async def test_two_servers_share_a_thousand_instances_and_run_none_twice(
    pg_url: str, tmp_path: Path
) -> None:
    body = json.loads((EXAMPLES / "order-checkout.input.json").read_text())
    expected = json.loads((EXAMPLES / "order-checkout.output.json").read_text())
    args = ("--workflows", str(EXAMPLES))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        serve_process(pg_url, tmp_path / "a", *args) as one,
        serve_process(pg_url, tmp_path / "b", *args, token=one.token) as two,
    ):
        ids = await _start_all([one.url, two.url], body)
        conn = await asyncpg.connect(pg_url)
        try:
            counts = await _wait_all_ended(conn, seconds=240)
            assert counts == {"completed": INSTANCES}, counts
            outputs = await conn.fetch(
                "SELECT output FROM tideflow_instances WHERE id = ANY($1::text[])", ids
            )
            repeated = await conn.fetchval(
                "SELECT count(*) FROM (SELECT instance_id, run_no, step_key FROM tideflow_journal"
                " WHERE op = 'call' GROUP BY 1, 2, 3 HAVING count(*) > 1) AS d"
            )
            calls = await conn.fetchval("SELECT count(*) FROM tideflow_journal WHERE op = 'call'")
        finally:
            await conn.close()
        shares = [_calls_run_by(server.url) for server in (one, two)]
    assert all(share > 0 for share in shares), shares  # both servers ran a share
    assert sum(shares) >= 3 * INSTANCES
    assert len(set(ids)) == INSTANCES
    assert len(outputs) == INSTANCES
    assert all(json.loads(row["output"]) == expected for row in outputs)
    assert repeated == 0
    assert calls == 3 * INSTANCES  # total, shipping quote, charge: each once per instance
