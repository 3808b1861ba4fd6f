"""Expressions that can run away are evaluated in worker processes, under a budget.

The ``jq`` package is a C extension: an evaluation cannot be interrupted from
Python, and a program such as ``def f: [f]; f`` aborts the whole process
when memory runs out. :mod:`tideflow.workflow._bounds` decides at compile
time which expressions cannot loop (those stay in-process, the fast path);
every other one is sent here:

- it runs in a worker process (a small pool, started on first use) whose
  address space is limited (``RLIMIT_AS``) to its size at start plus the
  memory budget; jq aborting on a failed allocation kills only the worker;
- the caller waits at most the time budget, then kills the worker (a CPU
  limit on the worker is the backstop should the caller die first);
- either way the expression fails with :class:`ExpressionLimitExceeded`
  (``EXPRESSION_TIME_LIMIT`` or ``EXPRESSION_MEMORY_LIMIT``) and a new worker
  replaces the old one on the next use.

Callers are synchronous (the interpreter is pure). On an event loop a call
must not block for the whole budget, so a caller that can replay its work
sets :data:`deferring` (the durable host's runs, subscription transforms):
the call then waits only briefly and, when the worker needs longer, raises
:class:`EvaluationPending`; the caller awaits :meth:`EvaluationPending.wait`
(off the event loop) and replays, and the replayed call finds the outcome
remembered. Evaluations are pure functions of the expression and its input,
so the replay is deterministic.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import hashlib
import os
import pickle
import select
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import tideflow
from tideflow._expression_worker import read_frame, write_frame
from tideflow.errors import ExpressionError, ExpressionLimitExceeded, HostError
from tideflow.settings import Settings
from tideflow.workflow import expressions

__all__ = [
    "Budget",
    "EvaluationPending",
    "budget_from",
    "configure",
    "deferring",
    "evaluator",
    "off_loop",
]

T = TypeVar("T")

_INLINE_WAIT = 0.05  # seconds a deferring caller blocks before EvaluationPending
_MEMO_SIZE = 64
_START_TIMEOUT = 60.0  # a worker's start-up (imports) is not the expression's time

deferring: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "tideflow_expression_deferring", default=False
)
"""True where a slow evaluation may raise :class:`EvaluationPending` instead of blocking."""


@dataclass(frozen=True, slots=True)
class Budget:
    """What one evaluation of an unbounded expression may use.

    Attributes:
        seconds: Wall-clock time per evaluation.
        memory_bytes: Memory per evaluation (the worker's address space beyond
            its size at start).
        workers: Worker processes (evaluations at the same time).
    """

    seconds: float = 1.0
    memory_bytes: int = 256 * 1024 * 1024
    workers: int = 2


class EvaluationPending(HostError):
    """A deferring caller's expression needs longer: await :meth:`wait`, then replay."""

    def __init__(self, future: Future[Any], expression: str) -> None:
        self.future = future
        super().__init__(f"evaluating {expression!r} in a worker process")

    async def wait(self) -> None:
        """Return once the evaluation has ended (its outcome is remembered)."""
        await asyncio.wrap_future(self.future)


async def off_loop(call: Callable[[], T]) -> T:
    """Run a synchronous, pure ``call`` that evaluates expressions, without blocking
    the event loop on slow ones (it is replayed after each :class:`EvaluationPending`)."""
    while True:
        token = deferring.set(True)
        try:
            return call()
        except EvaluationPending as pending:
            await pending.wait()
        finally:
            deferring.reset(token)


def budget_from(settings: Settings) -> Budget:
    """The :class:`Budget` the settings ask for."""
    return Budget(
        seconds=settings.expression_time_limit,
        memory_bytes=settings.expression_memory_limit,
        workers=settings.expression_workers,
    )


def configure(budget: Budget) -> None:
    """Use ``budget`` from now on (idle workers stop; busy ones when their call ends)."""
    global _pool
    with _lock:
        old, _pool = _pool, _Pool(budget)
    if old is not None:
        old.close()


# --- the evaluator the expressions call --------------------------------------------


