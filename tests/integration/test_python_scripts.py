"""DSL 1.0 ``run: script`` processes for real: a separate Python, bounded, given only its inputs.

Real child processes (no database): the result parts, the environment kept
to what the script declares, a script that runs too long stopped, output
kept within its bound, and the same through ``tideflow run``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tideflow.errors import FunctionCallError
from tideflow.runtime.functions.invoker import FunctionInvoker
from tideflow.runtime.functions.scripts import OUTPUT_BYTES, SCRIPT_OPERATION
from tideflow.runtime.functions.types import Invocation


def script(code: str, **arguments: Any) -> Invocation:
    return Invocation(
        name="compute",
        operation=SCRIPT_OPERATION,
        type="script",
        arguments={"language": "python", "code": code, **arguments},
    )


async def invoke(call: Invocation) -> Any:
    async with FunctionInvoker() as invoker:
        return await invoker.invoke(call)


async def test_a_script_gets_its_arguments_stdin_and_environment_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIDEFLOW_SERVER_SECRET", "do-not-pass")
    code = (
        "import json, os, sys\n"
        "print(json.dumps({'argv': sys.argv[1:], 'stdin': sys.stdin.read(),"
        " 'who': os.environ.get('WHO'), 'secret': os.environ.get('TIDEFLOW_SERVER_SECRET'),"
        " 'cwd_empty': os.listdir('.') == []}))\n"
        "print('warned', file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    result = await invoke(
        script(code, arguments=["a", "b"], stdin="in", environment={"WHO": "ada"})
    )
    assert result["code"] == 3
    assert result["stderr"] == "warned\n"
    assert json.loads(result["stdout"]) == {
        "argv": ["a", "b"],
        "stdin": "in",
        "who": "ada",
        "secret": None,
        "cwd_empty": True,
    }


async def test_a_script_that_runs_too_long_is_stopped() -> None:
    call = replace(script("import time\nwhile True:\n    time.sleep(0.05)\n"), timeout=0.5)
    with pytest.raises(FunctionCallError) as caught:
        await invoke(call)
    assert caught.value.code == "TIMEOUT"


async def test_output_is_kept_within_its_bound() -> None:
    result = await invoke(script(f"import sys\nsys.stdout.write('x' * {OUTPUT_BYTES * 2})\n"))
    assert result["code"] == 0
    assert len(result["stdout"]) == OUTPUT_BYTES


def test_tideflow_run_runs_a_python_script(tmp_path: Path) -> None:
    definition = tmp_path / "scripted.yaml"
    definition.write_text(
        """
document: {dsl: '1.0.3', namespace: test, name: scripted, version: '1.0.0'}
do:
  - compute:
      run:
        script:
          language: python
          arguments: ['${ .name }']
          stdin: '${ .n | tostring }'
          code: |
            import sys
            print(sys.argv[1], int(sys.stdin.read()) * 2)
        return: all
  - shape: {set: {said: '${ .stdout }', code: '${ .code }'}}
"""
    )
    assert tideflow_run(definition, {"name": "ada", "n": 21}) == {"said": "ada 42\n", "code": 0}


def tideflow_run(definition: Path, data: Any) -> Any:
    """The output of ``tideflow run`` of ``definition`` with input ``data`` (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "-m", "tideflow.cli", "run", str(definition),
         "--input", json.dumps(data)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
