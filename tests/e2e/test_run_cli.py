"""``tideflow run``: output, exit codes, flags, and what the local host enforces."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tideflow.cli import app

runner = CliRunner()

PREAMBLE = "specVersion: '0.8'\nversion: '1.0'\n"


def write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


def run(*args: str) -> Result:
    return runner.invoke(app, ["run", *args])


@pytest.fixture
def funcs(tmp_path: Path) -> Path:
    return write(
        tmp_path,
        "funcs.py",
        """
        import asyncio
        from pathlib import Path

        class Declined(Exception):
            code = "DECLINED"

        def pay(args):
            raise Declined("card declined")

        async def double(args):
            await asyncio.sleep(0)
            return {"n": args["n"] * 2}

        def remember(args, idempotency_key=None):
            return {"key": idempotency_key}

        def touch(args):
            Path(args["path"]).write_text("called")
            return {"ignored": True}

        def whole(args):
            return {"seen": sorted(args)}

        async def slow(args):
            await asyncio.sleep(5)
            return {"late": True}
        """,
    )


def _op(name: str, fn: str, args: str = "{}") -> str:
    return (
        f"id: {name}\n{PREAMBLE}start: S\nfunctions:\n"
        f"  - {{name: {fn}, type: custom, operation: 'rest:post:http://127.0.0.1:9/unused'}}\n"
        "states:\n  - name: S\n    type: operation\n    actions:\n"
        f"      - functionRef: {{refName: {fn}, arguments: {args}}}\n    end: true\n"
    )


def test_completed_prints_the_output_as_json(tmp_path: Path, funcs: Path) -> None:
    wf = write(tmp_path, "wf.yaml", _op("double", "double", "{n: '${ .n }'}"))
    done = run(str(wf), "--input", '{"n": 21}', "--functions", str(funcs))
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout) == {"n": 42}


def test_input_from_a_file(tmp_path: Path, funcs: Path) -> None:
    wf = write(tmp_path, "wf.yaml", _op("double", "double", "{n: '${ .n }'}"))
    (tmp_path / "in.json").write_text('{"n": 5}')
    done = run(str(wf), "--input", f"@{tmp_path / 'in.json'}", "--functions", str(funcs))
    assert json.loads(done.stdout) == {"n": 10}


def test_input_from_standard_input(tmp_path: Path, funcs: Path) -> None:
    wf = write(tmp_path, "wf.yaml", _op("double", "double", "{n: '${ .n }'}"))
    done = runner.invoke(
        app, ["run", str(wf), "--input", "@-", "--functions", str(funcs)], input='{"n": 4}'
    )
    assert json.loads(done.stdout) == {"n": 8}


def test_failed_instance_exits_1_with_one_line_on_stderr(tmp_path: Path, funcs: Path) -> None:
    wf = write(tmp_path, "wf.yaml", _op("pay", "pay"))
    done = run(str(wf), "--functions", str(funcs))
    assert done.exit_code == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "state 'S'" in lines[0]
    assert "DECLINED" in lines[0]
    assert "card declined" in lines[0]


def test_invalid_definition_exits_2_listing_every_problem(tmp_path: Path) -> None:
    wf = write(
        tmp_path,
        "bad.yaml",
        """
        id: bad
        specVersion: '0.8'
        start: A
        states:
          - name: A
            type: operation
            actions:
              - functionRef: missing
            transition: Nowhere
        """,
    )
    done = run(str(wf))
    assert done.exit_code == 2
    assert "missing" in done.stderr
    assert "Nowhere" in done.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--input", "{nope"], "not JSON"),
        (["--input", "@/no/such/file.json"], "/no/such/file.json"),
        (["--events", "/no/such/events.jsonl"], "/no/such/events.jsonl"),
        (["--functions", "/no/such/funcs.py"], "/no/such/funcs.py"),
        (["--server", "localhost=x"], "FROM=TO"),
        (["--dialect", "camunda"], "sonataflow"),
    ],
)
def test_unusable_options_exit_2(tmp_path: Path, extra: list[str], message: str) -> None:
    wf = write(
        tmp_path,
        "wf.yaml",
        "id: w\nspecVersion: '0.8'\nstart: A\nstates:\n"
        "  - {name: A, type: inject, data: {}, end: true}\n",
    )
    done = run(str(wf), *extra)
    assert done.exit_code == 2
    assert message in done.stderr


def test_missing_file_exits_2(tmp_path: Path) -> None:
    done = run(str(tmp_path / "nothing.yaml"))
    assert done.exit_code == 2
    assert "nothing.yaml" in done.stderr


def test_bad_events_line_names_file_and_line(tmp_path: Path) -> None:
    wf = write(
        tmp_path,
        "wf.yaml",
        "id: w\nspecVersion: '0.8'\nstart: A\nstates:\n"
        "  - {name: A, type: inject, data: {}, end: true}\n",
    )
    (tmp_path / "ev.jsonl").write_text('{"type": "a"}\n\n{"data": 1}\n')
    done = run(str(wf), "--events", str(tmp_path / "ev.jsonl"))
    assert done.exit_code == 2
    assert "ev.jsonl:3" in done.stderr


EVENT_WF = """
id: ev
specVersion: '0.8'
start: Wait
events:
  - name: Ping
    type: com.example.ping
    source: /test
    correlation:
      - contextAttributeName: room
