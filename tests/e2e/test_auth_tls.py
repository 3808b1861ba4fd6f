"""TLS with a real ``tideflow serve --tls-cert/--tls-key`` and the real CLI.

The certificate is self-signed, made in the test for 127.0.0.1; the CLI
trusts it through ``--ca-cert`` or ``TIDEFLOW_CA_CERT`` and refuses the
server without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_auth_served import EXAMPLES, cli
from tests.support.served import serve_process
from tests.support.tls import self_signed
from tideflow.api.testserver import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]  # CLI processes: see test_auth_served


def test_the_server_speaks_https_and_the_cli_trusts_the_given_authority(
    pg_url: str, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    with serve_process(pg_url, tmp_path, *tls, ca_cert=cert) as server:
        assert server.url.startswith("https://127.0.0.1:")
        hello = str(EXAMPLES / "hello-world.yaml")
        deployed = cli("--ca-cert", str(cert), "workflows", "deploy", hello, server=server.url,
                       home=tmp_path)  # fmt: skip
        assert deployed.returncode == 0, deployed.stderr
        trust = {"TIDEFLOW_CA_CERT": str(cert)}
        listed = cli("workflows", "list", server=server.url, home=tmp_path, env=trust)
        assert listed.returncode == 0, listed.stderr
        assert "hello-world" in listed.stdout
        untrusted = cli("workflows", "list", server=server.url, home=tmp_path)
        assert untrusted.returncode == 1
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
        assert len(untrusted.stderr.strip().splitlines()) == 1
        with server.client() as http:
            assert http.get("/workflows").status_code == 200
        plain = server.url.replace("https://", "http://")
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{plain}/healthz", timeout=10)  # no plain HTTP on a TLS port


def serve_exits(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tideflow.cli", "serve", "--port", str(free_port()), *args]
    environment = {**os.environ, "TIDEFLOW_HOME": str(home)}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=environment, check=False
    )


def test_unusable_tls_files_stop_the_server_before_it_starts(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    _, other_key = self_signed(tmp_path, "other")
    home = tmp_path / "home"
    cases = {
        ("--tls-cert", str(cert)): "--tls-cert and --tls-key go together",
        ("--tls-cert", str(cert), "--tls-key", str(tmp_path / "nope.key")): "no such file",
        ("--tls-cert", str(cert), "--tls-key", str(other_key)): "cannot use certificate",
        ("--tls-cert", str(key), "--tls-key", str(key)): "cannot use certificate",
    }
    for args, message in cases.items():
        done = serve_exits(home, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr, (args, done.stderr)
    assert not home.exists()  # stopped before anything started
