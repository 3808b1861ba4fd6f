"""The SonataFlow corpus: workflows in SonataFlow users' style, run with ``--dialect sonataflow``.

Each ``tests/sonataflow_corpus/NAME.sw.yaml`` (or ``.sw.json``) comes with
``NAME.input.json`` (absent for a workflow started by its event),
``NAME.expected.json`` -- the output SonataFlow's semantics give, or
``{"error": CODE}`` for a run that fails with that code -- and, for workflows
that wait, ``NAME.events.jsonl``. The services are the stand-ins of
``standins.py`` (``--functions``). The test prints how many workflows pass,
then fails naming every one that does not.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tideflow.cli import app

CORPUS = Path(__file__).resolve().parents[1] / "sonataflow_corpus"
STANDINS = CORPUS / "standins.py"


def _definitions() -> list[Path]:
    return sorted([*CORPUS.glob("*.sw.yaml"), *CORPUS.glob("*.sw.json")])


def _case_name(definition: Path) -> str:
    return definition.name.rsplit(".sw.", 1)[0]


def _run_case(runner: CliRunner, definition: Path) -> str | None:
    """Why the workflow does not give its expected result, or None."""
    name = _case_name(definition)
    args = ["run", str(definition), "--dialect", "sonataflow", "--functions", str(STANDINS)]
    if (CORPUS / f"{name}.input.json").is_file():
        args += ["--input", f"@{CORPUS / f'{name}.input.json'}"]
    if (CORPUS / f"{name}.events.jsonl").is_file():
        args += ["--events", str(CORPUS / f"{name}.events.jsonl")]
    expected = json.loads((CORPUS / f"{name}.expected.json").read_text(encoding="utf-8"))
    done = runner.invoke(app, args)
    if isinstance(expected, dict) and set(expected) == {"error"}:
        if done.exit_code == 1 and expected["error"] in done.stderr:
            return None
        return f"{name}: expected failure {expected['error']}, got exit {done.exit_code}: " + (
            done.stderr.strip() or done.stdout.strip()
        )
    if done.exit_code != 0:
        return f"{name}: exit {done.exit_code}: {done.stderr.strip()}"
    output = json.loads(done.stdout)
    if output != expected:
        return f"{name}: output {json.dumps(output)} != expected {json.dumps(expected)}"
    return None


def test_the_corpus_runs_with_the_dialect() -> None:
    definitions = _definitions()
    assert len(definitions) >= 30
    runner = CliRunner()
    failures = [f for f in (_run_case(runner, d) for d in definitions) if f is not None]
    passed = len(definitions) - len(failures)
    print(f"\nsonataflow corpus: {passed} of {len(definitions)} workflows give SonataFlow's result")
    assert failures == []


def test_every_case_has_its_expected_output_and_input_files() -> None:
    for definition in _definitions():
        name = _case_name(definition)
        assert (CORPUS / f"{name}.expected.json").is_file(), name
        started_by_event = (CORPUS / f"{name}.events.jsonl").is_file()
        assert started_by_event or (CORPUS / f"{name}.input.json").is_file(), name
