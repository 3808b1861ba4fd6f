"""DSL 1.0 ``run: script`` in JavaScript for real: the machine's Node.js, sandboxed and bounded.

Real child processes and a real HTTP server on 127.0.0.1 (no database):
arguments, stdin and the declared environment only; Node's permission model
(no file outside the working folder, no child process); the heap bound and
the wall clock; a ``source`` read from a file or over HTTP through the egress
policy; and the same through ``tideflow run``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_python_scripts import tideflow_run
from tests.support.refserver import ref_server
from tideflow.egress import EgressPolicy
from tideflow.errors import EgressDenied, FunctionCallError
from tideflow.runtime.functions.invoker import FunctionInvoker
from tideflow.runtime.functions.scripts import JS_SCRIPT_OPERATION, SCRIPT_SOURCE_LIMITS
from tideflow.runtime.functions.types import Invocation


def script(code: str | None = None, **arguments: Any) -> Invocation:
    given = {"code": code} if code is not None else {}
    return Invocation(
        name="compute",
        operation=JS_SCRIPT_OPERATION,
        type="script",
        arguments={"language": "js", **given, **arguments},
    )


async def invoke(call: Invocation, egress: EgressPolicy | None = None) -> Any:
    async with FunctionInvoker(egress=egress) as invoker:
        return await invoker.invoke(call)


async def test_a_script_gets_its_arguments_stdin_and_environment_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIDEFLOW_SERVER_SECRET", "do-not-pass")
    code = """
import { readFileSync, readdirSync } from 'node:fs';
const stdin = readFileSync(process.stdin.fd, 'utf8');
console.log(JSON.stringify({argv: process.argv.slice(2), stdin, who: process.env.WHO,
  secret: process.env.TIDEFLOW_SERVER_SECRET ?? null,
  folder: readdirSync('.')}));
console.error('warned');
process.exitCode = 3;
"""
    result = await invoke(
        script(code, arguments=["a", "b"], stdin="in", environment={"WHO": "ada"})
    )
    assert result["stderr"] == "warned\n"
    assert result["code"] == 3
    assert json.loads(result["stdout"]) == {
        "argv": ["a", "b"],
        "stdin": "in",
        "who": "ada",
        "secret": None,
        "folder": ["script.js"],
    }


async def test_common_js_runs_too_and_the_sandbox_holds(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    code = f"""
const fs = require('node:fs');
const tried = {{}};
try {{ fs.readFileSync({json.dumps(str(outside))}); tried.read = 'allowed' }}
catch (e) {{ tried.read = e.code }}
try {{ require('node:child_process').execSync('id'); tried.spawn = 'allowed' }}
catch (e) {{ tried.spawn = e.code }}
fs.writeFileSync('own.txt', 'mine');
tried.own = fs.readFileSync('own.txt', 'utf8');
console.log(JSON.stringify(tried));
"""
    result = await invoke(script(code))
    assert result["code"] == 0, result["stderr"]
    assert json.loads(result["stdout"]) == {
        "read": "ERR_ACCESS_DENIED",
        "spawn": "ERR_ACCESS_DENIED",
        "own": "mine",
    }


async def test_a_script_past_its_heap_fails_and_one_past_its_time_is_stopped() -> None:
    hungry = await invoke(script("const a = []; while (true) a.push(new Array(1e6).fill(1));"))
    assert hungry["code"] != 0
    assert "heap" in hungry["stderr"].lower()
    call = replace(script("while (true) {}"), timeout=0.5)
    with pytest.raises(FunctionCallError) as caught:
        await invoke(call)
    assert caught.value.code == "TIMEOUT"


async def test_a_source_is_read_from_a_file_or_over_http(tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "greet.js").write_text("console.log('file', process.argv[2])")
    local = replace(script(source={"uri": "greet.js"}, arguments=["ada"]), base_dir=folder)
    assert (await invoke(local))["stdout"] == "file ada\n"
    assert (await invoke(replace(local, arguments={
        **local.arguments, "source": {"uri": f"file://{folder / 'greet.js'}"}})))["stdout"] == (
        "file ada\n"
    )  # fmt: skip
    server_policy = EgressPolicy.for_server(allow=["127.0.0.1"], folders=[folder])
    (tmp_path / "elsewhere.js").write_text("console.log('no')")
    elsewhere = {**local.arguments, "source": {"uri": str(tmp_path / "elsewhere.js")}}
    with pytest.raises(EgressDenied):
        await invoke(replace(local, arguments=elsewhere), server_policy)
    big_file = {**local.arguments, "source": {"uri": "big.js"}}
    (folder / "big.js").write_text("//" + "x" * SCRIPT_SOURCE_LIMITS.max_bytes)
    with pytest.raises(FunctionCallError) as too_big:
        await invoke(replace(local, arguments=big_file), server_policy)
    assert too_big.value.code == "RESPONSE_TOO_LARGE"
    async with ref_server() as server:
        server.documents["/greet.js"] = "console.log('http', process.argv[2])"
        server.documents["/big.js"] = "//" + "x" * SCRIPT_SOURCE_LIMITS.max_bytes
        remote = script(source={"uri": f"{server.url}/greet.js"}, arguments=["bo"])
        assert (await invoke(remote, server_policy))["stdout"] == "http bo\n"
        with pytest.raises(FunctionCallError) as denied:
            await invoke(remote, EgressPolicy.for_server())  # loopback not allowed
        assert denied.value.code == "EGRESS_DENIED"
        with pytest.raises(FunctionCallError) as missing:
            await invoke(script(source={"uri": f"{server.url}/none.js"}), server_policy)
        assert missing.value.code == "404"
        with pytest.raises(FunctionCallError) as big:
            await invoke(script(source={"uri": f"{server.url}/big.js"}), server_policy)
        assert big.value.code == "RESPONSE_TOO_LARGE"


def test_tideflow_run_runs_the_examples_javascript(tmp_path: Path) -> None:
    (tmp_path / "double.js").write_text(
        "const n = Number(require('node:fs').readFileSync(0, 'utf8'));"
        "console.log(process.argv[2], n * 2, process.env.UNIT)"
    )
    definition = tmp_path / "scripted.yaml"
    definition.write_text(
        """
document: {dsl: '1.0.3', namespace: test, name: scripted, version: '1.0.0'}
do:
  - compute:
      run:
        script:
          language: javascript
          source: {endpoint: double.js}
          arguments: ['${ .name }']
          stdin: '${ .n | tostring }'
          environment: {UNIT: km}
        return: all
  - shape: {set: {said: '${ .stdout }', code: '${ .code }'}}
"""
    )
    assert tideflow_run(definition, {"name": "ada", "n": 21}) == {"said": "ada 42 km\n", "code": 0}
