"""``tideflow ... --help`` as a user reads it (the real entry point, in a subprocess):
flags show no value type, repeatable options show their item, never ``<bool>`` or
``<list[...]>``, in every command of the tree."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from tideflow._cli.help import tidy_help
from tideflow.cli import app


def _help(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tideflow.cli", *args, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"COLUMNS": "200", "PATH": "", "TERM": "dumb"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _option_line(text: str, option: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"│ {option} "))


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (("instances", "show"), "--timeline"),
        (("instances", "list"), "--all"),
        (("serve",), "--insecure-local"),
        ((), "--verbose"),
    ],
)
def test_flags_show_no_value(args: tuple[str, ...], flag: str) -> None:
    text = _help(*args)
    line = _option_line(text, flag)
    assert "<" not in line, line
    assert "<bool>" not in text


def test_repeatable_options_show_their_item() -> None:
    line = _option_line(_help("serve"), "--workflows")
    assert "<str>..." in line, line
    assert "list[" not in line


def test_no_command_in_the_tree_shows_bool_or_list_types() -> None:
    command = tidy_help(typer.main.get_command(app))
    pending, seen = [command], 0
    while pending:
        current = pending.pop()
        pending.extend(getattr(current, "commands", {}).values())
        for param in current.params:
            if param.param_type_name != "option":
                continue
            seen += 1
            if param.is_flag:
                assert param.metavar == "", (current.name, param.name)
            elif param.multiple:  # its item, or the metavar the command gave it
                assert param.metavar, (current.name, param.name)
                assert "list[" not in param.metavar
    assert seen > 50
