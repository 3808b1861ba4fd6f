"""DSL 1.0 ``run: script``: the code in a separate, bounded interpreter process.

The script is arbitrary code, so where it may run is the policy's business
(:meth:`~tideflow.runtime.functions.policy.PythonPolicy.script_refusal`:
``tideflow run``, or a server started with ``--allow-scripts``). A Python
script runs as ``python -I -c <code> <arguments...>`` -- isolated mode: no
user site, no ``PYTHON*`` variables, the script's folder not on the path. A
JavaScript one (``js``/``javascript``) runs under the machine's Node.js
(20.11 or newer; ``node`` on ``PATH``) as ``node <flags> script.js
<arguments...>``, the code written to ``script.js`` in the working folder (an
ES module when it uses ``import``, else CommonJS), with Node's permission
model on: files are read and written only inside the working folder, no
child processes, workers, add-ons or WASI (the network is not restricted by
Node 20's model), and a V8 heap of at most :data:`JS_HEAP_MB` MiB. Either
runs with:

- the environment it declares and nothing of the server's (``PATH`` only, so
  that ``subprocess`` calls of the script find the usual tools: the script
  runs with the server's rights either way);
- an empty temporary working folder, removed afterwards;
- ``stdin`` as its standard input;
- a wall-clock limit (:data:`SCRIPT_SECONDS` unless the call says less): the
  process and its children are killed when it passes;
- CPU time, memory and file size limits (``setrlimit``, POSIX);
- at most :data:`OUTPUT_BYTES` of standard output and of standard error each
  (the rest is read and dropped, so the script never blocks on a full pipe).

The result is the spec's process result, ``{code, stdout, stderr}``; the
interpreter picks what ``return`` asks for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tideflow.egress import FetchLimits
from tideflow.runtime.functions.types import Invocation, call_error

__all__ = [
    "JS_SCRIPT_OPERATION",
    "OUTPUT_BYTES",
    "SCRIPT_LANGUAGES",
    "SCRIPT_OPERATION",
    "SCRIPT_SECONDS",
    "SCRIPT_SOURCE_LIMITS",
    "run_python_script",
    "run_script",
]

SCRIPT_OPERATION = "script:python"
"""The operation of a Python ``run: script`` call (``Invocation.type`` is ``script``)."""
JS_SCRIPT_OPERATION = "script:js"
"""The operation of a JavaScript ``run: script`` call."""
SCRIPT_LANGUAGES = {"python": SCRIPT_OPERATION, "js": JS_SCRIPT_OPERATION,
                    "javascript": JS_SCRIPT_OPERATION}  # fmt: skip
"""The operation of each ``script.language`` Tideflow runs (the spec says ``js``; its
examples say ``javascript``)."""
SCRIPT_SOURCE_LIMITS = FetchLimits(timeout=30.0, max_bytes=1 << 20)
"""A script's ``source``: read within 30 s, at most 1 MiB."""
JS_HEAP_MB = 256
"""Largest V8 heap of a JavaScript script (``--max-old-space-size``)."""
NODE_MIN = (20, 11)
"""Oldest Node.js that runs scripts (the permission model and ``--disable-warning``)."""
SCRIPT_SECONDS = 60.0
"""Longest a script may run (wall clock)."""
CPU_SECONDS = 60
MEMORY_BYTES = 1 << 30
FILE_BYTES = 64 << 20
OUTPUT_BYTES = 1 << 20
"""Most bytes kept of each of standard output and standard error."""
_CHUNK = 64 << 10


def _limits() -> None:  # pragma: no cover -- runs in the child, between fork and exec
    import resource

    for what, value in (
        (resource.RLIMIT_CPU, CPU_SECONDS),
        (resource.RLIMIT_AS, MEMORY_BYTES),
        (resource.RLIMIT_FSIZE, FILE_BYTES),
    ):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(what, (value, value))


async def _read_bounded(stream: asyncio.StreamReader | None) -> str:
    if stream is None:
        return ""
    kept = bytearray()
    while chunk := await stream.read(_CHUNK):
        if len(kept) < OUTPUT_BYTES:
            kept += chunk[: OUTPUT_BYTES - len(kept)]
    return kept.decode("utf-8", errors="replace")


def _environment(declared: Any) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", os.defpath)}
    if isinstance(declared, Mapping):
        env.update({str(k): "" if v is None else str(v) for k, v in declared.items()})
    return env


async def run_python_script(call: Invocation) -> dict[str, Any]:
    """:func:`run_script` of a Python script whose code is ``call.arguments["code"]``."""
    code = call.arguments.get("code")
    if not isinstance(code, str):
        raise call_error(f"task {call.name!r}: the script has no code", code="InvalidOperation")
    return await run_script(call, code)


