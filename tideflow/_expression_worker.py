"""The worker process of :mod:`tideflow.expression_budget` (``python -m`` this module).

It reads jobs (length-prefixed pickles) on stdin and answers on stdout, one
at a time, evaluating in-process under an address-space limit. Nothing but
the parent, through its pipes, talks to it.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import resource
import signal
import struct
import sys
from typing import Any

_HEADER = struct.Struct("!Q")
_PR_SET_PDEATHSIG = 1


def read_frame(fd: int) -> bytes | None:
    """One frame from ``fd``; ``None`` at end of file."""
    header = _read_exactly(fd, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    return _read_exactly(fd, size)


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks: list[bytes] = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def write_frame(fd: int, payload: bytes) -> None:
    """Write one frame to ``fd``."""
    view = memoryview(_HEADER.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view) :]


def main(argv: list[str]) -> None:
    """Serve jobs until stdin closes: ``argv`` is ``[memory_bytes, seconds]``."""
    memory_bytes, seconds = int(argv[0]), float(argv[1])
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before that took effect
        return
    from tideflow.workflow import expressions

    expressions.install_evaluator(None)  # evaluate here, in-process
    _limit_memory(memory_bytes)
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    write_frame(stdout, pickle.dumps("ready"))
    while (payload := read_frame(stdin)) is not None:
        _limit_cpu(seconds)
        try:
            answer = pickle.dumps(_outcome(expressions, payload))
        except MemoryError:
            answer = pickle.dumps(("memory", "the result is too large"))
        write_frame(stdout, answer)


def _die_with_parent() -> None:
    """Linux: be killed when the parent dies (a runaway must not outlive a killed server).

    Elsewhere the CPU limit (:func:`_limit_cpu`) is the only backstop.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _outcome(expressions: Any, payload: bytes) -> tuple[str, Any]:
    from tideflow.errors import ExpressionError

    method, source, lang, data, variables = pickle.loads(payload)
    try:
        expression = expressions.compile_expression(source, lang)
        return "ok", getattr(expression, method)(data, variables)
    except ExpressionError as exc:
        return "error", exc.message
    except MemoryError:
        return "memory", "out of memory"
    except RecursionError:
        return "memory", "too deeply nested"


def _limit_memory(memory_bytes: int) -> None:
    """Limit the address space to its present size plus ``memory_bytes`` (Linux)."""
    try:
        with open("/proc/self/statm") as statm:
            present = int(statm.read().split()[0]) * resource.getpagesize()
    except OSError:
        present = 0
    limit = present + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _limit_cpu(seconds: float) -> None:
    """A CPU-time backstop: the worker dies should its parent not kill it in time."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime + seconds) + 2
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


if __name__ == "__main__":
    main(sys.argv[1:])
