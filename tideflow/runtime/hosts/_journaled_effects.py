"""The :class:`~tideflow.runtime.effects.Effects` of one run on the durable host.

Every request is first looked up in the run's journal by ``(op, step key)``:
a recorded result (or error) is returned at once -- that is replay. Anything
else is done for real, and its result is committed to the journal (group
commit) **before** the interpreter sees it.

Waiting is not done in memory: an event wait, a long sleep or a sync
sub-flow *parks* its effect (records what would wake it and never returns).
When nothing of the run is active any more, the runner ends the run and
parks the instance; whatever wakes it (events delivered, the timer due, the
child ended) writes its result into the journal, and a replay carries on.

Journal ops: ``call``, ``wait``, ``sleep``, ``timer`` (a sleep's or wait's
due time), ``emit``, ``subflow``, ``subflow.start`` (the child's id),
``deadline.start`` (a deadline's due time), ``deadline`` (expired),
``now``, ``new_id``.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tideflow import ids, limits, tracing
from tideflow.clock import sleep_until
from tideflow.errors import FunctionCallError, StepTimeout, TideflowError, ValueLimitExceeded
from tideflow.runtime.effects import (
    Deadline,
    EventEmit,
    EventSpec,
    EventWait,
    FunctionCall,
    SleepRequest,
    SubflowCall,
)
from tideflow.runtime.functions import AuthDefinition, Invocation
from tideflow.runtime.functions.types import bundled_document
from tideflow.runtime.hosts._runner_services import EffectsServices
from tideflow.runtime.hosts.plumbing import (
    bounded,
    call_arguments,
    complete_event,
    idempotency_key,
)
from tideflow.secrets import Redactor
from tideflow.workflow.model import Workflow

if TYPE_CHECKING:
    from tideflow.tracing import InstanceTrace

T = TypeVar("T")

# The enclosing deadlines' (due time, step key) (a parked wait must wake for them).
_dues: contextvars.ContextVar[tuple[tuple[datetime, str], ...]] = contextvars.ContextVar(
    "tideflow_durable_dues", default=()
)
# Set while replaying the body of a deadline the journal says expired.
_expired: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "tideflow_durable_expired", default=None
)


def error_entry(exc: BaseException) -> dict[str, Any]:
    """The journal form of a function error or timeout."""
    if isinstance(exc, StepTimeout):
        return {"type": "StepTimeout", "message": str(exc), "key": exc.key, "kind": exc.kind}
    code = exc.code if isinstance(exc, FunctionCallError) else type(exc).__name__
    retryable = exc.retryable if isinstance(exc, FunctionCallError) else True
    return {"type": "FunctionCallError", "message": str(exc), "code": code, "retryable": retryable}


def check_result(result: Any, name: str) -> None:
    """Raise a non-retryable :class:`FunctionCallError` when a result is beyond the value limits."""
    try:
        limits.check_value(result, f"the result of function {name!r}")
    except ValueLimitExceeded as exc:  # calling again would return the same
        raise FunctionCallError(exc.message, code=exc.code, retryable=False) from None


def raise_entry(error: dict[str, Any]) -> None:
    """Raise the exception a journal error entry records."""
    if error.get("type") == "StepTimeout":
        raise StepTimeout(error.get("message", ""), key=error.get("key", ""), kind=error["kind"])
    raise FunctionCallError(
        error.get("message", ""), code=error.get("code"), retryable=error.get("retryable", True)
    )


def child_id(instance_id: str, run_no: int, key: str) -> str:
    """The id of the sub-flow instance a step starts: the same on every replay."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tideflow:{instance_id}/{run_no}/{key}"))


def _answer(entry: dict[str, Any]) -> Any:
    if "error" in entry:
        raise_entry(entry["error"])
    return entry.get("result")


