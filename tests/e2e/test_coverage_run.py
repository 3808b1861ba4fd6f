"""Spec coverage through the real ``tideflow run`` (docs/spec-coverage.md).

Features of the conformance checklist that only a host can show: instance
ids, the default input, the CloudEvent attributes of produced events,
``continueAs`` inside a sub-flow, and SonataFlow's inferred result events.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from typer.testing import CliRunner, Result

from tideflow.cli import app

runner = CliRunner()


def write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


def run(*args: str) -> Result:
    return runner.invoke(app, ["run", *args])


IDS = """
id: ids
specVersion: '0.8'
functions:
  - {name: echo, type: custom, operation: sysout}
states:
  - name: S
    type: operation
    actions:
      - functionRef:
          refName: echo
          arguments: {instance: '${ $WORKFLOW.instanceId }', started: '${ $WORKFLOW.startTime }'}
    end: true
"""


def test_each_run_gets_its_own_instance_id_and_no_shared_data(tmp_path: Path) -> None:
    wf = write(tmp_path, "wf.yaml", IDS)
    funcs = write(tmp_path, "f.py", "def echo(args):\n    return {'seen': args}\n")
    first = run(str(wf), "--functions", str(funcs), "--input", '{"only": "first"}')
    second = run(str(wf), "--functions", str(funcs))  # in the same process, after the first
    assert first.exit_code == second.exit_code == 0, first.stderr + second.stderr
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert one["seen"]["instance"] != two["seen"]["instance"]
    assert one["seen"]["started"].endswith("Z")
    assert one["only"] == "first"
    assert set(two) == {"seen"}  # no input: {} -- nothing of the first instance's data


def test_produced_events_are_cloudevents_with_runtime_attributes(tmp_path: Path) -> None:
    wf = write(
        tmp_path,
        "wf.yaml",
        """
        id: emitter
        specVersion: '0.8'
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
                  contextAttributes: {orderid: o-1}
        """,
    )
    done = run(str(wf), "--timeline")
    assert done.exit_code == 0, done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.startswith("emitted ")]
    event = json.loads(line.removeprefix("emitted "))
    assert event["specversion"] == "1.0"
    assert event["type"] == "com.example.done"
    assert event["source"] == "/tideflow/emitter"
    assert event["orderid"] == "o-1"
    assert event["data"] == 1
    assert event["id"]
    assert event["time"].endswith("Z")


def test_a_sub_flow_ending_with_continue_as_gives_the_last_run_s_output(tmp_path: Path) -> None:
    write(
        tmp_path,
        "child.yaml",
        """
        id: child
        specVersion: '0.8'
        states:
          - name: C
            type: inject
            data: {child: ran}
            end:
              continueAs:
                workflowId: grandchild
                data: '${ {fromChild: .child, n: .n} }'
        """,
    )
    write(
        tmp_path,
        "grandchild.yaml",
        """
        id: grandchild
        specVersion: '0.8'
        states:
          - name: G
            type: inject
            data: {grandchild: ran}
            end: true
        """,
    )
    wf = write(
        tmp_path,
        "parent.yaml",
        """
        id: parent
        specVersion: '0.8'
        states:
          - name: P
            type: operation
            actions:
              - subFlowRef: child
                actionDataFilter: {toStateData: '${ .result }'}
            end: true
        """,
    )
    done = run(str(wf), "--input", '{"n": 7}', "--timeline")
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout) == {
        "n": 7,
        "result": {"fromChild": "ran", "n": 7, "grandchild": "ran"},
    }


CALLBACK_WITHOUT_EVENT = """
id: sf-callback
specVersion: '0.8'
functions:
  - {name: ask, type: custom, operation: sysout}
events:
  - {name: Answer, type: com.example.answer, source: /svc}
states:
  - name: Ask
    type: callback
    action:
      functionRef: {refName: ask, arguments: {message: asking}}
    end: true
"""


def test_sonataflow_callback_without_event_ref_is_refused_as_sonataflow_does(
    tmp_path: Path,
) -> None:
    # SonataFlow's CallbackHandler looks the event up by name: none is an error there too.
    wf = write(tmp_path, "wf.yaml", CALLBACK_WITHOUT_EVENT)
    done = run(str(wf), "--dialect", "sonataflow")
    assert done.exit_code == 2
    assert "states[0].eventRef" in done.stderr


def test_sonataflow_event_ref_without_result_event_ref_publishes_only(tmp_path: Path) -> None:
    wf = write(
        tmp_path,
        "wf.yaml",
        """
        id: sf-eventref
        specVersion: '0.8'
        events:
          - {name: Ask, type: com.example.ask}
          - {name: Answer, type: com.example.answer}
        states:
          - name: S
            type: operation
            actions:
              - eventRef: {triggerEventRef: Ask, data: '${ {q: .q} }'}
            transition: Wait
          - name: Wait
            type: event
            onEvents:
              - eventRefs: [Answer]
            end: true
        """,
    )
    event = {
        "specversion": "1.0",
        "id": "a1",
        "type": "com.example.answer",
        "source": "/anywhere",
        "data": {"answer": 42},
    }
    (tmp_path / "ev.jsonl").write_text(json.dumps(event) + "\n")
    done = run(
        str(wf),
        "--dialect",
        "sonataflow",
        "--events",
        str(tmp_path / "ev.jsonl"),
        "--input",
        '{"q": 1}',
        "--timeline",
    )
    assert done.exit_code == 0, done.stderr
    # the action did not swallow the answer: the event state that waits for it got it
    assert json.loads(done.stdout) == {"q": 1, "answer": 42}
    assert "com.example.ask" in done.stderr
