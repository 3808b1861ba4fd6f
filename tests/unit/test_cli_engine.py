"""The engine flags of ``tideflow serve`` and ``tideflow worker``: bad ones exit 2 with a reason
before anything starts (no database, no Temporal)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tideflow.cli import app
from tideflow.settings import Settings


def test_an_unknown_engine_is_refused() -> None:
    result = CliRunner().invoke(app, ["serve", "--engine", "kafka"])
    assert result.exit_code == 2
    assert "--engine kafka: one of postgres, temporal" in result.output


def test_the_temporal_engine_needs_an_address() -> None:
    result = CliRunner().invoke(app, ["serve", "--engine", "temporal"])
    assert result.exit_code == 2
    assert "--temporal-address" in result.output


def test_a_worker_runs_the_temporal_engine_only() -> None:
    result = CliRunner().invoke(app, ["worker"], env={"TIDEFLOW_ENGINE": ""})
    assert result.exit_code == 2
    assert "--engine temporal" in result.output


def test_the_engine_settings_come_from_the_environment() -> None:
    env = {
        "TIDEFLOW_ENGINE": "temporal",
        "TIDEFLOW_TEMPORAL_ADDRESS": "temporal.internal:7233",
        "TIDEFLOW_TEMPORAL_NAMESPACE": "flows",
        "TIDEFLOW_TEMPORAL_TASK_QUEUE": "tf",
    }
    settings = Settings.from_env(env)
    assert (settings.engine, settings.temporal_address) == ("temporal", "temporal.internal:7233")
    assert (settings.temporal_namespace, settings.temporal_task_queue) == ("flows", "tf")
    with pytest.raises(ValueError, match="TIDEFLOW_ENGINE"):
        Settings.from_env({"TIDEFLOW_ENGINE": "kafka"})


def test_a_workers_malformed_secret_grant_is_refused() -> None:
    args = ["worker", "--engine", "temporal", "--temporal-address", "127.0.0.1:1"]
    result = CliRunner().invoke(app, [*args, "--grant-secret", "no-equals-sign"])
    assert result.exit_code == 2
    assert "--grant-secret" in result.output
    assert "PATTERN=NAME,NAME" in result.output
