"""``pgdata/.handle_pids.json``: the pids of processes that are gone never keep the embedded
PostgreSQL running (``tideflow.embedded.prune_stale_handles``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tideflow.embedded import prune_stale_handles


@pytest.fixture
def python_process() -> Iterator[int]:
    """A live Python process (another holder of a handle)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process.pid
    process.kill()
    process.wait()


@pytest.fixture
def other_program() -> Iterator[int]:
    """A live process that is not Python: a pid reused after the holder died."""
    process = subprocess.Popen(["sleep", "60"])
    yield process.pid
    process.kill()
    process.wait()


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_the_pids_of_processes_that_are_gone_are_dropped(
    tmp_path: Path, python_process: int, other_program: int
) -> None:
    handles = tmp_path / ".handle_pids.json"
    dead = _dead_pid()
    handles.write_text(json.dumps([dead, python_process, other_program, os.getpid()]))
    assert prune_stale_handles(tmp_path) == [python_process, os.getpid()]
    assert json.loads(handles.read_text()) == [python_process, os.getpid()]


def test_no_file_and_an_unreadable_one(tmp_path: Path) -> None:
    assert prune_stale_handles(tmp_path) == []
    (tmp_path / ".handle_pids.json").write_text("not json")
    assert prune_stale_handles(tmp_path) == []
    assert json.loads((tmp_path / ".handle_pids.json").read_text()) == []
