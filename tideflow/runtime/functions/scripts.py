"""DSL 1.0 ``run: script`` in Python: the code in a separate, bounded interpreter process.

The script is arbitrary code, so where it may run is the policy's business
(:meth:`~tideflow.runtime.functions.policy.PythonPolicy.script_refusal`:
``tideflow run``, or a server started with ``--allow-scripts``). Here it runs
as ``python -I -c <code> <arguments...>`` -- isolated mode: no user site, no
``PYTHON*`` variables, the script's folder not on the path -- with:

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
import signal
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

from tideflow.runtime.functions.types import Invocation, call_error

__all__ = ["OUTPUT_BYTES", "SCRIPT_OPERATION", "SCRIPT_SECONDS", "run_python_script"]

SCRIPT_OPERATION = "script:python"
"""The operation of a ``run: script`` call (``Invocation.type`` is ``script``)."""
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
    """Run the script of a ``run: script`` call; its process result.

    ``call.arguments``: ``code``, ``stdin``, ``arguments``, ``environment``.

    Raises:
        FunctionCallError: The script has no code, or ran past its time
            (``TIMEOUT``: the process was killed).
    """
    args = call.arguments
    code = args.get("code")
    if not isinstance(code, str):
        raise call_error(f"task {call.name!r}: the script has no code", code="InvalidOperation")
    argv = [str(a) for a in args.get("arguments") or ()]
    stdin = args.get("stdin")
    seconds = min(call.timeout or SCRIPT_SECONDS, SCRIPT_SECONDS)
    with tempfile.TemporaryDirectory(prefix="tideflow-script-") as folder:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-c", code, *argv,
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
