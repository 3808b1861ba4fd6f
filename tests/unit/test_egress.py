"""The egress policy (pure): addresses, networks, ports, IPv6, names, local documents."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tideflow.cli import app
from tideflow.egress import AllowEntry, EgressPolicy, address_kind
from tideflow.errors import EgressDenied, InvalidArgument
from tideflow.settings import Settings

SERVER = EgressPolicy.for_server()


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.9.9.9", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "non-public"),
        ("240.0.0.1", "reserved"),
        ("93.184.216.34", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "::1", "10.0.0.1", "169.254.169.254", "fe80::1", "::ffff:127.0.0.1", "0.0.0.0"],
)
def test_a_server_refuses_non_public_addresses_by_default(address: str) -> None:
    reason = SERVER.refusal(address, 80, [address])
    assert reason is not None
    assert "egress policy" in reason
    assert "--allow-egress" in reason


def test_a_server_allows_public_addresses() -> None:
    assert SERVER.refusal("example.com", 443, ["93.184.216.34", "2606:2800:220:1::1"]) is None


def test_a_name_resolving_to_loopback_is_loopback() -> None:
    reason = SERVER.refusal("innocent.example", 80, ["127.0.0.1"])
    assert reason is not None
    assert "innocent.example (127.0.0.1)" in reason
    assert "loopback" in reason


def test_one_private_address_among_public_ones_refuses_the_name() -> None:
    # the connection could go to any of them (and a rebinding server picks which)
    assert SERVER.refusal("mixed.example", 80, ["93.184.216.34", "10.0.0.5"]) is not None


def test_a_name_resolving_to_nothing_is_refused() -> None:
    assert SERVER.refusal("void.example", 80, []) is not None


def test_an_address_entry_with_a_port_allows_that_port_only() -> None:
    policy = EgressPolicy.for_server(["127.0.0.1:9000"])
    assert policy.refusal("127.0.0.1", 9000, ["127.0.0.1"]) is None
    assert policy.refusal("127.0.0.1", 9001, ["127.0.0.1"]) is not None
    assert policy.refusal("127.0.0.2", 9000, ["127.0.0.2"]) is not None


def test_an_address_entry_without_a_port_allows_every_port() -> None:
    policy = EgressPolicy.for_server(["127.0.0.1"])
    assert policy.refusal("127.0.0.1", 1, ["127.0.0.1"]) is None
    assert policy.refusal("127.0.0.1", 65535, ["127.0.0.1"]) is None


def test_a_cidr_entry_allows_its_network() -> None:
    policy = EgressPolicy.for_server(["10.0.0.0/8", "192.168.1.0/24:8443"])
    assert policy.refusal("10.200.3.4", 80, ["10.200.3.4"]) is None
    assert policy.refusal("192.168.1.7", 8443, ["192.168.1.7"]) is None
    assert policy.refusal("192.168.1.7", 80, ["192.168.1.7"]) is not None
    assert policy.refusal("192.168.2.7", 8443, ["192.168.2.7"]) is not None
    assert policy.refusal("172.16.0.1", 80, ["172.16.0.1"]) is not None


def test_ipv6_entries_with_and_without_ports() -> None:
    policy = EgressPolicy.for_server(["::1", "[fd00::1]:8080", "fe80::/10"])
    assert policy.refusal("::1", 80, ["::1"]) is None
    assert policy.refusal("fd00::1", 8080, ["fd00::1"]) is None
    assert policy.refusal("fd00::1", 8081, ["fd00::1"]) is not None
    assert policy.refusal("fe80::abcd", 80, ["fe80::abcd"]) is None
    # an IPv4 network never holds an IPv6 address, and the other way round
    assert EgressPolicy.for_server(["0.0.0.0/0"]).refusal("::1", 80, ["::1"]) is not None


def test_ipv4_mapped_addresses_are_judged_as_their_ipv4_address() -> None:
    assert SERVER.refusal("x", 80, ["::ffff:169.254.169.254"]) is not None
    allowed = EgressPolicy.for_server(["127.0.0.1"])
    assert allowed.refusal("x", 80, ["::ffff:127.0.0.1"]) is None
    mapped_entry = EgressPolicy.for_server(["::ffff:127.0.0.0/104"])
    assert mapped_entry.refusal("x", 80, ["127.0.0.5"]) is None


def test_a_host_name_entry_allows_the_name_whatever_it_resolves_to() -> None:
    policy = EgressPolicy.for_server(["db.internal", "api.internal:8443"])
    assert policy.refusal("db.internal", 5432, ["10.0.0.9"]) is None
    assert policy.refusal("DB.Internal.", 5432, ["10.0.0.9"]) is None
    assert policy.refusal("api.internal", 8443, ["10.0.0.8"]) is None
    assert policy.refusal("api.internal", 80, ["10.0.0.8"]) is not None
    # the entry names a host, not its addresses: another name for them is refused
    assert policy.refusal("other.example", 5432, ["10.0.0.9"]) is not None


def test_an_address_entry_does_not_allow_a_name_by_its_text() -> None:
    policy = EgressPolicy.for_server(["127.0.0.1:9000"])
    assert policy.refusal("localhost", 9000, ["127.0.0.1"]) is None  # by its address
    assert policy.refusal("localhost", 9000, ["127.0.0.1", "::1"]) is not None


@pytest.mark.parametrize(
    "entry", ["", "http://x", "a b", "127.0.0.1:0", "127.0.0.1:99999", "host:port", "[::1]:x"]
)
def test_bad_entries_are_refused_naming_the_setting(entry: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        AllowEntry.parse(entry)
    assert caught.value.argument == "allow-egress"


def test_everything_allows_everything() -> None:
    policy = EgressPolicy.everything()
    assert policy.refusal("x", 80, ["169.254.169.254"]) is None
    assert policy.file_refusal(Path("/etc/shadow")) is None


def test_check_raises_egress_denied_with_its_code() -> None:
    with pytest.raises(EgressDenied) as caught:
        SERVER.check("127.0.0.1", 80, ["127.0.0.1"])
    assert caught.value.code == "EGRESS_DENIED"
    assert caught.value.retryable is False


def test_literal_refusal_judges_ip_literals_and_leaves_names_to_the_resolver() -> None:
    assert SERVER.literal_refusal("http://169.254.169.254/latest/meta-data") is not None
    assert SERVER.literal_refusal("http://[::1]:8080/x") is not None
    assert SERVER.literal_refusal("https://example.com/x") is None
    allowed = EgressPolicy.for_server(["127.0.0.1:9000"])
    assert allowed.literal_refusal("http://127.0.0.1:9000/sink") is None
    assert allowed.literal_refusal("http://127.0.0.1/sink") is not None  # port 80


def test_local_documents_only_inside_the_folders(tmp_path: Path) -> None:
    policy = EgressPolicy.for_server(folders=[tmp_path])
    assert policy.file_refusal(tmp_path / "apis" / "pets.yaml") is None
    for outside in (Path("/etc/shadow"), tmp_path / ".." / "secret.yaml"):
        reason = policy.file_refusal(outside)
        assert reason is not None
        assert "shadow" not in reason
        assert "secret" not in reason


def test_a_symbolic_link_out_of_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "escape.yaml").symlink_to("/etc/hostname")
    policy = EgressPolicy.for_server(folders=[tmp_path])
    assert policy.file_refusal(tmp_path / "escape.yaml") is not None


def test_a_server_without_folders_reads_no_local_document() -> None:
    assert SERVER.file_refusal(Path.cwd() / "pets.yaml") is not None


def test_settings_read_the_allow_list_from_the_environment() -> None:
    settings = Settings.from_env({"TIDEFLOW_EGRESS_ALLOW": "127.0.0.1:9000, 10.0.0.0/8 ,,"})
    assert settings.egress_allow == ("127.0.0.1:9000", "10.0.0.0/8")
    assert Settings.from_env({}).egress_allow == ()


def test_serve_refuses_a_bad_allow_egress_before_starting() -> None:
    result = CliRunner().invoke(app, ["serve", "--allow-egress", "http://127.0.0.1"])
    assert result.exit_code == 2
    assert "--allow-egress / TIDEFLOW_EGRESS_ALLOW: " in result.output
    assert "'http://127.0.0.1' is a URL: give its host and port" in result.output
