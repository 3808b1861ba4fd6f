"""``tideflow serve`` as a process, and the workflows/instances CLI against it.

One real server process (``tideflow serve`` on a free port, a database
copied from the migrated template) serves the module; each CLI command runs
as its own process with ``--server URL``, as a user would type it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.served import Served, copied_database, serve_process, stop

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "workflows"

SLEEPER = """\
id: sleeper
version: "1"
specVersion: "0.8"
start: Nap
states:
  - name: Nap
    type: sleep
    duration: PT1H
    end: true
"""

BROKEN = """\
id: broken
specVersion: "0.8"
start: Nowhere
states:
  - name: First
    type: teleport
    end: true
"""


@pytest.fixture(scope="module")
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    async with copied_database(pg_server_url, pg_template, f"t_{_db_names[0]}_serve_cli") as url:
        yield url


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_process(database, tmp_path_factory.mktemp("serve")) as running:
        yield running


def cli(*args: str, server: Served | str | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: against a served server it finds the admin token
    the server saved in its TIDEFLOW_HOME by itself (no --token)."""
    command = [sys.executable, "-m", "tideflow.cli", *args]
    env = {k: v for k, v in os.environ.items() if k not in ("TIDEFLOW_TOKEN", "TIDEFLOW_HOME")}
    if isinstance(server, Served):
        command += ["--server", server.url]
        env["TIDEFLOW_HOME"] = str(server.home)
    elif server is not None:
        command += ["--server", server]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=90, cwd=ROOT, check=False, env=env
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def status_of(server: Served, instance_id: str) -> str:
    shown: dict[str, Any] = httpx.get(
        f"{server.url}/instances/{instance_id}", headers=server.auth
    ).json()
    return str(shown["status"])


def wait_status(server: Served, instance_id: str, status: str) -> None:
    deadline = time.monotonic() + 30
    while status_of(server, instance_id) != status:
        assert time.monotonic() < deadline, f"{instance_id} never became {status}"
        time.sleep(0.05)


def test_deploy_start_and_show_like_the_readme(server: Served) -> None:
    out = ok(cli("workflows", "deploy", str(EXAMPLES / "hello-world.yaml"), server=server))
    assert out.split() == ["hello-world", "1.0"]
    listed = ok(cli("workflows", "list", server=server))
    assert listed.splitlines()[0].split("\t")[:2] == ["hello-world", "1.0"]

    started = ok(cli("instances", "start", "hello-world", "--input", '{"name": "Ada"}',
                     "--wait", "30", server=server))  # fmt: skip
    instance = json.loads(started)
    assert instance["status"] == "completed"
    assert instance["output"] == {"message": "Hello, Ada!"}

    shown = json.loads(ok(cli("instances", "show", instance["id"], "--timeline",
                              server=server)))  # fmt: skip
    assert shown["id"] == instance["id"]
    assert shown["output"] == {"message": "Hello, Ada!"}
    assert any(entry["kind"] == "state.entered" for entry in shown["timeline"])

    rows = ok(cli("instances", "list", "--status", "completed", server=server))
    assert instance["id"] in {row.split("\t")[0] for row in rows.splitlines()}
    assert ok(cli("instances", "list", "--status", "failed", server=server)) == ""
    mine = ok(cli("instances", "list", "--workflow", "hello-world", server=server))
    header, *lines = mine.splitlines()
    assert header.split("\t") == ["ID", "WORKFLOW", "VERSION", "STATUS", "STATE"]
    assert {row.split("\t")[1] for row in lines} == {"hello-world"}


FAILING = """\
id: failing
version: "1"
specVersion: "0.8"
start: Boom
functions:
  - name: boom
    type: expression
    operation: error("no way")
states:
  - name: Boom
    type: operation
    actions:
      - functionRef: boom
    end: true
"""


def test_waiting_for_a_failed_instance_exits_1(server: Served, tmp_path: Path) -> None:
    definition = tmp_path / "failing.yaml"
    definition.write_text(FAILING)
    ok(cli("workflows", "deploy", str(definition), server=server))
    done = cli("instances", "start", "failing", "--wait", "30", server=server)
    assert done.returncode == 1
    assert json.loads(done.stdout)["status"] == "failed"
    started, error = done.stderr.splitlines()
    assert started == f"started {json.loads(done.stdout)['id']}"
    assert error.startswith("error: instance ")
    assert "failed in state 'Boom'" in done.stderr


