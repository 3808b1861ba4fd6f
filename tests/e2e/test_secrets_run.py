"""Secrets under ``tideflow run``: every secret is the local user's, the secrets file is read,
and what the run prints (output, error, timeline) still shows ``***`` for them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tideflow.cli import app

WORKFLOW: dict[str, Any] = {
    "id": "local-secrets",
    "version": "1",
    "specVersion": "0.8",
    "secrets": ["token", "db"],
    "start": "Only",
    "states": [
        {
            "name": "Only",
            "type": "inject",
            "data": {},
            "stateDataFilter": {
                "output": "${ {lengths: [($SECRETS.token, $SECRETS.db.password) | length], "
                "shown: $SECRETS} }"
            },
            "end": True,
        }
    ],
}
FAILING = {
    **WORKFLOW,
    "states": [
        {**WORKFLOW["states"][0], "stateDataFilter": {"output": "${ $SECRETS.token | tonumber }"}}
    ],
}


@pytest.fixture
def secrets_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    file = tmp_path / "secrets.yaml"
    file.write_text("token: tok-from-file-123\ndb: {password: pw-from-file-4567}\n")
    monkeypatch.setenv("TIDEFLOW_SECRETS_FILE", str(file))
    return file


def test_run_reads_the_secrets_file_and_prints_them_redacted(
    tmp_path: Path, secrets_file: Path
) -> None:
    definition = tmp_path / "wf.json"
    definition.write_text(json.dumps(WORKFLOW))
    result = CliRunner().invoke(app, ["run", str(definition), "--timeline"])
    assert result.exit_code == 0, result.output
    output = json.loads(result.stdout)
    assert output["lengths"] == [len("tok-from-file-123"), len("pw-from-file-4567")]
    assert output["shown"] == {"token": "***", "db": {"password": "***"}}
    assert "from-file" not in result.output  # stdout and the --timeline on stderr


def test_a_failing_run_names_no_secret(tmp_path: Path, secrets_file: Path) -> None:
    definition = tmp_path / "wf.json"
    definition.write_text(json.dumps(FAILING))
    result = CliRunner().invoke(app, ["run", str(definition)])
    assert result.exit_code == 1
    assert 'string ("***") cannot be parsed as a number' in result.output
    assert "from-file" not in result.output


@pytest.mark.parametrize("grant", ["API_KEY", "a/b=API_KEY", "orders="])
def test_serve_refuses_a_malformed_grant_before_starting(
    grant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIDEFLOW_SECRET_GRANTS", raising=False)
    result = CliRunner().invoke(app, ["serve", "--grant-secret", grant])
    assert result.exit_code == 2
    assert "--grant-secret / TIDEFLOW_SECRET_GRANTS" in result.output
