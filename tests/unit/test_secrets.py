"""Secrets: grants, references, the source of values, and redaction (pure parts)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import pytest

from tideflow.errors import InvalidArgument, SecretUnavailable
from tideflow.runtime.hosts.local import LocalHost, LocalOptions
from tideflow.runtime.result import Completed, Failed, Step
from tideflow.secrets import (
    ALL,
    MASK,
    NO_REDACTION,
    Grant,
    Redactor,
    SecretSource,
    make_grant,
    parse_grant,
    parse_grants,
    ref_names,
    refused,
    resolve_refs,
    secret_ref,
)
from tideflow.workflow import load_workflow
from tideflow.workflow.dsl1 import load_document
from tideflow.workflow.expressions import compile_expression

# --- grants ----------------------------------------------------------------------


def test_a_grant_is_pattern_equals_names() -> None:
    grant = parse_grant(" orders.* = API_KEY, DB_PASSWORD ")
    assert grant == Grant("orders.*", ("API_KEY", "DB_PASSWORD"))
    assert str(grant) == "orders.*=API_KEY,DB_PASSWORD"
    assert grant.to_json() == {"pattern": "orders.*", "secrets": ["API_KEY", "DB_PASSWORD"]}


@pytest.mark.parametrize(
    ("subject", "name", "covered"),
    [
        ("orders.create", "API_KEY", True),
        ("orders.create", "DB_PASSWORD", True),
        ("orders.create", "OTHER", False),
        ("orders", "API_KEY", False),  # "orders.*" needs the dot
        ("billing", "API_KEY", False),
        ("xorders.create", "API_KEY", False),  # anchored at the start
    ],
)
def test_a_grant_covers_matching_subjects_and_names(subject: str, name: str, covered: bool) -> None:
    assert parse_grant("orders.*=API_KEY,DB_PASSWORD").covers(subject, name) is covered


def test_refused_names_the_secrets_no_grant_covers_in_order() -> None:
    grants = parse_grants(["orders=API_KEY;billing=STRIPE_*", "*=PUBLIC"])
    assert refused(grants, "orders", ["API_KEY", "STRIPE_KEY", "PUBLIC", "DB"]) == [
        "STRIPE_KEY",
        "DB",
    ]
    assert refused(grants, "billing", ["STRIPE_KEY", "STRIPE_KEY", "API_KEY"]) == ["API_KEY"]
    assert refused((), "orders", ["A"]) == ["A"]
    assert refused((ALL,), "anything", ["A", "B"]) == []


def test_sink_subjects_are_matched_like_workflow_ids() -> None:
    grants = parse_grants(["sink:hooks.example=HOOK_AUTH"])
    assert refused(grants, "sink:hooks.example", ["HOOK_AUTH"]) == []
    assert refused(grants, "sink:evil.example", ["HOOK_AUTH"]) == ["HOOK_AUTH"]
    assert refused(grants, "hooks.example", ["HOOK_AUTH"]) == ["HOOK_AUTH"]


@pytest.mark.parametrize(
    ("text", "argument"),
    [
        ("API_KEY", "grant"),  # no '='
        ("=API_KEY", "pattern"),
        ("a/b=API_KEY", "pattern"),
        ("orders=", "secrets"),
        ("orders=a b", "secrets"),
    ],
)
def test_malformed_grants_are_refused_naming_the_part(text: str, argument: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_grant(text)
    assert caught.value.argument == argument


def test_make_grant_checks_api_bodies() -> None:
    assert make_grant("a", ["X", "X", "Y"]).names == ("X", "Y")
    for names in ("X", [], [1], None):
        with pytest.raises(InvalidArgument):
            make_grant("a", names)


# --- references ------------------------------------------------------------------


def test_references_are_found_and_resolved_anywhere() -> None:
    config = {
        "url": "https://x",
        "headers": {"authorization": secret_ref("HOOK"), "x-n": "1"},
        "list": [{"secret": "OTHER"}, {"secret": "HOOK"}],
        "not-a-ref": {"secret": "A", "more": 1},
    }
    assert ref_names(config) == ("HOOK", "OTHER")
    values = {"HOOK": "Bearer t0ken", "OTHER": {"k": 1}}
    assert resolve_refs(config, values.__getitem__) == {
        "url": "https://x",
        "headers": {"authorization": "Bearer t0ken", "x-n": "1"},
        "list": [{"k": 1}, "Bearer t0ken"],
        "not-a-ref": {"secret": "A", "more": 1},
    }


@pytest.mark.parametrize("name", [1, "", "a b", "x" * 200, None])
def test_a_malformed_reference_is_an_error_at_its_path(name: object) -> None:
    with pytest.raises(InvalidArgument) as caught:
        ref_names({"headers": {"authorization": {"secret": name}}}, "config")
    assert caught.value.argument == "config.headers.authorization"


# --- the source --------------------------------------------------------------------


def test_the_source_reads_the_environment_before_the_file(tmp_path: Path) -> None:
    file = tmp_path / "secrets.yaml"
    file.write_text("token: from-file\ndb: {user: u, password: p}\n")
    source = SecretSource(env={"TIDEFLOW_SECRET_TOKEN": "from-env"}, file=file)
    assert source.values(["token", "db", "missing"]) == {
        "token": "from-env",
        "db": {"user": "u", "password": "p"},
    }
    assert source.value("db") == {"user": "u", "password": "p"}
    file.write_text("token: changed\n")  # read at each look-up: no restart needed
    assert SecretSource(env={}, file=file).value("token") == "changed"


def test_a_missing_secret_is_named_never_valued(tmp_path: Path) -> None:
    with pytest.raises(SecretUnavailable) as caught:
        SecretSource(env={}, file=None).value("db.password")
    assert caught.value.name == "db.password"
    assert "TIDEFLOW_SECRET_DB_PASSWORD" in caught.value.message


# --- redaction -----------------------------------------------------------------------


def test_redaction_replaces_secrets_anywhere_in_a_value() -> None:
    redactor = Redactor({"API_KEY": "hunter2-key", "db": {"user": "admin", "port": 54321}})
    value = {
        "x": {"API_KEY": "hunter2-key", "db": {"user": "admin", "port": 54321}},
        "header": "Bearer hunter2-key",
        "hunter2-key": ["a", "b"],
        "error": 'cannot parse "hunter2-key" as a number',
        "unrelated": "administrator",  # contains "admin": redacted inside, see below
        "number": 54322,
        "flag": True,
    }
    assert redactor.value(value) == {
        "x": {"API_KEY": MASK, "db": {"user": MASK, "port": MASK}},
        "header": f"Bearer {MASK}",
        MASK: ["a", "b"],
        "error": f'cannot parse "{MASK}" as a number',
        "unrelated": f"{MASK}istrator",
        "number": 54322,
        "flag": True,
    }


def test_short_secrets_are_redacted_only_as_whole_strings() -> None:
    redactor = Redactor({"PIN": "42a"})
    assert redactor.value({"pin": "42a", "text": "x42ay"}) == {"pin": MASK, "text": "x42ay"}


@pytest.mark.parametrize(
    "expression",
    [
        "$SECRETS.KEY",
        "{x: $SECRETS}",
        '"pre-" + $SECRETS.KEY + "-post"',
        "$SECRETS | tojson",
        "$SECRETS.KEY | @uri",
        "$SECRETS.KEY | @base64",
        '$SECRETS.KEY + "tail" | @base64',
        "[$SECRETS.KEY] | tostring",
    ],
)
def test_the_encodings_jq_makes_in_one_step_are_caught(expression: str) -> None:
    secrets = {"KEY": 'p@ss w/"quotes" é'}
    produced = compile_expression(expression).evaluate({}, {"SECRETS": secrets})
    redacted = json.dumps(Redactor(secrets).value(produced))
    assert "p@ss" not in redacted
    assert base64.b64encode(secrets["KEY"].encode()).decode()[:12] not in redacted
    assert quote(secrets["KEY"], safe="")[:8] not in redacted


@pytest.mark.parametrize(
    "expression",
    ["$SECRETS.KEY | ascii_downcase", "$SECRETS.KEY[2:]", "$SECRETS.KEY | explode"],
)
def test_other_transformations_are_not_caught_as_documented(expression: str) -> None:
    secrets = {"KEY": "HunterTwo"}
    produced = compile_expression(expression).evaluate({}, {"SECRETS": secrets})
    assert Redactor(secrets).value(produced) == produced


def test_a_workflow_without_secrets_redacts_nothing() -> None:
    value = {"a": [1, "b"]}
    assert not NO_REDACTION
    assert NO_REDACTION.value(value) is value
    assert Redactor({"EMPTY": ""}).value({"a": ""}) == {"a": ""}


# --- SonataFlow's $SECRET, and the local host ------------------------------------------

SONATA = {
    "id": "sonata",
    "version": "1",
    "specVersion": "0.8",
    "secrets": ["DECLARED"],
    "start": "Only",
    "states": [
        {
            "name": "Only",
            "type": "inject",
            "data": {},
            "stateDataFilter": {
                "output": '${ {k: ($SECRET.api_key + "/" + $SECRET["my.prop"]), n: $SECRETS} }'
            },
            "end": True,
        }
    ],
}


def test_the_sonataflow_dialect_declares_what_secret_reads() -> None:
    plain = load_workflow(json.dumps(SONATA))
    assert plain.secrets == ("DECLARED",)
    lenient = load_workflow(json.dumps(SONATA), dialect="sonataflow")
    assert lenient.secrets == ("DECLARED", "api_key", "my.prop")


async def test_the_local_host_gives_secret_and_redacts_its_output(tmp_path: Path) -> None:
    values = {"DECLARED": "declared-1", "api_key": "key-12345", "my.prop": "prop-67890"}
    workflow = load_workflow(json.dumps(SONATA), dialect="sonataflow")
    options = LocalOptions(secrets=values, dialect="sonataflow")
    async with LocalHost(options) as host:
        ran = await host.run(workflow, {}, tmp_path)
    assert isinstance(ran.result, Completed)
    assert ran.result.output == {"k": "***/***", "n": dict.fromkeys(values, "***")}


DSL1: dict[str, Any] = {
    "document": {"dsl": "1.0.3", "namespace": "test", "name": "leaky", "version": "1.0.0"},
    "use": {"secrets": ["apiKey"]},
    "do": [
        {"show": {"set": {"x": "${ $secrets }", "y": '${ "Bearer " + $secrets.apiKey }'}}},
        {"fail": {"set": {"z": "${ $secrets.apiKey | tonumber }"}}},
    ],
}


async def _run_dsl1(document: dict[str, Any], tmp_path: Path) -> tuple[Any, list[Step]]:
    model, _ = load_document(document, source="test", processes=False)
    steps: list[Step] = []
    options = LocalOptions(secrets={"apiKey": "k-1.0-secret"}, on_step=steps.append)
    async with LocalHost(options) as host:
        ran = await host.run(cast(Any, model), {}, tmp_path)
    return ran.result, steps


async def test_a_dsl1_workflow_is_redacted_too(tmp_path: Path) -> None:
    shows = {**DSL1, "do": DSL1["do"][:1]}
    completed, _ = await _run_dsl1(shows, tmp_path)
    assert isinstance(completed, Completed)
    assert completed.output == {"x": {"apiKey": "***"}, "y": "Bearer ***"}
    failed, steps = await _run_dsl1(DSL1, tmp_path)
    assert isinstance(failed, Failed)
    quoted = 'string ("***") cannot be parsed as a number'
    assert quoted in failed.error.message
    assert failed.error.details is not None
    assert quoted in failed.error.details["detail"]
    faulted = [s.detail for s in steps if s.kind == "task.faulted"]
    assert quoted in faulted[0]["error"]["detail"]
    assert "k-1.0-secret" not in json.dumps([failed.error.to_json(), [s.detail for s in steps]])
