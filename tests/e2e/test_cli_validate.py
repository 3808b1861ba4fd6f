"""``tideflow validate`` through the real command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.conformance import SW08_EXAMPLES, skip_unless

EXAMPLES = SW08_EXAMPLES
VALID = """\
id: hello
specVersion: "0.8"
states:
  - name: Hello
    type: inject
    data: {result: Hello}
    end: true
"""


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tideflow.cli", "validate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        check=False,
    )


def test_valid_file_prints_ok_and_exits_0(tmp_path: Path) -> None:
    (tmp_path / "hello.yaml").write_text(VALID)
    result = run("hello.yaml", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "hello.yaml: ok\n", "")


def test_warnings_follow_ok_indented(tmp_path: Path) -> None:
    text = VALID.replace('specVersion: "0.8"\n', "")
    text += "  - name: Orphan\n    type: inject\n    data: {}\n    end: true\n"
    (tmp_path / "w.yaml").write_text(text)
    result = run("w.yaml", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "w.yaml: ok",
        "  warning: specVersion: missing; read as Serverless Workflow 0.8",
        "  warning: states[1]: state 'Orphan' is never reached from the start state",
    ]


def test_invalid_file_prints_one_line_per_problem_and_exits_1(tmp_path: Path) -> None:
    text = VALID.replace("end: true", "transition: Helo").replace(
        "type: inject", "type: inject\n    duration: soon"
    )
    (tmp_path / "bad.yaml").write_text(text)
    result = run("bad.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "bad.yaml: states[0].duration: not a property of an inject state",
        "bad.yaml: states[0].transition: no state named 'Helo'; did you mean 'Hello'?",
    ]


def test_a_yaml_alias_cycle_is_a_problem_with_its_path(tmp_path: Path) -> None:
    (tmp_path / "cycle.yaml").write_text(VALID.replace("data: {result: Hello}", "data: &d {x: *d}"))
    result = run("cycle.yaml", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (1, "")
    assert result.stdout.splitlines() == [
        "cycle.yaml: states[0].data.x: refers back to states[0].data, which contains it: "
        "a definition cannot contain itself (a YAML alias cycle)"
    ]


def test_unparseable_file_exits_2_and_others_are_still_checked(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(VALID)
    (tmp_path / "broken.yaml").write_text("id: x\nstates: [\n")
    result = run("ok.yaml", "broken.yaml", "missing.yaml", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert lines[0] == "ok.yaml: ok"
    assert lines[1].startswith("broken.yaml: YAML syntax error at line 3: ")
    assert lines[2] == "missing.yaml: no such file"


def test_spec_examples() -> None:
    skip_unless(EXAMPLES)
    result = run("helloworld.yaml", "booklending.yaml", cwd=EXAMPLES)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "helloworld.yaml: ok"
    assert (
        "booklending.yaml: states[4].eventConditions[1].transition: no state named "
        "'Cancel Request'" in lines
    )
    assert (
        "booklending.yaml: functions: cannot read "
        "'file://books/lending/functions.json': no such file" in lines
    )


def test_help_lists_validate() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tideflow.cli", "validate", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "FILE..." in result.stdout


DSL1 = """\
document: {dsl: '1.0.3', namespace: test, name: hello, version: '1.0.0'}
do:
  - greet:
      set: {greeting: hello}
      then: stop
"""


def test_dsl1_file_is_validated_with_paths(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(DSL1.replace("then: stop", "then: end"))
    (tmp_path / "bad.yaml").write_text(DSL1)
    result = run("ok.yaml", "bad.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "ok.yaml: ok",
        "bad.yaml: do[0].greet.then: 'stop' is not a task of this list nor one of "
        "'continue', 'exit', 'end'",
    ]


def test_the_sonataflow_dialect_validates_as_sonataflow_reads() -> None:
    corpus = Path(__file__).resolve().parents[1] / "sonataflow_corpus"
    wf = corpus / "switch-without-default-matches.sw.yaml"
    strict = run(wf)
    assert strict.returncode == 1
    assert "states[0].defaultCondition: missing" in strict.stdout
    lenient = run("--dialect", "sonataflow", wf)
    assert (lenient.returncode, lenient.stdout.strip()) == (0, f"{wf}: ok")
    assert run("--dialect", "jbpm", wf).returncode == 2
