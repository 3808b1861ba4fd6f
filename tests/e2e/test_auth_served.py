"""Tokens with a real ``tideflow serve`` process and the real CLI.

The first start prints the first admin token once and saves it (0600) in
TIDEFLOW_HOME, where the CLI finds it; ``tideflow tokens`` makes, lists and
revokes tokens; ``--insecure-local`` works on loopback only and says so; a
server on a non-loopback address always needs tokens.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.served import ROOT, serve_process
from tideflow.api.testserver import free_port

# A real server plus one CLI process per step, each importing the package: on a
# loaded machine such a test takes most of a minute.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

EXAMPLES = ROOT / "examples" / "workflows"


def cli(
    *args: str,
    server: str,
    home: Path | None = None,
    token: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it (TIDEFLOW_HOME, TIDEFLOW_TOKEN and ``env`` only as given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEFLOW_")} | (env or {})
    env["TIDEFLOW_HOME"] = str(home or ROOT / "no-such-home")
    if token is not None:
        env["TIDEFLOW_TOKEN"] = token
    command = [sys.executable, "-m", "tideflow.cli", *args, "--server", server]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=90, cwd=ROOT, env=env, check=False
    )


def test_the_first_token_is_printed_once_saved_privately_and_used_by_the_cli(
    pg_url: str, tmp_path: Path
) -> None:
    with serve_process(pg_url, tmp_path) as server:
        saved = tmp_path / "admin-token"
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
        assert saved.read_text().strip() == server.token
        assert server.output().count(server.token) == 1
        deploy = ("workflows", "deploy", str(EXAMPLES / "hello-world.yaml"))
        done = cli(*deploy, server=server.url, home=tmp_path)  # the README's commands
        assert done.returncode == 0, done.stderr
        none = cli("workflows", "list", server=server.url)
        assert none.returncode == 1
        assert "[HTTP 401]" in none.stderr
        assert len(none.stderr.strip().splitlines()) == 1
    with serve_process(pg_url, tmp_path) as again:
        assert again.token == server.token
        assert "first admin token" not in again.output()


def test_tokens_commands_make_list_and_revoke(pg_url: str, tmp_path: Path) -> None:
    with serve_process(pg_url, tmp_path) as server:
        made = cli("tokens", "create", "ci", "--scope", "read", server=server.url, home=tmp_path)
        assert made.returncode == 0, made.stderr
        ci = made.stdout.strip()
        assert ci.startswith("tf_")
        assert "shown once" in made.stderr
        listed = cli("tokens", "list", server=server.url, home=tmp_path)
        assert "\tci\tread\t" in listed.stdout
        assert ci not in listed.stdout
        assert server.token not in listed.stdout
        assert cli("workflows", "list", server=server.url, token=ci).returncode == 0
        deploy = ("workflows", "deploy", str(EXAMPLES / "hello-world.yaml"))
        refused = cli(*deploy, server=server.url, token=ci)
        assert refused.returncode == 1
        assert "does not have the scope 'deploy' [HTTP 403]" in refused.stderr
        assert cli("tokens", "list", server=server.url, token=ci).returncode == 1  # admin only
        token_id = ci.split("_")[1]
        revoked = cli("tokens", "revoke", token_id, server=server.url, home=tmp_path)
        assert revoked.stdout.strip() == f"revoked token {token_id}"
        after = cli("workflows", "list", server=server.url, token=ci)
        assert (after.returncode, "[HTTP 401]" in after.stderr) == (1, True)


def test_insecure_local_needs_no_token_and_says_so(pg_url: str, tmp_path: Path) -> None:
    with serve_process(pg_url, tmp_path, "--insecure-local") as server:
        assert server.token == ""
        assert not (tmp_path / "admin-token").exists()
        assert "WARNING: --insecure-local" in server.output()
        yaml = {"content-type": "application/yaml"}
        hello = (EXAMPLES / "hello-world.yaml").read_text()
        deployed = httpx.post(f"{server.url}/workflows", content=hello, headers=yaml)
        assert deployed.status_code == 201, deployed.text
        assert httpx.get(f"{server.url}/workflows").status_code == 200
        # without tokens, Host, Origin and content type still stop a web page
        plain = httpx.post(f"{server.url}/workflows", content=hello)
        assert plain.status_code == 415
        foreign = httpx.get(f"{server.url}/workflows", headers={"host": "evil.example"})
        assert foreign.status_code == 421
        cross = httpx.post(
            f"{server.url}/workflows/hello-world/instances",
            json={},
            headers={"origin": "http://evil.example"},
        )
        assert cross.status_code == 403


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--host", "0.0.0.0", "--insecure-local"], {}),
        (["--host", "192.0.2.1"], {"TIDEFLOW_INSECURE_LOCAL": "1"}),
    ],
)
def test_insecure_local_is_refused_off_loopback(
    args: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "tideflow.cli", "serve", "--port", str(free_port()), *args]
    environment = {**os.environ, "TIDEFLOW_HOME": str(tmp_path), **env}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=environment, check=False
    )
    assert done.returncode == 2
    assert "--insecure-local only works on a loopback address" in done.stderr
    assert not list(tmp_path.iterdir())  # stopped before anything started


def test_a_server_on_all_addresses_needs_tokens(pg_url: str, tmp_path: Path) -> None:
    with serve_process(pg_url, tmp_path, "--host", "0.0.0.0") as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        assert httpx.get(f"{server.url}/workflows").status_code == 401
        assert httpx.get(f"{server.url}/workflows", headers=server.auth).status_code == 200
