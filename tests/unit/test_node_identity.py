"""The node id: given (``--node-id``, ``TIDEFLOW_NODE_ID``) or derived, stable across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tideflow.settings import Settings, check_node_id, derive_node_id


def test_a_restarted_process_derives_the_same_id(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, port=8080)
    first = derive_node_id(settings, hostname="box.example.com")
    assert first == derive_node_id(Settings(home=tmp_path, port=8080), hostname="box.example.com")
    assert first.startswith("box-8080-")
    check_node_id(first)  # a derived id is a valid one


def test_processes_on_one_machine_differ(tmp_path: Path) -> None:
    base = Settings(home=tmp_path / "a", port=8080)
    ids = {
        derive_node_id(base, hostname="box"),
        derive_node_id(Settings(home=tmp_path / "a", port=8081), hostname="box"),
        derive_node_id(Settings(home=tmp_path / "b", port=8080), hostname="box"),
        derive_node_id(Settings(home=tmp_path / "a", port=8080, host="127.0.0.2"), hostname="box"),
        derive_node_id(base, hostname="other"),
        derive_node_id(
            Settings(home=tmp_path / "a", port=8080, database_url="postgresql://db/x"),
            hostname="box",
        ),
    }
    assert len(ids) == 6


def test_the_database_password_is_not_part_of_it(tmp_path: Path) -> None:
    one = Settings(home=tmp_path, database_url="postgresql://tf:secret@db:5432/tf")
    two = Settings(home=tmp_path, database_url="postgresql://tf:rotated@db:5432/tf")
    assert derive_node_id(one, hostname="h") == derive_node_id(two, hostname="h")
    assert "secret" not in derive_node_id(one, hostname="h")


def test_an_odd_host_name_still_gives_a_valid_id(tmp_path: Path) -> None:
    for hostname in ("", "---", "my host_name!", "x" * 300):
        check_node_id(derive_node_id(Settings(home=tmp_path), hostname=hostname))


def test_identified_keeps_a_given_id_and_fills_in_an_empty_one(tmp_path: Path) -> None:
    given = Settings(home=tmp_path, node_id="worker-1")
    assert given.identified() is given
    derived = Settings(home=tmp_path).identified()
    assert derived.node_id == derive_node_id(Settings(home=tmp_path))


def test_the_environment_names_it(tmp_path: Path) -> None:
    env = {"TIDEFLOW_NODE_ID": "eu-1.worker:2", "TIDEFLOW_HOME": str(tmp_path)}
    assert Settings.from_env(env).node_id == "eu-1.worker:2"
    assert Settings.from_env({"TIDEFLOW_HOME": str(tmp_path)}).node_id == ""


@pytest.mark.parametrize("bad", ["", " x", "-x", "a b", "x" * 65, "é", "a/b", "a\nb"])
def test_a_malformed_id_is_refused_naming_where_it_came_from(bad: str) -> None:
    with pytest.raises(ValueError, match=r"TIDEFLOW_NODE_ID: .* is not a node id"):
        check_node_id(bad, "TIDEFLOW_NODE_ID")