def evaluator(expression: Any, method: str, data: Any, variables: Any) -> Any:
    """Evaluate ``expression.<method>(data, variables)`` in a worker (see the module doc)."""
    try:
        payload = pickle.dumps((method, expression.source, expression.lang, data, variables))
    except (RecursionError, pickle.PicklingError, TypeError) as exc:
        raise ExpressionError(
            f"cannot evaluate {expression.source!r}: its input cannot be sent ({exc})",
            expression=expression.source,
        ) from None
    if not deferring.get():
        return _result(_current_pool().run(payload), expression.source)
    key = hashlib.blake2b(payload, digest_size=20).digest()
    pool = _current_pool()
    with _lock:
        outcome = _memo.get(key)
        if outcome is not None:
            _memo.move_to_end(key)
            return _result(outcome, expression.source)
        future = _pending.get(key)
        fresh = future is None
        if future is None:
            future = _pending[key] = _executor.submit(pool.run, payload)
    if fresh:
        # outside the lock: a call that is already done runs the callback here, at once,
        # and _remember takes the lock (under it, the event loop's thread deadlocked)
        future.add_done_callback(lambda done: _remember(key, done))
    try:
        outcome = future.result(timeout=_INLINE_WAIT)
    except FutureTimeout:
        raise EvaluationPending(future, expression.source) from None
    return _result(outcome, expression.source)


def _remember(key: bytes, future: Future[Any]) -> None:
    with _lock:
        _pending.pop(key, None)
        if future.cancelled() or future.exception() is not None:
            return
        _memo[key] = future.result()
        while len(_memo) > _MEMO_SIZE:
            _memo.popitem(last=False)


def _result(outcome: tuple[str, Any], source: str) -> Any:
    kind, value = outcome
    if kind == "ok":
        return value
    if kind == "error":
        raise ExpressionError(value, expression=source)
    limit = f"expression_{kind}"
    raise ExpressionLimitExceeded(
        f"{limit.upper()}_LIMIT: {source!r} exceeded its {kind} budget ({value})",
        limit=limit,
        expression=source,
    )


def _current_pool() -> _Pool:
    global _pool
    with _lock:
        if _pool is None:
            _pool = _Pool(Budget())
        return _pool


# --- the worker processes ----------------------------------------------------------


class _Pool:
    """Up to ``budget.workers`` idle workers; a call takes one for itself."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self._slots = threading.BoundedSemaphore(max(1, budget.workers))
        self._idle: list[_Worker] = []
        self._idle_lock = threading.Lock()

    def run(self, payload: bytes) -> tuple[str, Any]:
        """Evaluate a pickled job; ``("ok", value)``, ``("error", message)``,
        ``("time", detail)`` or ``("memory", detail)``."""
        with self._slots:
            with self._idle_lock:
                worker = self._idle.pop() if self._idle else None
            if worker is None or not worker.alive():
                # Started from one long-lived thread: a worker dies with the thread that
                # started it (PR_SET_PDEATHSIG), and this one lives as long as the process.
                worker = _spawner.submit(_Worker, self.budget).result()
            outcome, healthy = worker.call(payload, self.budget.seconds)
            if healthy:
                with self._idle_lock:
                    self._idle.append(worker)
            return outcome

    def close(self) -> None:
        """Stop the idle workers (busy ones stop when their call ends)."""
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()


class _Worker:
    """One worker process (``python -m tideflow._expression_worker``) and its pipes."""

    def __init__(self, budget: Budget) -> None:
        env = dict(os.environ)
        root = str(Path(tideflow.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (root, env.get("PYTHONPATH"))))
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tideflow._expression_worker",
                str(budget.memory_bytes),
                str(budget.seconds),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None
        assert stdout is not None
        self._out, self._in = stdin.fileno(), stdout.fileno()
        if not self._ready(_START_TIMEOUT) or read_frame(self._in) is None:
            self.kill()
            raise HostError("the expression worker process did not start")

    def alive(self) -> bool:
        return self.process.poll() is None

    def _ready(self, seconds: float) -> bool:
        readable, _, _ = select.select([self._in], [], [], seconds)
        return bool(readable)

    def call(self, payload: bytes, seconds: float) -> tuple[tuple[str, Any], bool]:
        """The outcome, and whether this worker may be used again."""
        try:
            write_frame(self._out, payload)
            if not self._ready(seconds):
                self.kill()
                return ("time", f"{seconds:g} s"), False
            answer = read_frame(self._in)
        except OSError:
            answer = None
        if answer is None:  # the worker died: jq aborts when memory runs out
            self.kill()
            code = self.process.returncode
            return ("memory", f"the evaluating process ended, exit code {code}"), False
        return pickle.loads(answer), True

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


_lock = threading.Lock()
_pool: _Pool | None = None
_memo: OrderedDict[bytes, tuple[str, Any]] = OrderedDict()
_pending: dict[bytes, Future[Any]] = {}
_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="tideflow-expression")
_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tideflow-expression-spawn")


def _shutdown() -> None:
    with _lock:
        pool = _pool
    if pool is not None:
        pool.close()


atexit.register(_shutdown)
expressions.install_evaluator(evaluator)
