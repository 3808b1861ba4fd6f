"""Host, Origin and content-type checks, and the workflow id pattern (pure)."""

from __future__ import annotations

import pytest

from tideflow.auth.hygiene import (
    check_content_type,
    check_host,
    check_origin,
    host_name,
    is_loopback,
    server_names,
)
from tideflow.errors import MisdirectedRequest, PermissionDenied, UnsupportedMediaType
from tideflow.workflow.identifiers import workflow_id_problem


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8080", "127.0.0.1"),
        ("LocalHost", "localhost"),
        ("[::1]:8080", "::1"),
        ("example.com.", "example.com"),
        ("example.com:80", "example.com"),
    ],
)
def test_host_names(header: str, name: str) -> None:
    assert host_name(header) == name


def test_server_names_by_bind_address() -> None:
    assert server_names("127.0.0.1") == frozenset({"localhost", "127.0.0.1", "::1"})
    assert server_names("::1", ["tide.local"]) == frozenset(
        {"localhost", "127.0.0.1", "::1", "tide.local"}
    )
    assert server_names("0.0.0.0") is None
    assert server_names("0.0.0.0", ["tide.example"]) == frozenset(
        {"tide.example", "localhost", "127.0.0.1", "::1"}
    )
    assert server_names("10.1.2.3") == frozenset({"10.1.2.3"})
    assert is_loopback("127.0.0.2")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")


def test_foreign_or_missing_hosts_are_refused() -> None:
    names = server_names("127.0.0.1")
    check_host("127.0.0.1:8080", names)
    check_host("localhost:1234", names)
    for bad in ("evil.example", "evil.example:8080", None):
        with pytest.raises(MisdirectedRequest, match="not a name of this server"):
            check_host(bad, names)
    check_host("anything", None)


def test_origins_must_be_the_server_itself() -> None:
    check_origin(None, "127.0.0.1:8080")
    check_origin("http://127.0.0.1:8080", "127.0.0.1:8080")
    for bad in ("http://evil.example", "null", "http://127.0.0.1:9999", "file://x"):
        with pytest.raises(PermissionDenied, match="origin"):
            check_origin(bad, "127.0.0.1:8080")


def test_state_changing_bodies_need_a_non_simple_content_type() -> None:
    check_content_type("POST", "application/json", has_body=True)
    check_content_type("POST", "application/yaml; charset=utf-8", has_body=True)
    check_content_type("POST", None, has_body=False)  # cancel, suspend, ...
    check_content_type("GET", "text/plain", has_body=True)
    check_content_type("POST", "text/plain", has_body=True, binary_event=True)
    for bad in (
        None,
        "",
        "text/plain",
        "TEXT/PLAIN;charset=utf-8",
        "multipart/form-data; b=x",
        "application/x-www-form-urlencoded",
    ):
        with pytest.raises(UnsupportedMediaType):
            check_content_type("POST", bad, has_body=True)
    with pytest.raises(UnsupportedMediaType):
        check_content_type("DELETE", "text/plain", has_body=True)


@pytest.mark.parametrize("good", ["order-flow", "a", "ns.name", "v1_2.x-y", "A" * 127, "9lives"])
def test_valid_workflow_ids(good: str) -> None:
    assert workflow_id_problem(good) is None


@pytest.mark.parametrize(
    "bad", ["", "a/b", "a b", "x\r\nSet-Cookie: y", "ok\n", "-lead", ".hidden", "A" * 128, "é"]
)
def test_invalid_workflow_ids(bad: str) -> None:
    problem = workflow_id_problem(bad)
    assert problem is not None
    assert "1-127 letters" in problem
