"""Sealed secrets (``tideflow.secrets.sealed``): what stands for a secret inside a Temporal
workflow, how a call gets the value back, and which expressions a seal cannot carry."""

from __future__ import annotations

from typing import Any

import pytest

from tideflow.deploy import engine_problems
from tideflow.secrets import Redactor, refused_reads, seal, sealed_names, sealed_secrets, unseal

VALUES = {"token": "tok-123456", "db": {"user": "u", "password": "pw-98765"}, "port": 5432}
KEY = "0a1b2c3d4e5f"


def test_a_seal_names_its_secret_and_holds_no_value() -> None:
    seals = sealed_secrets(["token", "db"], KEY)
    assert seals == {"token": seal("token", KEY), "db": seal("db", KEY)}
    assert "tok-123456" not in str(seals)
    found = sealed_names({"a": [seals["db"], f"Bearer {seals['token']}"]}, KEY)
    assert found == ["db", "token"]
    assert sealed_names({"a": "no seal here", "b": 1}, KEY) == []
    assert sealed_names({"a": seals["db"]}, "ffff") == []  # another run's key


def test_unseal_puts_values_back_whole_or_inside_text() -> None:
    arguments = {
        "whole": seal("db", KEY),
        "text": f"Bearer {seal('token', KEY)}",
        "number": f"port={seal('port', KEY)}",
        "object": f"cfg:{seal('db', KEY)}",
        "missing": seal("absent", KEY),
        "inside": f"[{seal('absent', KEY)}]",
        "list": [seal("token", KEY), 7, None],
        seal("token", KEY): "as a key",
    }
    assert unseal(arguments, VALUES, KEY) == {
        "whole": VALUES["db"],
        "text": "Bearer tok-123456",
        "number": "port=5432",
        "object": 'cfg:{"user":"u","password":"pw-98765"}',
        "missing": None,
        "inside": "[]",
        "list": ["tok-123456", 7, None],
        "tok-123456": "as a key",
    }


def test_a_seal_of_another_key_is_left_as_text() -> None:
    """Data (an event, an input) carrying a seal it forged cannot ask a call for a secret."""
    forged = {"a": seal("token", "bad"), "b": f"x {seal('token', 'bad')}"}
    assert unseal(forged, VALUES, KEY) == forged


def test_seals_redact_to_the_mask_as_values_do() -> None:
    redactor = Redactor(sealed_secrets(["token"], KEY))
    shown = redactor.value({"x": seal("token", KEY), "y": f"Bearer {seal('token', KEY)}"})
    assert shown == {"x": "***", "y": "Bearer ***"}


@pytest.mark.parametrize(
    "expression",
    [
        "${ $SECRETS.token }",
        '${ $SECRETS["token"] }',
        "${ {x: $SECRETS, echoed: .echoed, digest: .digest} }",
        '${ "Bearer " + $SECRETS.token }',
        '${ "Bearer \\($SECRETS.token) for \\(.user.name)" }',
        "${ [$SECRETS.token, .items[0], null, 3] }",
        "$SECRET.token",  # SonataFlow, bare
        '${ {"k": $SECRETS.token} }',
    ],
)
def test_placing_a_secret_is_allowed(expression: str) -> None:
    assert refused_reads({"arguments": {"a": expression}}) == []


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("${ $SECRETS.token | length }", "computes on a secret"),
        ('${ $SECRETS.token == "x" }', "computes on a secret"),
        ("${ $SECRETS.token | @base64 }", "computes on a secret"),
        ('${ "\\($SECRETS.user):\\($SECRETS.pw)" | @base64 }', "computes on a secret"),
        ("${ ascii_downcase($SECRETS.token) }", "computes on a secret"),
        ("${ $SECRETS.db.password }", "reads into a secret"),
        ("${ $SECRETS.db[0] }", "reads into a secret"),
        ('${ "unbalanced \\($SECRETS.token" }', "computes on a secret"),
        (".flag and $SECRETS.on", "computes on a secret"),  # a bare condition
    ],
)
def test_computing_on_a_secret_is_refused_with_its_path(expression: str, reason: str) -> None:
    document: dict[str, Any] = {
        "description": "uses $SECRETS | length in prose: not an expression",
        "states": [{"name": "A"}, {"name": "B", "stateDataFilter": {"output": expression}}],
    }
    (read,) = refused_reads(document)
    assert read.path == ("states", 1, "stateDataFilter", "output")
    assert read.expression == expression
    assert reason in read.reason
    assert str(read).startswith(f"states[1].stateDataFilter.output: {expression!r} {reason}")


def test_only_the_temporal_engine_refuses_and_only_workflows_with_secrets() -> None:
    document = {"states": [{"stateDataFilter": {"output": "${ $SECRETS.k | length }"}}]}
    assert engine_problems("postgres", ["k"], document) == []
    assert engine_problems("temporal", [], document) == []
    (problem,) = engine_problems("temporal", ["k"], document)
    assert problem.path == ("states", 0, "stateDataFilter", "output")
    assert "computes on a secret" in problem.message
    header = {"dsl": "1.0.0", "namespace": "n", "name": "w", "version": "1"}
    placing = {"document": header, "do": [{"a": {"set": {"k": "${ $secrets.k }"}}}]}
    assert engine_problems("temporal", ["k"], placing) == []  # 1.0 runs on seals too
    computing = {"document": header, "do": [{"a": {"set": {"k": "${ $secrets.k | length }"}}}]}
    (refused,) = engine_problems("temporal", ["k"], computing)
    assert refused.path == ("do", 0, "a", "set", "k")
    assert "computes on a secret" in refused.message


@pytest.mark.parametrize(
    ("expression", "refused"),
    [
        ("${ $secrets.token }", False),
        ("${ {k: $secrets, u: .user} }", False),
        ('${ "Bearer \\($secrets.token)" }', False),
        ("${ $secrets.token | length }", True),
        ("${ $secrets.db.password }", True),
        ("${ $SECRETS.token | length }", False),  # not a 1.0 variable: nothing of the secrets
    ],
)
def test_dsl1_reads_its_secrets_as_secrets(expression: str, refused: bool) -> None:
    document = {
        "document": {"dsl": "1.0.0", "summary": "${ $secrets.x | length } in prose"},
        "do": [{"a": {"set": {"v": expression}}}],
    }
    assert [r.path for r in refused_reads(document, dsl1=True)] == (
        [("do", 0, "a", "set", "v")] if refused else []
    )


def test_dsl1_authentication_policies_read_from_a_secret_are_refused() -> None:
    document = {
        "use": {
            "authentications": {
                "named": {"basic": "creds"},
                "inline": {"bearer": {"token": "${ $secrets.token }"}},
            }
        },
        "do": [
            {
                "a": {
                    "call": "http",
                    "with": {"endpoint": {"uri": "u", "authentication": {"use": "named"}}},
                }
            },
            {
                "b": {
                    "call": "http",
                    "with": {"endpoint": {"uri": "u", "authentication": {"oauth2": {"use": "o"}}}},
                }
            },
        ],
    }
    reads = refused_reads(document, dsl1=True)
    assert [(r.path, r.expression) for r in reads] == [
        (("use", "authentications", "named", "basic"), "creds"),
        (("do", 1, "b", "with", "endpoint", "authentication", "oauth2"), "o"),
    ]
    assert all("authentication policy from a secret" in r.reason for r in reads)
