"""The README, tried as a new user would: every link leads somewhere, every ``tideflow``
command it shows parses (those with placeholders at least show their ``--help``), and the
runnable ones run, in order, against a real ``tideflow serve`` -- with nothing but what the
README says (the CLI finds the server's saved admin token by itself), the ``curl`` line
included.

The commands are read from the README itself (its ``sh`` blocks and its inline code), so a
command added there is tried here too. The CLI runs in process (the Typer app ``tideflow``
runs) except ``events tail``, which follows a bus until stopped: that one runs
as the real program and is stopped once it has printed the event sent before it.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from tests.support.served import Served, serve_process
from tideflow._cli.common import CliState
from tideflow._cli.help import tidy_help
from tideflow.auth.first_token import token_file
from tideflow.cli import app

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text("utf-8")
DEFAULT_URL = "http://127.0.0.1:8080"

NOT_RUN = {
    ("serve",): "starts a server: the test's own server is one",
    ("demo-services",): "starts the demo services (tests/e2e/test_examples_served.py runs them)",
    ("connectors", "create"): "needs a connector spec file of the user's",
}
"""Commands the test parses but does not run, and why."""
ARCHIVE_TO_S3 = "--archive-to s3://"
"""A bus archived to S3 needs an S3 service (tests/e2e/test_api_bus_archive.py has one)."""


def _sh_blocks(text: str) -> list[str]:
    """The lines of every ``sh`` block, continuation lines joined."""
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        lines += block.replace("\\\n", " ").splitlines()
    return [line.strip() for line in lines if line.strip()]


def block_commands(text: str) -> list[str]:
    """Each ``tideflow ...`` command of the ``sh`` blocks, in order (``a && tideflow x``
    counts ``tideflow x``)."""
    return [
        part.strip()
        for line in _sh_blocks(text)
        for part in line.split("&&")
        if part.strip().startswith("tideflow ")
    ]


def inline_commands(text: str) -> list[str]:
    """Each ``tideflow ...`` in inline code (outside the ``sh`` blocks)."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    spans = re.findall(r"`([^`]+)`", prose.replace("\n", " "))
    return [" ".join(s.split()) for s in spans if s.startswith("tideflow ")]


def is_concrete(command: str) -> bool:
    """No placeholder: no ``<...>``, ``[...]``, ``a|b`` and no ALL-CAPS word (``FILE``)."""
    if re.search(r"[<\[|]", command):
        return False
    return not any(re.fullmatch(r"[A-Z][A-Z_]+(=\S+)?", w) for w in shlex.split(command))


def _root() -> Any:
    return tidy_help(typer.main.get_command(app))


def command_path(words: list[str]) -> tuple[Any, list[str], list[str]]:
    """The (sub)command ``words`` name, its path of names and the words after it.

    Raises:
        AssertionError: A name is not a command.
    """
    command: Any = _root()
    path: list[str] = []
    rest = list(words)
    while rest and hasattr(command, "commands") and not rest[0].startswith("-"):
        sub = command.commands.get(rest[0])
        assert sub is not None, f"no command {' '.join([*path, rest[0]])!r} in tideflow"
        command, path, rest = sub, [*path, rest.pop(0)], rest
    return command, path, rest


def parses(command: str) -> None:
    """Parse ``command`` as ``tideflow`` would, running nothing.

    Raises:
        AssertionError: It does not parse (the parser's message says why).
    """
    words = expanded(shlex.split(command)[1:])
    leaf, path, rest = command_path(words)
    if hasattr(leaf, "commands") and not rest:
        return  # a group named as such ("tideflow tokens")
    parent = _root().make_context("tideflow", [], resilient_parsing=True)
    try:
        leaf.make_context(path[-1], rest, parent=parent)
    except Exception as exc:  # typer's click raises its own UsageError/BadParameter
        formatted = getattr(exc, "format_message", None)
        message = formatted() if callable(formatted) else str(exc)
        raise AssertionError(f"README command does not parse: {command}\n  {message}") from exc


def expanded(words: list[str]) -> list[str]:
    """``words`` with their globs expanded, as the shell would (from the checkout)."""
    return [m for w in words for m in (sorted(glob.glob(w)) if "*" in w else [w])]


def shows_help(command: str) -> None:
    """``tideflow <its command path> --help`` exits 0 and shows the options it uses."""
    words = [w for w in re.split(r"[\s\[\]]+", command)[1:] if w]
    _, path, rest = command_path([w for w in words if re.fullmatch(r"[a-z][\w-]*|-.*", w)])
    shown = CliRunner().invoke(app, [*path, "--help"])
    assert shown.exit_code == 0, (command, shown.output)
    for option in (w.split("=")[0] for w in rest if w.startswith("--")):
        assert option in shown.output, f"{command}: --help does not show {option}"


def test_the_readme_is_read_as_expected() -> None:
    """The extraction finds what the README shows (so the tests below try something)."""
    blocks, inline = block_commands(README), inline_commands(README)
    assert "tideflow serve" in blocks
    assert "tideflow workflows deploy examples/workflows/hello-world.yaml" in blocks
    assert any(c.startswith("tideflow instances list [") for c in inline)
    assert not is_concrete("tideflow instances show <the id printed above> --timeline")
    assert not is_concrete("tideflow serve --connectors FILE")
    assert is_concrete("tideflow events tail orders --from 1")


@pytest.mark.parametrize("command", sorted(set(block_commands(README) + inline_commands(README))))
def test_every_readme_command_parses_or_shows_its_help(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the README's paths are relative to the checkout
    if is_concrete(command):
        parses(command)
    else:
        shows_help(command)


def test_every_readme_link_and_repository_path_exists() -> None:
    targets = re.findall(r"\]\(([^)\s]+)\)", README)
    assert targets
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    missing = [t for t in local if not (ROOT / t.split("#")[0]).exists()]
    paths = re.findall(r"`((?:docs|examples|specs|tideflow|bench|tests)/[^`\s*]+)`", README)
    missing += [p for p in paths if not (ROOT / p).exists()]
    assert missing == []


@pytest.fixture
def server(pg_url: str, tmp_path: Path) -> Iterator[Served]:
    with serve_process(pg_url, tmp_path) as running:
        yield running


def test_the_readme_commands_run_against_a_real_server(
    server: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(CliState, "token", None)  # the saved admin token, as the README says
    assert token_file(server.home or Path()).name == "admin-token"  # the file it names
    env = {"TIDEFLOW_SERVER": server.url, "TIDEFLOW_HOME": str(server.home), "TIDEFLOW_TOKEN": None}
    printed = ""
    ran = []
    for command in block_commands(README):
        words = shlex.split(command)[1:]
        _, path, _ = command_path(words)
        if tuple(path) in NOT_RUN or ARCHIVE_TO_S3 in command:
            continue
        if path == ["events", "tail"]:
            _tail_prints_the_sent_event(words, {**os.environ, **_set(env)})
            ran.append(command)
            continue
        if "<" in command:  # "<the id printed above>": what the previous command printed
            words = [printed.split()[0] if w.startswith("<") else w for w in _joined(command)]
        words = expanded(words)
        done = CliRunner().invoke(app, words, env=env)
        assert done.exit_code == 0, f"{command}\n{done.output}"
        printed = done.stdout
        ran.append(command)
    assert len(ran) >= 7, ran
    _curl_runs(server)
    _urls_answer(server)


def _set(env: dict[str, str | None]) -> dict[str, str]:
    return {k: v for k, v in env.items() if v is not None}


def _joined(command: str) -> list[str]:
    """The words of a command whose placeholder ``<...>`` has spaces, the placeholder as one."""
    words = re.sub(r"<[^>]*>", "<placeholder>", command)
    return shlex.split(words)[1:]


def _tail_prints_the_sent_event(words: list[str], env: dict[str, str]) -> None:
    env.pop("TIDEFLOW_TOKEN", None)
    with subprocess.Popen(
        [sys.executable, "-m", "tideflow.cli", *words],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as tail:
        try:
            first = tail.stdout.readline() if tail.stdout else ""
        finally:
            tail.kill()
    record = json.loads(first)
    assert record["event"]["type"] == "com.example.order", first


def _curl_runs(server: Served) -> None:
    """The README's ``curl`` line, with its ``$TOKEN`` read as its ``TOKEN=$(cat ...)`` says."""
    (curl,) = [line for line in _sh_blocks(README) if line.startswith("curl ")]
    token = (server.home or Path()).joinpath("admin-token").read_text().strip()
    words = shlex.split(curl.replace("$TOKEN", token))[1:]
    url, headers, body = "", {}, None
    while words:
        word = words.pop(0)
        if word == "-i":
            continue
        if word == "-H":
            name, _, value = words.pop(0).partition(":")
            headers[name.strip()] = value.strip()
        elif word == "-d":
            body = words.pop(0)
        else:
            assert not word.startswith("-"), f"the README's curl uses {word}: teach this test"
            url = word
    url = server.url + url.removeprefix("localhost:8080")
    answer = httpx.post(url, content=body, headers=headers, timeout=30)
    assert answer.status_code == 202, answer.text


def _urls_answer(server: Served) -> None:
    """Every ``http://127.0.0.1:8080/...`` the README names answers (none is a 404)."""
    urls = set(re.findall(re.escape(DEFAULT_URL) + r"(/[^\s`)]*)?", README))
    assert "/docs" in urls
    with httpx.Client(base_url=server.url, timeout=30, follow_redirects=True) as http:
        for path in sorted(urls):
            answer = http.get(path or "/")
            assert answer.status_code == 200, (path, answer.status_code)