def test_start_without_wait_prints_id_and_status(server: Served) -> None:
    ok(cli("workflows", "deploy", str(EXAMPLES / "vat-calculator.yaml"), server=server))
    data = (EXAMPLES / "vat-calculator.input.json").read_text()
    out = ok(cli("instances", "start", "vat-calculator", "--input", data, server=server))
    instance_id, status = out.split()
    assert status in ("running", "completed")
    shown = json.loads(ok(cli("instances", "show", instance_id, "--wait", "30", server=server)))
    assert shown["status"] == "completed"  # the long poll answered once it ended


def test_suspend_resume_and_cancel(server: Served, tmp_path: Path) -> None:
    definition = tmp_path / "sleeper.yaml"
    definition.write_text(SLEEPER)
    assert ok(cli("workflows", "deploy", str(definition), server=server)).split() == [
        "sleeper",
        "1",
    ]
    instance_id = ok(cli("instances", "start", "sleeper", server=server)).split()[0]
    wait_status(server, instance_id, "waiting")
    out = ok(cli("instances", "suspend", instance_id, server=server))
    assert out.split() == [instance_id, "suspended"]
    out = ok(cli("instances", "resume", instance_id, server=server))
    assert out.split()[1] in ("running", "waiting")
    wait_status(server, instance_id, "waiting")
    out = ok(cli("instances", "cancel", instance_id, server=server))
    assert out.split() == [instance_id, "cancelled"]
    again = cli("instances", "cancel", instance_id, server=server)
    assert again.returncode == 1
    assert again.stderr.startswith("error: ")
    assert "already cancelled" in again.stderr
    assert "[HTTP 409]" in again.stderr


def test_invalid_definition_prints_each_problem_without_a_traceback(
    server: Served, tmp_path: Path
) -> None:
    definition = tmp_path / "broken.yaml"
    definition.write_text(BROKEN)
    done = cli("workflows", "deploy", str(definition), server=server)
    assert done.returncode == 1
    first, *problems = done.stderr.strip().splitlines()
    assert first.startswith(f"error: {definition}: ")
    assert "[HTTP 422]" in first
    assert any(line.strip().startswith("start:") for line in problems)
    assert any(line.strip().startswith("states[0]") for line in problems)
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("instances", "show", "no-such-instance"), "does not exist [HTTP 404]"),
        (("instances", "start", "no-such-workflow"), "not deployed [HTTP 404]"),
        (("instances", "list", "--status", "sleepy"), "unknown status 'sleepy'"),
        (("instances", "start", "x", "--input", "{oops"), "--input: not JSON"),
        (("workflows", "deploy", "/no/such/file.yaml"), "/no/such/file.yaml: No such file"),
    ],
)
def test_errors_are_one_clear_line(server: Served, args: tuple[str, ...], words: str) -> None:
    done = cli(*args, server=server)
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1, done.stderr
    assert words in done.stderr


def test_unreachable_server_is_one_clear_line() -> None:
    done = cli("workflows", "list", server="http://127.0.0.1:9")
    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot reach the Tideflow server at http://127.0.0.1:9")
    assert done.stderr.count("\n") == 1


def test_serve_deploys_a_folder_and_shuts_down_gracefully(
    database: str, tmp_path: Path, server: Served
) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "sleeper.yaml").write_text(SLEEPER.replace("id: sleeper", "id: folder-sleeper"))
    (folder / "broken.yaml").write_text(BROKEN)
    (folder / "sleeper.input.json").write_text("{}")  # not a definition: skipped
    with serve_process(
        database, tmp_path, "--workflows", str(folder), token=server.token
    ) as second:
        listed = httpx.get(f"{second.url}/workflows", headers=second.auth).json()["workflows"]
        assert "folder-sleeper" in {w["id"] for w in listed}
        assert "broken" not in {w["id"] for w in listed}
        started = httpx.post(
            f"{second.url}/workflows/folder-sleeper/instances", json={}, headers=second.auth
        )
        instance_id = started.json()["id"]
        wait_status(second, instance_id, "waiting")
        assert stop(second.process) == 0
        log = second.output()
    assert "ERROR:     not deployed: " in log
    assert "broken.yaml" in log
    assert "INFO:     deployed from " in log
    assert "folder-sleeper@1" in log
    # the first server, on the same database, still sees the instance waiting
    assert status_of(server, instance_id) == "waiting"


def test_serve_refuses_a_missing_workflows_folder(tmp_path: Path) -> None:
    done = cli("serve", "--workflows", str(tmp_path / "nope"))
    assert done.returncode == 2
    assert "not a folder" in done.stderr


def test_serve_refuses_a_malformed_node_id(tmp_path: Path) -> None:
    done = cli("serve", "--node-id", "two words")
    assert done.returncode == 2
    assert "--node-id: 'two words' is not a node id" in done.stderr


