"""Record a run's effects as a journal, and replay a run against a journal.

A journal is a JSON list of entries ``{"op", "key", "request", "result"}``
(or ``"error": {"type", "message", "code", "retryable"}`` instead of
``result``), in the order the interpreter asked for them. ``now`` and
``new_id`` entries have the key ``""``.

:class:`RecordingEffects` wraps a real :class:`Effects` and writes the journal.
:class:`ReplayEffects` answers from a journal by step key -- never by position
-- and keeps the sequence of calls it was asked for in :attr:`ReplayEffects.calls`
so a test can check that a replay asks for exactly the recorded calls. A
request whose key is not in the journal raises
:class:`~tideflow.errors.NondeterminismError` (which propagates out of the
interpreter),
unless an enclosing deadline was recorded as expired: then the replay raises
that timeout, exactly where the original run was cut off.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from tideflow.errors import FunctionCallError, NondeterminismError, StepTimeout
from tideflow.runtime.effects import (
    Deadline,
    Effects,
    EventEmit,
    EventWait,
    FunctionCall,
    SleepRequest,
    SubflowCall,
)

T = TypeVar("T")

__all__ = ["NondeterminismError", "RecordingEffects", "ReplayEffects"]

_expired_deadline: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "tideflow_replay_expired_deadline", default=None
)


def _error_json(exc: BaseException) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, FunctionCallError):
        out.update(code=exc.code, retryable=exc.retryable)
    if isinstance(exc, StepTimeout):
        out.update(key=exc.key, kind=exc.kind)
    return out


def _raise(error: dict[str, Any]) -> None:
    if error["type"] == "StepTimeout":
        raise StepTimeout(error["message"], key=error.get("key", ""), kind=error.get("kind", ""))
    raise FunctionCallError(
        error["message"], code=error.get("code"), retryable=error.get("retryable", True)
    )


class RecordingEffects:
    """Pass every effect to ``inner`` and append it to :attr:`journal`."""

    def __init__(self, inner: Effects) -> None:
        self.inner = inner
        self.journal: list[dict[str, Any]] = []

    async def _record(self, op: str, key: str, request: Any, call: Awaitable[Any]) -> Any:
        entry: dict[str, Any] = {"op": op, "key": key, "request": request}
        self.journal.append(entry)
        try:
            result = await call
        except (FunctionCallError, StepTimeout) as exc:
            entry["error"] = _error_json(exc)
            raise
        except asyncio.CancelledError:
            entry["cancelled"] = True
            raise
        entry["result"] = result
        return result

    async def call_function(self, call: FunctionCall) -> Any:
        request = {"name": call.name, "arguments": dict(call.arguments), "invoke": call.invoke}
        return await self._record("call", call.key, request, self.inner.call_function(call))

    async def wait_for_events(self, wait: EventWait) -> list[dict[str, Any]] | None:
        request = {"events": [e.name for e in wait.events], "all": wait.all}
        return await self._record("wait", wait.key, request, self.inner.wait_for_events(wait))  # type: ignore[no-any-return]

    async def sleep(self, request: SleepRequest) -> None:
        await self._record("sleep", request.key, request.seconds, self.inner.sleep(request))

    async def emit(self, request: EventEmit) -> None:
        await self._record("emit", request.key, dict(request.event), self.inner.emit(request))

    async def run_subflow(self, call: SubflowCall) -> Any:
        request = {"workflow_id": call.workflow_id, "input": call.input}
        return await self._record("subflow", call.key, request, self.inner.run_subflow(call))

    async def within(self, deadline: Deadline, body: Callable[[], Awaitable[T]]) -> T:
        entry: dict[str, Any] = {"op": "deadline", "key": deadline.key, "request": deadline.seconds}
        self.journal.append(entry)
        try:
            result = await self.inner.within(deadline, body)
        except StepTimeout as exc:
            if exc.key == deadline.key:
                entry["error"] = _error_json(exc)
            raise
        except asyncio.CancelledError:
            entry["cancelled"] = True
            raise
        entry["result"] = None
        return result

    def now(self) -> datetime:
        value = self.inner.now()
        self.journal.append({"op": "now", "key": "", "request": None, "result": value.isoformat()})
        return value

    def new_id(self) -> str:
        value = self.inner.new_id()
        self.journal.append({"op": "new_id", "key": "", "request": None, "result": value})
        return value


class ReplayEffects:
    """Answer every effect from a recorded journal, by step key."""

    def __init__(self, journal: Sequence[dict[str, Any]]) -> None:
        self.entries = {(e["op"], e["key"]): e for e in journal if e["key"]}
        self._ordered = {
            op: [e["result"] for e in journal if e["op"] == op] for op in ("now", "new_id")
        }
        self.calls: list[tuple[str, str]] = []

    def _entry(self, op: str, key: str) -> dict[str, Any]:
        self.calls.append((op, key))
        entry = self.entries.get((op, key))
        if entry is None:
            deadline = _expired_deadline.get()
            if deadline is not None:
                raise StepTimeout(key=deadline.key, kind=deadline.kind)
            raise NondeterminismError(f"replay asked for {op} {key!r}, not in the journal")
        if "error" in entry:
            _raise(entry["error"])
        return entry

    async def _answer(self, op: str, key: str) -> Any:
        entry = self._entry(op, key)
        if entry.get("cancelled"):
            # The original run cancelled this call (atLeast, a failing
            # sibling): block here until the replay cancels it too.
            await asyncio.get_running_loop().create_future()
        return entry.get("result")

    async def call_function(self, call: FunctionCall) -> Any:
        return await self._answer("call", call.key)

    async def wait_for_events(self, wait: EventWait) -> list[dict[str, Any]] | None:
        return await self._answer("wait", wait.key)  # type: ignore[no-any-return]

    async def sleep(self, request: SleepRequest) -> None:
        await self._answer("sleep", request.key)

    async def emit(self, request: EventEmit) -> None:
        await self._answer("emit", request.key)

    async def run_subflow(self, call: SubflowCall) -> Any:
        return await self._answer("subflow", call.key)

    async def within(self, deadline: Deadline, body: Callable[[], Awaitable[T]]) -> T:
        self.calls.append(("deadline", deadline.key))
        entry = self.entries.get(("deadline", deadline.key))
        if entry is None:
            raise NondeterminismError(f"replay asked for deadline {deadline.key!r}")
        if "error" not in entry:
            return await body()
        token = _expired_deadline.set(deadline)
        try:
            await body()
        finally:
            _expired_deadline.reset(token)
        raise StepTimeout(key=deadline.key, kind=deadline.kind)

    def _next(self, op: str) -> Any:
        if not self._ordered[op]:
            raise NondeterminismError(f"replay asked for {op}() more often than the journal holds")
        return self._ordered[op].pop(0)

    def now(self) -> datetime:
        return datetime.fromisoformat(self._next("now"))

    def new_id(self) -> str:
        return str(self._next("new_id"))
