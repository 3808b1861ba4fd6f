"""DSL 1.0 ``run: script``: the interpreter hands the host one journaled call and picks the output.

The process itself is the host's (``tests/integration/test_python_scripts.py``).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tideflow.runtime.dsl1 import Interpreter
from tideflow.runtime.effects import FunctionCall
from tideflow.runtime.fake import ScriptedEffects
from tideflow.runtime.functions.policy import FORBIDDEN, PythonPolicy
from tideflow.runtime.functions.scripts import JS_SCRIPT_OPERATION, SCRIPT_OPERATION
from tideflow.runtime.functions.types import Invocation
from tideflow.runtime.result import Completed, Failed
from tideflow.workflow.dsl1 import load_document, script_runs

HEAD = "document: {dsl: '1.0.3', namespace: test, name: wf, version: '1.0.0'}\n"
RESULT = {"code": 3, "stdout": "out\n", "stderr": "err\n"}

SCRIPT = """
do:
  - compute:
      run:
        script:
          language: python
          code: 'print("${ not evaluated }")'
          arguments: ['${ .name }', plain]
          environment: {WHO: '${ .name }'}
          stdin: '${ .n | tostring }'
        {extra}
"""


async def run(extra: str = "", data: Any = None) -> tuple[Any, ScriptedEffects]:
    model, _ = load_document(yaml.safe_load(HEAD + SCRIPT.replace("{extra}", extra)))
    effects = ScriptedEffects({"compute": RESULT})
    result = await Interpreter(model).run(data or {"name": "ada", "n": 2}, effects)
    return result, effects


async def test_the_script_is_one_call_of_the_host_with_its_parts_evaluated() -> None:
    result, effects = await run()
    (call,) = [r for r in effects.requests if isinstance(r, FunctionCall)]
    assert (call.function.type, call.function.operation) == ("script", SCRIPT_OPERATION)
    assert call.key == "compute/call"
    assert call.arguments == {
        "language": "python",
        "code": 'print("${ not evaluated }")',
        "arguments": ["ada", "plain"],
        "environment": {"WHO": "ada"},
        "stdin": "2",
    }
    assert isinstance(result, Completed)
    assert result.output == "out\n"  # return: stdout by default


@pytest.mark.parametrize(
    ("returned", "output"),
    [("stderr", "err\n"), ("code", 3), ("all", RESULT), ("none", None)],
)
async def test_return_picks_the_output(returned: str, output: Any) -> None:
    result, _ = await run(f"return: {returned}")
    assert isinstance(result, Completed)
    assert result.output == output


async def test_a_script_not_awaited_outputs_its_input() -> None:
    result, effects = await run("await: false")
    (call,) = [r for r in effects.requests if isinstance(r, FunctionCall)]
    assert call.invoke == "async"
    assert isinstance(result, Completed)
    assert result.output == {"name": "ada", "n": 2}


async def test_a_script_source_is_handed_to_the_host_as_its_evaluated_endpoint() -> None:
    text = HEAD + """
do:
  - compute:
      run:
        script:
          language: javascript
          source:
            endpoint:
              uri: 'https://scripts.example/{name}.js'
              authentication: {bearer: {token: '${ .token }'}}
          arguments: [x]
"""
    model, _ = load_document(yaml.safe_load(text))
    effects = ScriptedEffects({"compute": RESULT})
    result = await Interpreter(model).run({"name": "greet", "token": "t0"}, effects)
    assert isinstance(result, Completed)
    (call,) = [r for r in effects.requests if isinstance(r, FunctionCall)]
    assert call.function.operation == JS_SCRIPT_OPERATION
    assert call.arguments == {
        "language": "javascript",
        "source": {"uri": "https://scripts.example/greet.js",
                   "authentication": {"bearer": {"token": "t0"}}},
        "arguments": ["x"],
    }  # fmt: skip


async def test_a_language_not_run_here_is_a_configuration_error() -> None:
    text = HEAD + """
do:
  - compute:
      run:
        script: {language: ruby, code: 'puts 1'}
"""
    model, warnings = load_document(yaml.safe_load(text), processes=None)  # validate only
    assert [w.severity for w in warnings] == ["warning"]
    result = await Interpreter(model).run({}, ScriptedEffects())
    assert isinstance(result, Failed)
    assert (result.error.details or {})["type"].endswith("/errors/configuration")
    assert "ruby" in result.error.message


def test_servers_refuse_scripts_unless_allowed_and_the_paths_are_known() -> None:
    model, _ = load_document(yaml.safe_load(HEAD + SCRIPT.replace("{extra}", "")))
    assert script_runs(model) == [("do", 0, "compute", "run", "script")]
    call = Invocation(name="compute", operation=SCRIPT_OPERATION, type="script")
    refused = PythonPolicy.for_server(["json"]).call_error(call)
    assert refused is not None
    assert refused.code == FORBIDDEN
    assert "--allow-scripts" in str(refused)
    assert PythonPolicy.for_server(scripts=True).call_error(call) is None
    assert PythonPolicy.everything().script_refusal() is None