def test_serve_names_its_node_at_start(database: str, server: Served) -> None:
    from tideflow.settings import Settings, derive_node_id

    port = int(server.url.rsplit(":", 1)[1])
    assert server.home is not None
    expected = derive_node_id(Settings(database_url=database, home=server.home, port=port))
    first_line = server.output().splitlines()[0]
    assert first_line.startswith("tideflow ")
    assert f": node {expected}, data in PostgreSQL at " in first_line


NAPPER = SLEEPER.replace("id: sleeper", "id: napper")  # its own list, asleep for an hour


def start_napper(server: Served) -> str:
    done = cli("instances", "start", "napper", server=server)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[0]


def ids(out: str) -> list[str]:
    header, *rows = out.splitlines()
    assert header.split("\t") == ["ID", "WORKFLOW", "VERSION", "STATUS", "STATE"]
    return [row.split("\t")[0] for row in rows]


def deploy_napper(server: Served, folder: Path) -> None:
    definition = folder / "napper.yaml"
    definition.write_text(NAPPER)
    ok(cli("workflows", "deploy", str(definition), server=server))


def test_list_newest_first_with_header_paging_and_json(server: Served, tmp_path: Path) -> None:
    deploy_napper(server, tmp_path)
    empty = cli("instances", "list", "--workflow", "napper", server=server)
    assert (empty.returncode, empty.stdout) == (0, "")
    assert empty.stderr.strip() == "no instances match"

    started = [start_napper(server) for _ in range(3)]
    newest = list(reversed(started))
    done = cli("instances", "list", "--workflow", "napper", server=server)
    assert ids(done.stdout) == newest
    assert done.stderr == ""

    first = cli("instances", "list", "--workflow", "napper", "--limit", "2", server=server)
    assert ids(first.stdout) == newest[:2]
    assert "more instances exist" in first.stderr
    assert "--all" in first.stderr

    every = cli("instances", "list", "--workflow", "napper", "--limit", "2", "--all",
                server=server)  # fmt: skip
    assert ids(every.stdout) == newest
    assert every.stderr == ""

    oldest = cli("instances", "list", "--workflow", "napper", "--order", "asc", "--limit", "1",
                 "--all", "--json", server=server)  # fmt: skip
    assert oldest.returncode == 0, oldest.stderr
    rows = json.loads(oldest.stdout)
    assert [row["id"] for row in rows] == started
    assert {row["workflowId"] for row in rows} == {"napper"}

    bad = cli("instances", "list", "--order", "sideways", server=server)
    assert bad.returncode == 2
    assert "sideways" in bad.stderr


def test_start_wait_prints_the_id_first_and_exits_3_when_the_wait_runs_out(
    server: Served, tmp_path: Path
) -> None:
    deploy_napper(server, tmp_path)
    done = cli("instances", "start", "napper", "--wait", "0.2", server=server)
    assert done.returncode == 3, done.stderr
    first, *rest = done.stderr.splitlines()
    assert first.startswith("started ")
    instance_id = first.removeprefix("started ")
    shown = json.loads(done.stdout)
    assert shown["id"] == instance_id
    assert shown["status"] in ("running", "waiting")  # asleep for an hour
    assert f"instance {instance_id} is still {shown['status']}" in " ".join(rest)
    assert "the wait ran out" in " ".join(rest)


def _sigint_by_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_the_wait_keeps_the_id_on_screen(server: Served, tmp_path: Path) -> None:
    deploy_napper(server, tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("TIDEFLOW_TOKEN", "TIDEFLOW_HOME")}
    env["TIDEFLOW_HOME"] = str(server.home)
    command = [sys.executable, "-m", "tideflow.cli", "instances", "start", "napper"]
    process = subprocess.Popen(
        [*command, "--wait", "60", "--server", server.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
        # Ctrl-C comes from a terminal, where SIGINT is not ignored; a test run started in the
        # background (`cmd &` in a non-interactive shell) hands SIG_IGN down to its children,
        # and Python keeps an ignored SIGINT ignored, so the CLI would never see the signal
        preexec_fn=_sigint_by_default,
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()  # blocks until the instance has started
        assert first.startswith("started "), first
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()  # closes the pipes
    instance_id = first.removeprefix("started ").strip()
    assert process.returncode == 130, err
    assert out == ""
    assert f"interrupted: instance {instance_id} keeps running" in err
    assert instance_id in ids(
        cli("instances", "list", "--workflow", "napper", server=server).stdout
    )