def _ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class RunPort(Protocol):
    """What the effects use of the run they belong to (the instance runner implements it)."""

    @property
    def instance_id(self) -> str:
        """The instance."""

    @property
    def run_no(self) -> int:
        """The run (``continueAs`` starts the next)."""

    @property
    def workflow(self) -> Workflow:
        """The definition being run."""

    @property
    def sonataflow(self) -> bool:
        """The definition runs with SonataFlow's leniencies."""

    @property
    def redactor(self) -> Redactor:
        """Hides the run's secrets in what it lets out (produced events here)."""

    def auth(self, name: str | None) -> AuthDefinition | None:
        """The workflow's auth definition ``name``, its properties evaluated."""

    def active(self) -> AbstractContextManager[None]:
        """Mark an effect as doing real work (the run is not parked meanwhile)."""

    async def commit(self, op: str, key: str, entry: dict[str, Any]) -> None:
        """Journal an entry and wait for its commit."""

    def queue(self, op: str, entry: dict[str, Any]) -> None:
        """Journal an entry without waiting."""

    async def register_wait(self, wait: dict[str, Any]) -> None:
        """Record an event wait (committed before the run may park on it)."""

    async def outside(self) -> None:
        """Before work outside the journal: everything the run did so far is committed."""

    async def park(
        self, *, wake: datetime | None, key: str = "", wait_key: str | None = None
    ) -> Any:
        """Never return (unless events arrive in this process): the run is parked here."""

    @property
    def trace(self) -> InstanceTrace | None:
        """The spans of the run, when it is traced."""

    def note(self, kind: str, key: str, state: str | None = None, **detail: Any) -> None:
        """A host-level timeline row (``timer.*``)."""