async def run_script(call: Invocation, code: str) -> dict[str, Any]:
    """Run the code of a ``run: script`` call; its process result.

    The language is the call's operation (:data:`SCRIPT_OPERATION` or
    :data:`JS_SCRIPT_OPERATION`); ``call.arguments``: ``stdin``,
    ``arguments``, ``environment`` (the code itself comes resolved).

    Raises:
        FunctionCallError: No Node.js for a JavaScript script (``NotSupported``),
            or the script ran past its time (``TIMEOUT``: the process was killed).
    """
    args = call.arguments
    argv = [str(a) for a in _argument_list(args.get("arguments"))]
    stdin = args.get("stdin")
    seconds = min(call.timeout or SCRIPT_SECONDS, SCRIPT_SECONDS)
    with tempfile.TemporaryDirectory(prefix="tideflow-script-") as folder:
        if call.operation == JS_SCRIPT_OPERATION:
            command = [*await _node_command(call, folder, code), *argv]
        else:
            command = [sys.executable, "-I", "-c", code, *argv]
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=folder,
            env=_environment(args.get("environment")),
            start_new_session=True,  # its own process group: a kill reaches its children
            preexec_fn=_limits if os.name == "posix" else None,
        )  # fmt: skip
        try:
            async with asyncio.timeout(seconds):
                stdout, stderr, _ = await asyncio.gather(
                    _read_bounded(process.stdout),
                    _read_bounded(process.stderr),
                    _feed(process, stdin),
                )
                returned = await process.wait()
        except TimeoutError:
            _kill(process)
            await process.wait()
            raise call_error(
                f"task {call.name!r}: the script ran longer than {seconds:g} s and was stopped",
                code="TIMEOUT",
            ) from None
        finally:
            if process.returncode is None:  # cancelled: never leave it running
                _kill(process)
                with contextlib.suppress(ProcessLookupError):
                    await process.wait()
    return {"code": returned, "stdout": stdout, "stderr": stderr}


def _argument_list(value: Any) -> list[Any]:
    """The script's command-line arguments: a list as it is; a map (the spec's
    ``arguments`` object) as ``key value`` pairs; anything else as one argument."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, Mapping):
        return [part for k, v in value.items() for part in (k, "" if v is None else v)]
    return [value]


_NODE: dict[str, tuple[str, tuple[int, ...]] | None] = {}
"""The Node.js found on ``PATH`` and its version, looked up once per process."""


async def _node() -> tuple[str, tuple[int, ...]] | None:
    if "found" not in _NODE:
        path = shutil.which("node") or shutil.which("nodejs")
        found = None
        if path is not None:
            probe = await asyncio.create_subprocess_exec(
                path, "--version", stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL, env={},
            )  # fmt: skip
            try:
                async with asyncio.timeout(10):
                    out, _ = await probe.communicate()
            except TimeoutError:
                _kill(probe)
                out = b""
            digits = re.findall(r"\d+", out.decode(errors="replace"))
            found = (path, tuple(int(d) for d in digits[:3])) if digits else None
        _NODE["found"] = found
    return _NODE["found"]


async def _node_command(call: Invocation, folder: str, code: str) -> list[str]:
    """``node`` with its sandbox flags and the script file (written into ``folder``)."""
    node = await _node()
    if node is None or node[1][:2] < NODE_MIN:
        seen = "no node on PATH" if node is None else "Node.js " + ".".join(map(str, node[1]))
        raise call_error(
            f"task {call.name!r}: JavaScript scripts need Node.js "
            f"{'.'.join(map(str, NODE_MIN))} or newer ({seen})",
            code="NotSupported",
        )
    path, version = node
    script = os.path.join(folder, "script.js")
    await asyncio.to_thread(Path(script).write_text, code, encoding="utf-8")
    permission = "--permission" if version[:2] >= (23, 5) else "--experimental-permission"
    detect = ["--experimental-detect-module"] if version[0] < 22 else []
    return [
        path, permission, f"--allow-fs-read={folder}", f"--allow-fs-write={folder}", *detect,
        "--disable-warning=ExperimentalWarning", f"--max-old-space-size={JS_HEAP_MB}", script,
    ]  # fmt: skip


async def _feed(process: asyncio.subprocess.Process, stdin: Any) -> None:
    if process.stdin is None:
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        if stdin is not None:
            text = stdin if isinstance(stdin, str) else str(stdin)
            process.stdin.write(text.encode())
            await process.stdin.drain()
        process.stdin.close()


def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
