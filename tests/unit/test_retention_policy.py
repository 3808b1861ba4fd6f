"""History retention rules: parsing --retention / TIDEFLOW_RETENTION and choosing per workflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tideflow.errors import InvalidArgument
from tideflow.runtime.retention import DEFAULT_RETENTION, RetentionPolicy, parse_retention
from tideflow.settings import Settings

NOW = datetime(2026, 12, 6, tzinfo=UTC)


def test_no_entry_keeps_ended_instances_for_the_default() -> None:
    policy = parse_retention(())
    assert policy == RetentionPolicy()
    assert policy.keep("anything") == DEFAULT_RETENTION == timedelta(days=30)


def test_patterns_first_match_and_a_default() -> None:
    policy = parse_retention(["orders.*=P90D", "orders.audit=forever", "PT12H", "scratch=PT1H"])
    assert policy.keep("orders.audit") == timedelta(days=90)  # the first match wins
    assert policy.keep("orders.eu") == timedelta(days=90)
    assert policy.keep("scratch") == timedelta(hours=1)
    assert policy.keep("other") == timedelta(hours=12)
    assert policy.keep("ordersX") == timedelta(hours=12)  # '.' is a literal dot


def test_the_environment_form_is_comma_separated_and_the_first_default_wins() -> None:
    settings = Settings.from_env({"TIDEFLOW_RETENTION": "audit.*=forever, P7D"})
    flags = ["P1D"]  # tideflow serve puts its flags before the variable's entries
    policy = parse_retention([*flags, *settings.retention])
    assert policy.keep("audit.x") is None
    assert policy.keep("other") == timedelta(days=1)


def test_cutoffs_leave_out_what_is_kept_forever() -> None:
    policy = parse_retention(["keep=forever", "P1D"])
    ids, cutoffs = policy.cutoffs(["a", "keep", "b"], NOW)
    assert ids == ["a", "b"]
    assert cutoffs == [NOW - timedelta(days=1)] * 2
    assert parse_retention(["forever"]).cutoffs(["a"], NOW) == ([], [])


def test_describe_names_every_rule() -> None:
    assert parse_retention(["a*=PT1H", "forever"]).describe() == "a*=PT1H, forever"
    assert parse_retention(["a=PT90M"]).describe() == "a=PT5400S, P30D"


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("30 days", "ISO 8601"),
        ("orders=", "ISO 8601"),
        ("orders=PT0S", "at least a second"),
        ("orders=-P1D", "at least a second"),
        ("or ders=P1D", "pattern"),
        ("=P1D", "pattern"),
    ],
)
def test_a_malformed_entry_is_named(entry: str, says: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_retention([entry])
    assert entry.strip() in str(caught.value)
    assert says in str(caught.value)


@pytest.mark.parametrize(
    ("flags", "env"), [(["--retention", "30 days"], None), ([], "orders=P1D,soon")]
)
def test_serve_refuses_a_malformed_retention_before_starting(
    flags: list[str], env: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from tideflow.cli import app

    monkeypatch.delenv("TIDEFLOW_RETENTION", raising=False)
    if env is not None:
        monkeypatch.setenv("TIDEFLOW_RETENTION", env)
    result = CliRunner().invoke(app, ["serve", *flags])
    assert result.exit_code == 2
    assert "--retention / TIDEFLOW_RETENTION" in result.output
    assert "ISO 8601" in result.output
