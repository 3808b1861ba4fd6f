"""Every example in examples/workflows runs through the real ``tideflow run``.

Each ``NAME.yaml`` has ``NAME.input.json`` and ``NAME.output.json``; optional
``NAME.events.jsonl`` and ``NAME.functions.py`` are passed as ``--events`` and
``--functions``. Examples that call services address them as
``http://127.0.0.1:8081`` (``tideflow demo-services``); the test starts those services (REST with an
OpenAPI document, GraphQL, OData) on a free port and passes ``--server``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.services import Services, start_services

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "workflows"
NAMES = sorted(p.name.removesuffix(".yaml") for p in EXAMPLES.glob("*.yaml"))

STATE_TYPES = {"operation", "switch", "sleep", "inject", "parallel", "foreach", "event", "callback"}
FUNCTION_TYPES = {"rest", "graphql", "odata", "expression", "custom"}


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with start_services() as running:
        yield running


def run_example(name: str, services: Services) -> subprocess.CompletedProcess[str]:
    """``tideflow run`` one example the way its files say."""
    args = [sys.executable, "-m", "tideflow.cli", "run", str(EXAMPLES / f"{name}.yaml")]
    args += ["--input", f"@{EXAMPLES / f'{name}.input.json'}"]
    args += ["--server", f"http://127.0.0.1:8081={services.base_url}"]
    if (EXAMPLES / f"{name}.events.jsonl").exists():
        args += ["--events", str(EXAMPLES / f"{name}.events.jsonl")]
    if (EXAMPLES / f"{name}.functions.py").exists():
        args += ["--functions", str(EXAMPLES / f"{name}.functions.py")]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)


@pytest.mark.parametrize("name", NAMES)
def test_example_gives_its_output(name: str, services: Services) -> None:
    services.state.reset()
    done = run_example(name, services)
    assert done.returncode == 0, done.stderr
    expected = json.loads((EXAMPLES / f"{name}.output.json").read_text())
    assert json.loads(done.stdout) == expected


def _documents() -> list[dict[str, Any]]:
    return [yaml.safe_load((EXAMPLES / f"{n}.yaml").read_text()) for n in NAMES]


def _walk(node: Any, key: str) -> Iterator[Any]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from _walk(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, key)


def test_examples_cover_every_state_function_and_feature() -> None:
    docs = _documents()
    assert len(docs) >= 15
    for name in NAMES:
        for suffix in (".input.json", ".output.json"):
            assert (EXAMPLES / f"{name}{suffix}").exists(), f"{name}{suffix} is missing"
    states = {s["type"] for d in docs for s in d["states"]}
    assert states >= STATE_TYPES
    functions = [f for d in docs for f in d.get("functions", [])]
    assert {f.get("type", "rest") for f in functions} >= FUNCTION_TYPES
    operations = [f["operation"] for f in functions if f.get("type") == "custom"]
    assert any(op.startswith("python:") for op in operations)
    assert any(op.startswith("rest:") for op in operations)
    text = "\n".join((EXAMPLES / f"{n}.yaml").read_text() for n in NAMES)
    for feature in (
        "retryRef",
        "actionExecTimeout",
        "compensatedBy",
        "subFlowRef",
        "onEvents",
        "produceEvents",
        "eventConditions",
        "completionType",
        "workflowExecTimeout",
        "batchSize",
        "onErrors",
    ):
        assert feature in text, f"no example uses {feature}"
    assert list(_walk(docs, "compensate"))


def test_hello_world_runs_as_the_readme_says() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tideflow.cli",
            "run",
            "examples/workflows/hello-world.yaml",
            "--input",
            '{"name": "Ada"}',
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"message": "Hello, Ada!"}