states:
  - name: Wait
    type: event
    onEvents:
      - eventRefs: [Ping]
        eventDataFilter:
          toStateData: ${ .pings }
    transition: Again
  - name: Again
    type: event
    onEvents:
      - eventRefs: [Ping]
        eventDataFilter:
          toStateData: ${ .second }
    end: true
"""


def _ping(n: int, room: str) -> str:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"p{n}",
            "source": "/test",
            "type": "com.example.ping",
            "room": room,
            "data": {"n": n},
        }
    )


def test_events_are_offered_in_order_and_correlated(tmp_path: Path) -> None:
    wf = write(tmp_path, "wf.yaml", EVENT_WF)
    (tmp_path / "ev.jsonl").write_text("\n".join([_ping(1, "a"), _ping(2, "b"), _ping(3, "a")]))
    done = run(str(wf), "--events", str(tmp_path / "ev.jsonl"))
    assert done.exit_code == 0, done.stderr
    # the second wait skips room b: the first event bound the correlation key to room a
    assert json.loads(done.stdout) == {"pings": {"n": 1}, "second": {"n": 3}}


def test_a_wait_no_event_can_satisfy_fails_clearly(tmp_path: Path) -> None:
    wf = write(tmp_path, "wf.yaml", EVENT_WF)
    (tmp_path / "ev.jsonl").write_text(_ping(1, "a") + "\n" + _ping(2, "b") + "\n")
    done = run(str(wf), "--events", str(tmp_path / "ev.jsonl"))
    assert done.exit_code == 1
    assert "state 'Again' waits for Ping (type com.example.ping)" in done.stderr


def test_timeline_shows_steps_and_emitted_events(tmp_path: Path) -> None:
    wf = write(
        tmp_path,
        "wf.yaml",
        """
        id: emit
        specVersion: '0.8'
        start: A
        events:
          - {name: Done, type: com.example.done, kind: produced}
        states:
          - name: A
            type: inject
            data: {x: 1}
            end:
              produceEvents:
                - eventRef: Done
                  data: ${ .x }
        """,
    )
    done = run(str(wf), "--timeline")
    assert done.exit_code == 0
    assert json.loads(done.stdout) == {"x": 1}
    assert "state.entered [A] A" in done.stderr
    emitted = [line for line in done.stderr.splitlines() if line.startswith("emitted ")]
    event = json.loads(emitted[0].removeprefix("emitted "))
    assert (event["type"], event["data"], event["source"]) == (
        "com.example.done",
        1,
        "/tideflow/emit",
    )


def test_subflows_from_the_workflow_folder_and_workflows_dir(tmp_path: Path) -> None:
    main, lib = tmp_path / "main", tmp_path / "lib"
    main.mkdir()
    lib.mkdir()
    write(
        lib,
        "child.yaml",
        "id: child\nversion: '2'\nspecVersion: '0.8'\nstart: C\nstates:\n"
        "  - {name: C, type: inject, data: {child: done}, end: true}\n",
    )
    wf = write(
        main,
        "parent.yaml",
        """
        id: parent
        specVersion: '0.8'
        start: P
        states:
          - name: P
            type: operation
            actions:
              - subFlowRef: {workflowId: child, version: '2'}
            end: true
        """,
    )
    missing = run(str(wf))
    assert missing.exit_code == 1
    assert "child" in missing.stderr
    assert "--workflows" in missing.stderr
    done = run(str(wf), "--input", '{"a": 1}', "--workflows", str(lib))
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout) == {"a": 1, "child": "done"}


def test_continue_as_runs_the_next_workflow(tmp_path: Path) -> None:
    write(
        tmp_path,
        "second.yaml",
        "id: second\nspecVersion: '0.8'\nstart: B\nstates:\n"
        "  - {name: B, type: inject, data: {second: true}, end: true}\n",
    )
    wf = write(
        tmp_path,
        "first.yaml",
        """
        id: first
        specVersion: '0.8'
        start: A
        states:
          - name: A
            type: inject
            data: {first: true}
            end:
              continueAs:
                workflowId: second
                data: '${ {carried: .first} }'
        """,
    )
    done = run(str(wf))
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout) == {"carried": True, "second": True}


def test_async_calls_finish_before_exit_and_keys_reach_functions(
    tmp_path: Path, funcs: Path
) -> None:
    marker = tmp_path / "marker.txt"
    wf = write(
        tmp_path,
        "wf.yaml",
        f"""
        id: a
        specVersion: '0.8'
        start: S
        functions:
          - {{name: touch, type: custom, operation: sysout}}
          - {{name: remember, type: custom, operation: sysout}}
        states:
          - name: S
            type: operation
            actions:
              - functionRef: {{refName: touch, invoke: async, arguments: {{path: "{marker}"}}}}
              - functionRef: remember
            end: true
        """,
    )
    done = run(str(wf), "--functions", str(funcs))
    assert done.exit_code == 0, done.stderr
    assert marker.read_text() == "called"
    key = json.loads(done.stdout)["key"]
    assert key.endswith("/S/action:1")  # the same for every attempt of this action


def test_the_host_enforces_action_and_workflow_timeouts(tmp_path: Path, funcs: Path) -> None:
    wf = write(
        tmp_path,
        "wf.yaml",
        """
        id: t
        specVersion: '0.8'
        start: S
        timeouts:
          workflowExecTimeout: PT0.5S
        errors:
          - {name: too slow, code: TIMEOUT}
        functions:
          - {name: slow, type: custom, operation: sysout}
        states:
          - name: S
            type: operation
            timeouts: {actionExecTimeout: PT0.1S}
            actions:
              - functionRef: slow
            onErrors:
              - {errorRef: too slow, transition: Nap}
            end: true
          - name: Nap
            type: sleep
            duration: PT30S
            end: true
        """,
    )
    done = run(str(wf), "--input", '{"x": 1}', "--functions", str(funcs), "--timeline")
    assert done.exit_code == 0, done.stderr
    assert "error.handled [S]" in done.stderr
    assert "state.entered [Nap]" in done.stderr
    assert json.loads(done.stdout) == {"x": 1}  # terminated by workflowExecTimeout while asleep


def test_sonataflow_dialect_leniencies(tmp_path: Path, funcs: Path) -> None:
    wf = write(
        tmp_path,
        "wf.yaml",
        """
        id: sf
        specVersion: '0.8'
        start: S
        functions:
          - {name: log, type: custom, operation: sysout}
          - {name: whole, type: custom, operation: "service:java:com.acme.Svc::whole"}
        states:
          - name: S
            type: operation
            actions:
              - functionRef: {refName: log, arguments: {message: hello from sysout}}
              - functionRef: whole
            end: true
        """,
    )
    plain = run(str(wf), "--input", '{"a": 1, "b": 2}')
    assert plain.exit_code == 1
    assert "--functions" in plain.stderr  # service: needs a binding
    done = run(
        str(wf), "--input", '{"a": 1, "b": 2}', "--functions", str(funcs), "--dialect", "sonataflow"
    )
    assert done.exit_code == 0, done.stderr
    assert "hello from sysout" in done.stderr
    # no arguments under the SonataFlow dialect: the function gets the whole state data
    assert json.loads(done.stdout) == {"a": 1, "b": 2, "seen": ["a", "b"]}


def test_the_host_enforces_state_and_branch_timeouts(tmp_path: Path, funcs: Path) -> None:
    wf = write(
        tmp_path,
        "wf.yaml",
        """
        id: st
        specVersion: '0.8'
        start: Race
        errors:
          - {name: too slow, code: TIMEOUT}
        functions:
          - {name: slow, type: custom, operation: sysout}
          - {name: double, type: custom, operation: sysout}
        states:
          - name: Race
            type: parallel
            timeouts: {branchExecTimeout: PT0.1S}
            branches:
              - name: quick
                actions:
                  - functionRef: {refName: double, arguments: {n: 1}}
              - name: stuck
                actions:
                  - functionRef: slow
            onErrors:
              - {errorRef: too slow, transition: Whole state}
            end: true
          - name: Whole state
            type: operation
            timeouts: {stateExecTimeout: PT0.1S}
            actions:
              - functionRef: slow
            onErrors:
              - {errorRef: too slow, end: true}
            end: true
        """,
    )
    done = run(str(wf), "--functions", str(funcs), "--timeline")
    assert done.exit_code == 0, done.stderr
    assert done.stderr.count("error.handled") == 2
    assert "state.entered [Whole state]" in done.stderr
