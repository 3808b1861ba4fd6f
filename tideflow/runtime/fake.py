"""A scripted :class:`~tideflow.runtime.effects.Effects` for tests (no I/O, no clock).

:class:`ScriptedEffects` answers function calls from a table of Python
callables or constants, offers CloudEvents from a list, expires the deadlines
and waits it is told to, and records every call in :attr:`ScriptedEffects.log`.
Virtual time advances by the sleeps it is asked for, so tests can assert
delays without sleeping; a sleep that would outlast an enclosing deadline
(:meth:`ScriptedEffects.within`) advances the clock to that deadline and times
it out, as a host's timer would.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from tideflow.errors import FunctionCallError, StepTimeout
from tideflow.runtime.effects import (
    Deadline,
    EventEmit,
    EventSpec,
    EventWait,
    FunctionCall,
    SleepRequest,
    SubflowCall,
)

T = TypeVar("T")


def _matches(spec: EventSpec, event: Mapping[str, Any]) -> bool:
    if spec.type and event.get("type") != spec.type:  # an empty type takes any event
        return False
    if spec.source is not None and event.get("source") not in (None, spec.source):
        return False
    return all(value is None or event.get(name) == value for name, value in spec.correlation)


class ScriptedEffects:
    """Effects answering from scripts.

    Args:
        functions: ``name -> result``; a callable gets the evaluated arguments
            (a dict) and may be async or raise; anything else is the result.
        events: CloudEvents (structured JSON) offered in order to event waits.
        subflows: ``workflow_id -> result`` (callable or constant), like ``functions``.
        expire: Step keys (or key prefixes ending in ``*``) of deadlines,
            function calls and event waits that time out.
        start: The clock's start.
    """

    def __init__(
        self,
        functions: Mapping[str, Any] | None = None,
        *,
        events: Iterable[Mapping[str, Any]] = (),
        subflows: Mapping[str, Any] | None = None,
        expire: Iterable[str] = (),
        start: datetime | None = None,
    ) -> None:
        self.functions = dict(functions or {})
        self.events = [dict(e) for e in events]
        self.subflows = dict(subflows or {})
        self.expire = set(expire)
        self.start = start or datetime(2026, 1, 1, tzinfo=UTC)
        self.elapsed = 0.0
        self.log: list[tuple[str, str, Any]] = []
        self.emitted: list[dict[str, Any]] = []
        self.requests: list[Any] = []
        """Every request value received (FunctionCall, EventWait, ...), in order."""
        self._ids = 0
        # the deadlines enclosing the current task (parallel branches each see their own)
        self._open: ContextVar[tuple[tuple[float, Deadline], ...]] = ContextVar(
            "deadlines", default=()
        )

    def _expired(self, key: str) -> bool:
        if key in self.expire:
            return True
        return any(p.endswith("*") and key.startswith(p[:-1]) for p in self.expire)

    async def _answer(self, table: Mapping[str, Any], name: str, arg: Any) -> Any:
        if name not in table:
            raise FunctionCallError(f"no scripted result for {name!r}", code="NotScripted")
        answer = table[name]
        if callable(answer):
            value = answer(arg)
            if inspect.isawaitable(value):
                value = await value
            return value
        return answer

    async def call_function(self, call: FunctionCall) -> Any:
        self.requests.append(call)
        self.log.append(("call", call.key, dict(call.arguments)))
        if self._expired(call.key):
            raise StepTimeout(key=call.key, kind="action")
        try:
            result = await self._answer(self.functions, call.name, dict(call.arguments))
        except FunctionCallError:
            if call.invoke == "async":
                return None
            raise
        except Exception as exc:
            if call.invoke == "async":
                return None
            code = getattr(exc, "code", None) or type(exc).__name__
            raise FunctionCallError(str(exc), code=str(code)) from exc
        return None if call.invoke == "async" else result

    async def wait_for_events(self, wait: EventWait) -> list[dict[str, Any]] | None:
        self.requests.append(wait)
        self.log.append(("wait", wait.key, [s.name for s in wait.events]))
        if self._expired(wait.key):
            return None
        found: list[dict[str, Any]] = []
        for spec in wait.events:
            hit = next((e for e in self.events if _matches(spec, e)), None)
            if hit is not None:
                found.append(hit)
                self.events.remove(hit)
                if not wait.all:
                    return found
            elif wait.all:
                self.events.extend(found)
                return None
        return found or None

    async def sleep(self, request: SleepRequest) -> None:
        self.requests.append(request)
        self.log.append(("sleep", request.key, request.seconds))
        wake = self.elapsed + request.seconds
        due = min(self._open.get(), key=lambda entry: entry[0], default=None)
        if due is not None and due[0] <= wake:
            self.elapsed = max(self.elapsed, due[0])
            raise StepTimeout(key=due[1].key, kind=due[1].kind)
        if math.isinf(wake):  # no deadline: the host gives up on the run (nothing to advance)
            raise StepTimeout(key=request.key, kind="workflow")
        self.elapsed = wake

    async def emit(self, request: EventEmit) -> None:
        self.log.append(("emit", request.key, request.event.get("type")))
        self.emitted.append(dict(request.event))

    async def run_subflow(self, call: SubflowCall) -> Any:
        self.requests.append(call)
        self.log.append(("subflow", call.key, call.workflow_id))
        result = await self._answer(self.subflows, call.workflow_id, call.input)
        return None if call.invoke == "async" else result

    async def within(self, deadline: Deadline, body: Callable[[], Awaitable[T]]) -> T:
        self.requests.append(deadline)
        self.log.append(("deadline", deadline.key, deadline.seconds))
        if self._expired(deadline.key):
            raise StepTimeout(key=deadline.key, kind=deadline.kind)
        token = self._open.set((*self._open.get(), (self.elapsed + deadline.seconds, deadline)))
        try:
            return await body()
        finally:
            self._open.reset(token)

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def new_id(self) -> str:
        self._ids += 1
        return f"id-{self._ids}"