class DurableEffects:
    """Journaled effects of one run of one instance (see the module docs)."""

    def __init__(self, run: RunPort, host: EffectsServices, journal: list[dict[str, Any]]) -> None:
        """Args:
        run: The instance's run (journal commits, park bookkeeping).
        host: The host's roles the effects use (invoker, clock, emit, sub-flows,
            contested journal writes).
        journal: The run's journal entries in commit order.
        """
        self._run = run
        self._host = host
        self.entries: dict[tuple[str, str], dict[str, Any]] = {}
        self._ordered: dict[str, list[Any]] = {"now": [], "new_id": []}
        self.bound: dict[str, Any] = {}
        for entry in journal:
            if entry["op"] in self._ordered:
                self._ordered[entry["op"]].append(entry["result"])
            elif (entry["op"], entry["key"]) not in self.entries:
                # The first entry of a step wins: a late answer (events after a
                # timeout, a child ending after its parent moved on) changes nothing.
                self.entries[(entry["op"], entry["key"])] = entry
                if entry["op"] == "wait":
                    self._bind(entry.get("result"))

    def _bind(self, events: Any) -> None:
        for event in events or ():
            for name, value in event.items():
                self.bound.setdefault(name, value)

    def known(self, op: str, key: str) -> dict[str, Any] | None:
        """The journal entry of a request, if it was recorded."""
        return self.entries.get((op, key))

    async def record(self, op: str, key: str, entry: dict[str, Any]) -> None:
        """Commit an entry (group commit); stop the run if the commit says so."""
        self.entries.setdefault((op, key), {"op": op, "key": key, **entry})
        await self._run.commit(op, key, entry)

    def _missing(self) -> None:
        # Inside the body of a deadline that expired in an earlier run: the
        # original run was cut off before this request.
        deadline = _expired.get()
        if deadline is not None:
            raise StepTimeout(key=deadline.key, kind=deadline.kind)

    # --- calls ---------------------------------------------------------------

    async def call_function(self, call: FunctionCall) -> Any:
        """Answer from the journal, or invoke and journal the outcome."""
        known = self.known("call", call.key)
        if known is not None:
            return _answer(known)
        self._missing()
        await self._run.outside()
        invoked = self._host.invoke(self._invocation(call))
        if call.invoke == "async":
            self._host.background(_redacted_failure(invoked, self._run.redactor))
            await self.record("call", call.key, {"result": None})
            return None
        with self._run.active():
            try:
                with tracing.call_span(self._run.trace, call.key, call.name, call.function.type):
                    result = await bounded(invoked, call.timeout_seconds, call.key)
                check_result(result, call.name)  # before the journal's writer meets it
            except Exception as exc:
                await self.record("call", call.key, {"error": error_entry(exc)})
                raise_entry(error_entry(exc))
            await self.record("call", call.key, {"result": result})
        return result

    def _invocation(self, call: FunctionCall) -> Invocation:
        definition = call.function
        run = self._run
        return Invocation(
            name=call.name,
            operation=definition.operation,
            type=definition.type,
            arguments=call_arguments(call, sonataflow=run.sonataflow),
            selection_set=call.selection_set,
            auth=run.auth(definition.auth_ref),
            idempotency_key=idempotency_key(run.instance_id, call.key, run.run_no),
            base_dir=self._host.base_dir_for(definition.operation),
            timeout=call.timeout_seconds,
            # a DSL 1.0 model has no bundle files
            document=bundled_document(getattr(run.workflow, "files", None), definition.operation),
        )

    async def emit(self, request: EventEmit) -> None:
        """Hand the event to the host's sink once, and journal that it was."""
        if self.known("emit", request.key) is not None:
            return
        self._missing()
        event = complete_event(request.event, self._run.workflow, self.now_value())
        event = self._run.redactor.value(event)  # an event is an output: no secret in it
        await self._run.outside()
        with self._run.active():
            await self._host.emit(event)
            await self.record("emit", request.key, {"result": None})

    # --- waiting -------------------------------------------------------------

    async def _due(self, key: str, seconds: float | None) -> datetime | None:
        """The due time of a timed step, recorded the first time it is asked for."""
        if seconds is None or math.isinf(seconds):
            return None
        known = self.known("timer", key)
        if known is not None:
            return _ts(known["result"])
        due = self.now_value() + timedelta(seconds=max(0.0, seconds))
        await self.record("timer", key, {"result": due.isoformat()})
        return due

    async def sleep(self, request: SleepRequest) -> None:
        """Sleep in memory when short, else park until the wake-up timer fires.

        Only the due time is journaled: once it has passed, the sleep is over
        -- in a replay too -- so a sleep costs one commit, not two. A short
        sleep (at most ``memory_sleep`` seconds) keeps the instance leased and
        in memory: the lease is renewed meanwhile, and after a crash the lease
        runs out, another process replays the instance and the sleep ends at
        its journaled due time. A longer one parks the instance with a
        timer-service timer (:mod:`tideflow.runtime.wakeups`).
        """
        if self.known("sleep", request.key) is not None:
            return
        self._missing()
        with self._run.active():
            due = await self._due(request.key, request.seconds)
            left = math.inf if due is None else (due - self.now_value()).total_seconds()
            if due is not None and left <= self._host.memory_sleep:
                if left > 0:
                    await sleep_until(self._host.clock, due)
                late = (self.now_value() - due).total_seconds() * 1000
                self._run.note("timer.fired", request.key, seconds=request.seconds, lateMs=late)
                return
        self._run.note("timer.started", request.key, seconds=request.seconds)
        await self._run.park(wake=due, key=request.key)

    async def wait_for_events(self, wait: EventWait) -> list[dict[str, Any]] | None:
        """Return journaled events, time out when due, else record the wait and park."""
        known = self.known("wait", wait.key)
        if known is not None:
            return _answer(known)  # type: ignore[no-any-return]
        self._missing()
        with self._run.active():
            due = await self._due(wait.key, wait.timeout_seconds)
            if due is not None and due <= self.now_value():
                # Atomic with a concurrent delivery: whichever came first is the result.
                await self._run.outside()
                result = await self._host.time_out_wait(
                    self._run.instance_id, self._run.run_no, wait.key
                )
                self.entries[("wait", wait.key)] = {"op": "wait", "key": wait.key, "result": result}
                self._bind(result)
                return result  # type: ignore[no-any-return]
            specs = [self._spec(spec) for spec in wait.events]
            row = {
                "key": wait.key,
                "run_no": self._run.run_no,
                "all": wait.all,
                "events": specs,
                "types": sorted({s["type"] for s in specs}),
                "due_at": due,
            }
            await self._run.register_wait(row)
        events = await self._run.park(wake=due, key=wait.key, wait_key=wait.key)
        self._bind(events)
        return events  # type: ignore[no-any-return]

    def _spec(self, spec: EventSpec) -> dict[str, Any]:
        correlation = {
            name: value if value is not None else self.bound.get(name)
            for name, value in spec.correlation
        }
        return {
            "name": spec.name,
            "type": spec.type,
            "source": spec.source,
            "correlation": correlation,
        }

    async def run_subflow(self, call: SubflowCall) -> Any:
        """Start the child once (stable id); async returns, sync parks until it ends."""
        known = self.known("subflow", call.key)
        if known is not None:
            return _answer(known)
        self._missing()
        await self._run.outside()
        with self._run.active():
            if self.known("subflow.start", call.key) is None:
                child = child_id(self._run.instance_id, self._run.run_no, call.key)
                parent_key = None if call.invoke == "async" else call.key
                await self._host.start_child(call, child, self._run.instance_id, parent_key)
                terminate = call.invoke == "async" and call.on_parent_complete == "terminate"
                entry = {"result": child, "terminate": terminate}
                await self.record("subflow.start", call.key, entry)
            if call.invoke == "async":
                await self.record("subflow", call.key, {"result": None})
                return None
            due = await self._due(call.key, call.timeout_seconds)
            if due is not None and due <= self.now_value():
                # Decided under the parent's row lock: the child's answer or the timeout.
                error = error_entry(StepTimeout(key=call.key, kind="action"))
                entry = await self._host.settle(
                    self._run.instance_id, self._run.run_no, "subflow", call.key, {"error": error}
                )
                self.entries[("subflow", call.key)] = {"op": "subflow", "key": call.key, **entry}
                return _answer(entry)
        return await self._run.park(wake=due, key=call.key)

    async def within(self, deadline: Deadline, body: Callable[[], Awaitable[T]]) -> T:
        """Enforce a deadline whose due time is journaled, across parks and crashes."""
        if self.known("deadline", deadline.key) is not None or _expired.get() is not None:
            return await self._expired_body(deadline, body)
        known = self.known("deadline.start", deadline.key)
        if known is not None:
            due = datetime.fromisoformat(known["result"])
        else:
            due = self.now_value() + timedelta(seconds=deadline.seconds)
            await self.record("deadline.start", deadline.key, {"result": due.isoformat()})
        left = (due - self.now_value()).total_seconds()
        if left <= 0:
            return await self._expire(deadline, body)
        token = _dues.set((*_dues.get(), (due, deadline.key)))
        try:
            limit = asyncio.timeout(left)
            async with limit:
                return await body()
        except TimeoutError:
            if not limit.expired():
                raise
        finally:
            _dues.reset(token)
        return await self._expire(deadline, body)

    async def _expire(self, deadline: Deadline, body: Callable[[], Awaitable[T]]) -> T:
        error = error_entry(StepTimeout(key=deadline.key, kind=deadline.kind))
        await self.record("deadline", deadline.key, {"error": error})
        await self._run.outside()
        scope = None if deadline.kind == "workflow" else deadline.key.rsplit("/timeout:", 1)[0]
        await self._host.drop_waits(self._run.instance_id, None if scope is None else scope + "/")
        return await self._expired_body(deadline, body)

    async def _expired_body(self, deadline: Deadline, body: Callable[[], Awaitable[T]]) -> T:
        token = _expired.set(deadline)
        try:
            await body()
        finally:
            _expired.reset(token)
        raise StepTimeout(key=deadline.key, kind=deadline.kind)

    def children_to_terminate(self) -> list[str]:
        """Async sub-flows started with ``onParentComplete: terminate``."""
        return [
            e["result"]
            for (op, _), e in self.entries.items()
            if op == "subflow.start" and e.get("terminate")
        ]

    @staticmethod
    def enclosing_dues() -> tuple[tuple[datetime, str], ...]:
        """(due time, step key) of the deadlines around the current task."""
        return _dues.get()

    # --- clock and ids -------------------------------------------------------------

    def now_value(self) -> datetime:
        """The host clock (not journaled: for due-time arithmetic)."""
        return self._host.clock.now()

    def now(self) -> datetime:
        """The journaled clock: replayed in order, else read and journaled."""
        if self._ordered["now"]:
            return datetime.fromisoformat(self._ordered["now"].pop(0))
        value = self.now_value()
        self._run.queue("now", {"result": value.isoformat()})
        return value

    def new_id(self) -> str:
        """A journaled id: replayed in order, else made and journaled."""
        if self._ordered["new_id"]:
            return str(self._ordered["new_id"].pop(0))
        value = ids.new_id()
        self._run.queue("new_id", {"result": value})
        return value


async def _redacted_failure(call: Awaitable[Any], redactor: Redactor) -> Any:
    """``call``, its failure told (logged by the host) with the run's secrets hidden."""
    try:
        return await call
    except TideflowError as exc:
        if not redactor:
            raise
        raise TideflowError(redactor.text(str(exc))) from None
