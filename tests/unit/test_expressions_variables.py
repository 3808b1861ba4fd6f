"""``$SECRETS`` sources and ``$WORKFLOW``/``$CONST`` assembly, seen through real expressions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tideflow.errors import ConfigurationError
from tideflow.workflow.expressions import compile_expression
from tideflow.workflow.secrets import load_secrets, read_secrets_file, secret_env_names
from tideflow.workflow.variables import expression_variables, workflow_variable


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("API_KEY", ("TIDEFLOW_SECRET_API_KEY",)),
        ("apiKey", ("TIDEFLOW_SECRET_apiKey", "TIDEFLOW_SECRET_APIKEY")),
        ("db.password", ("TIDEFLOW_SECRET_db.password", "TIDEFLOW_SECRET_DB_PASSWORD")),
    ],
)
def test_secret_env_names(name: str, expected: tuple[str, ...]) -> None:
    assert secret_env_names(name) == expected


def test_load_secrets_from_the_environment() -> None:
    env = {
        "TIDEFLOW_SECRET_API_KEY": "k1",
        "TIDEFLOW_SECRET_DB_PASSWORD": "pw",
        "TIDEFLOW_SECRET_UNDECLARED": "never exposed",
        "PATH": "/bin",
    }
    assert load_secrets(["API_KEY", "db.password"], env=env) == {
        "API_KEY": "k1",
        "db.password": "pw",
    }


def test_exact_environment_name_wins_over_the_normalized_one() -> None:
    env = {"TIDEFLOW_SECRET_apiKey": "exact", "TIDEFLOW_SECRET_APIKEY": "normalized"}
    assert load_secrets(["apiKey"], env=env) == {"apiKey": "exact"}


def test_load_secrets_from_json_and_yaml_files(tmp_path: Path) -> None:
    json_file = tmp_path / "secrets.json"
    json_file.write_text(json.dumps({"token": "t", "db": {"user": "u"}, "other": 1}))
    yaml_file = tmp_path / "secrets.yaml"
    yaml_file.write_text("token: y\ndb:\n  user: yu\n")
    assert load_secrets(["token", "db"], env={}, secrets_file=json_file) == {
        "token": "t",
        "db": {"user": "u"},
    }
    assert load_secrets(["token", "db"], env={}, secrets_file=yaml_file) == {
        "token": "y",
        "db": {"user": "yu"},
    }


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    file = tmp_path / "s.yml"
    file.write_text("token: from-file\nother: o\n")
    env = {"TIDEFLOW_SECRET_TOKEN": "from-env"}
    assert load_secrets(["token", "other"], env=env, secrets_file=file) == {
        "token": "from-env",
        "other": "o",
    }


def test_missing_secrets_are_reported_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_secrets(["a.b", "present", "c"], env={"TIDEFLOW_SECRET_PRESENT": "x"})
    assert "secret(s) not found: a.b, c" in info.value.message
    assert "TIDEFLOW_SECRET_A_B" in info.value.message
    file = tmp_path / "empty.yaml"
    file.write_text("")
    with pytest.raises(ConfigurationError, match="or the secrets file"):
        load_secrets(["x"], env={}, secrets_file=file)
    assert load_secrets(["x", "present"], env={"TIDEFLOW_SECRET_PRESENT": "p"}, strict=False) == {
        "present": "p"
    }


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("s.json", "{not json", "invalid JSON at line 1"),
        ("s.yaml", "a: 1\nb: [unclosed\n", "invalid YAML at line 3"),
        ("s.yaml", "- a\n- b\n", "must hold an object of name: value, not list"),
    ],
)
def test_bad_secrets_files(tmp_path: Path, name: str, content: str, message: str) -> None:
    file = tmp_path / name
    file.write_text(content)
    with pytest.raises(ConfigurationError, match=message) as info:
        read_secrets_file(file)
    assert str(file) in info.value.message


def test_missing_secrets_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"cannot read secrets file .*nope\.json"):
        load_secrets(["a"], env={}, secrets_file=tmp_path / "nope.json")


def test_workflow_variable() -> None:
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert workflow_variable(
        id="greet", instance_id="i-1", name="Greet", version="1.0", start_time=started
    ) == {
        "id": "greet",
        "instanceId": "i-1",
        "name": "Greet",
        "version": "1.0",
        "startTime": "2026-01-02T01:04:05Z",
    }
    full = workflow_variable(
        id="w",
        instance_id="i-2",
        start_time="2026-01-02T00:00:00Z",
        parent_instance_id="i-1",
        key="order-7",
        attempt=2,
    )
    assert full["parentInstanceId"] == "i-1"
    assert full["key"] == "order-7"
    assert full["attempt"] == 2
    assert full["name"] is None


def test_every_variable_reaches_jq_and_jsonpath() -> None:
    secrets = load_secrets(["API_KEY"], env={"TIDEFLOW_SECRET_API_KEY": "k"})
    workflow = workflow_variable(
        id="greet", instance_id="i-1", start_time=datetime(2026, 1, 1, tzinfo=UTC)
    )
    variables = expression_variables({"greeting": "Hola"}, secrets, workflow, item={"n": 2})
    assert set(variables) == {"CONST", "SECRETS", "WORKFLOW", "item"}
    jq_expr = compile_expression(
        "${ [$CONST.greeting, $SECRETS.API_KEY, $WORKFLOW.instanceId, $WORKFLOW.startTime, "
        "$item.n, .x] }"
    )
    assert jq_expr.evaluate({"x": 1}, variables) == [
        "Hola",
        "k",
        "i-1",
        "2026-01-01T00:00:00Z",
        2,
        1,
    ]
    for text, expected in [
        ("$CONST.greeting", "Hola"),
        ("$SECRETS.API_KEY", "k"),
        ("$WORKFLOW.id", "greet"),
        ("$item.n", 2),
    ]:
        assert compile_expression(text, "jsonpath").evaluate({}, variables) == expected


def test_expression_variables_defaults() -> None:
    assert expression_variables() == {"CONST": {}, "SECRETS": {}, "WORKFLOW": {}}
