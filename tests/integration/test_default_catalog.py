"""The default catalog of DSL 1.0 functions: ``catalog/functions/{name}/{version}/function.yaml``
beside the definition, read once at load, nothing outside it (real files in a temporary folder)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tideflow.catalogs import FUNCTION_BYTES, with_default_catalog
from tideflow.errors import WorkflowValidationError, format_path

GREET = """
input:
  schema:
    document: {type: object, required: [name]}
set:
  greeting: '${ "hello " + .name }'
"""


def calling(*calls: str) -> dict[str, object]:
    return {
        "document": {"dsl": "1.0.3", "namespace": "test", "name": "cat", "version": "1.0.0"},
        "do": [{f"t{i}": {"call": call, "with": {"name": "ada"}}} for i, call in enumerate(calls)],
    }


def catalog(folder: Path, name: str = "greet", version: str = "1.0.0", text: str = GREET) -> Path:
    where = folder / "catalog" / "functions" / name / version
    where.mkdir(parents=True)
    (where / "function.yaml").write_text(text)
    return where / "function.yaml"


def refused(document: dict[str, object], folder: Path) -> list[tuple[str, str]]:
    with pytest.raises(WorkflowValidationError) as caught:
        with_default_catalog(document, folder)
    return [(format_path(p.path), p.message) for p in caught.value.problems]


def test_a_called_function_is_read_into_use_functions_once(tmp_path: Path) -> None:
    catalog(tmp_path)
    document = calling("greet:1.0.0@default", "greet:1.0.0@default")
    resolved = with_default_catalog(document, tmp_path)
    functions = resolved["use"]["functions"]
    assert list(functions) == ["greet:1.0.0@default"]
    assert functions["greet:1.0.0@default"]["set"] == {"greeting": '${ "hello " + .name }'}
    assert "use" not in document  # the given document is left alone
    assert with_default_catalog(document, None) == document  # no folder: nothing read


def test_missing_outside_or_oversized_functions_are_problems_at_the_call(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "function.yaml").write_text(GREET)
    linked = tmp_path / "catalog" / "functions" / "linked" / "1"
    linked.mkdir(parents=True)
    os.symlink(outside / "function.yaml", linked / "function.yaml")
    catalog(tmp_path, "big", "1", "x: " + "y" * FUNCTION_BYTES)
    problems = refused(
        calling("nope:1@default", "..:1@default", "linked:1@default", "big:1@default"), tmp_path
    )
    assert [p for p, _ in problems] == ["do[0].t0.call", "do[1].t1.call", "do[2].t2.call",
                                        "do[3].t3.call"]  # fmt: skip
    assert "not in the default catalog" in problems[0][1]
    assert "plain names" in problems[1][1]
    assert "not in the default catalog" in problems[2][1]  # a link out of the folder
    assert "larger than" in problems[3][1]


def test_tideflow_run_calls_a_function_of_the_default_catalog(tmp_path: Path) -> None:
    catalog(tmp_path)
    definition = tmp_path / "cat.yaml"
    definition.write_text(json.dumps(calling("greet:1.0.0@default")))
    done = subprocess.run(
        [sys.executable, "-m", "tideflow.cli", "run", str(definition), "--input", "{}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"greeting": "hello ada"}
