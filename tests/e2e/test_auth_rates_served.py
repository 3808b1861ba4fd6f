"""Rate limits with a real ``tideflow serve`` and the real CLI.

Rates per hour, so that nothing depends on how fast the machine is: within
the test, no token gets a request back.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_auth_served import cli
from tests.support.auth import bearer
from tests.support.served import serve_process

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]  # CLI processes: see test_auth_served


def test_tokens_are_held_to_the_server_default_or_their_own_rate(
    pg_url: str, tmp_path: Path
) -> None:
    with serve_process(pg_url, tmp_path, "--rate-limit", "4/h") as server:
        made = cli(
            "tokens", "create", "slow", "--scope", "read", "--rate", "1/h",
            server=server.url, home=tmp_path,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        slow = made.stdout.strip()
        assert cli("workflows", "list", server=server.url, token=slow).returncode == 0
        refused = cli("workflows", "list", server=server.url, token=slow)
        assert refused.returncode == 1
        assert "(its limit is 1/h)" in refused.stderr
        assert "[HTTP 429]" in refused.stderr
        with server.client() as admin:  # the first admin token: the default, 4/h
            listed = admin.get("/tokens")  # its 2nd request (the CLI made the 1st)
            assert listed.status_code == 200
            [entry] = [t for t in listed.json()["tokens"] if t["name"] == "slow"]
            assert entry["rate"] == "1/h"
            assert [admin.get("/workflows").status_code for _ in range(3)] == [200, 200, 429]
            over = admin.get("/workflows")
            assert over.status_code == 429
            assert over.json()["type"] == "rate-limited"
            assert 1 <= int(over.headers["retry-after"]) <= 900  # a request back every 15 min
        assert httpx.get(f"{server.url}/healthz").status_code == 200  # never limited
        other = bearer(slow)  # each token has its own bucket: slow's is empty too
        assert httpx.get(f"{server.url}/workflows", headers=other).status_code == 429


def test_a_bad_rate_stops_the_server_at_start_or_the_token_at_creation(
    pg_url: str, tmp_path: Path
) -> None:
    with serve_process(pg_url, tmp_path) as server:
        bad = cli(
            "tokens", "create", "x", "--scope", "read", "--rate", "fast",
            server=server.url, home=tmp_path,
        )  # fmt: skip
        assert bad.returncode == 1
        assert "invalid rate 'fast'" in bad.stderr
        assert "[HTTP 400]" in bad.stderr
    command = [sys.executable, "-m", "tideflow.cli", "serve", "--rate-limit", "10/d"]
    environment = {**os.environ, "TIDEFLOW_HOME": str(tmp_path / "unused")}
    refused = subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=environment, check=False
    )
    assert refused.returncode == 2
    assert "--rate-limit / TIDEFLOW_RATE_LIMIT: invalid rate '10/d'" in refused.stderr
