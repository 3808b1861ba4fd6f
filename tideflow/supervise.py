"""Supervised background tasks: no long-lived task dies unseen.

Every service that runs loops in the background (the event store's group
commit and listener, the dispatcher's loops and bus readers, the timer
service, the runtime's journal writer and claimer, the workflow subscriber,
the lifecycle publisher) owns a :class:`Supervisor` and starts its loops with
:meth:`Supervisor.spawn`. Each task has a name; when one raises, the
supervisor logs the death with its traceback and, by the task's
:class:`Policy`, either restarts it after a back-off (``RESTART``: loops whose
state lives in their service object, e.g. a listener that reconnects) or
marks the service stopped and calls its ``on_stop`` hook (``STOP``: a task
whose death leaves the service unable to work). A task that returns has
finished its job (a drained queue on shutdown) and is not restarted.

A :class:`HealthBoard` gathers the supervisors of a process and cheap probes
(the database, see :class:`tideflow.db.DatabaseProbe`); ``GET /healthz``
answers from it.

Short-lived tasks are not supervised, but every one is owned. This module
is the only place that creates tasks (``tests/unit/test_architecture.py``
checks it; an :class:`asyncio.TaskGroup` of a service is owned too):

* :func:`scoped`: tasks that do not outlive a block -- the branches of a
  parallel state, an instance's interpreter run inside its runner;
* :func:`first_done`: the first of several waits (a notification or a timeout),
  the others cancelled before it returns;
* :class:`Watched`: a block cancelled when one of its watchers ends first (a long
  poll whose client went away), the watchers cancelled on the way out;
* :class:`TaskSet`: short-lived tasks an object owns beyond one call (an HTTP
  delivery lane, an in-memory retry, an instance runner): tracked, a failure
  logged with its traceback, cancelled together when the owner stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from tideflow.clock import SYSTEM_CLOCK, Clock

__all__ = [
    "Backoff",
    "ComponentHealth",
    "HealthBoard",
    "HealthReport",
    "Policy",
    "Supervisor",
    "TaskSet",
    "TaskState",
    "first_done",
    "scoped",
]

log = logging.getLogger("tideflow.supervise")
T = TypeVar("T")


class Policy(StrEnum):
    """What a supervisor does when a task raises."""

    RESTART = "restart"
    """Log it, wait a back-off, run the task again."""
    STOP = "stop"
    """Log it, mark the service stopped (down in ``/healthz``), call ``on_stop``."""


class TaskState(StrEnum):
    """Where a supervised task is."""

    RUNNING = "running"
    RESTARTING = "restarting"
    """It raised and waits for its back-off to run again."""
    STOPPED = "stopped"
    """It raised under ``Policy.STOP``: its service does not work any more."""
    FINISHED = "finished"
    """It returned (its work is done, e.g. drained on shutdown)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Exponential back-off between restarts (and reconnects).

    Attributes:
        first: The first delay, in seconds.
        factor: Each next delay is this many times longer.
        longest: The delays stop growing here.
        reset_after: A task that ran this long before it failed starts again
            from ``first``.
    """

    first: float = 0.1
    factor: float = 2.0
    longest: float = 5.0
    reset_after: float = 60.0

    def delay(self, failures: int) -> float:
        """The wait after the ``failures``-th failure in a row (1, 2, ...)."""
        return min(self.longest, self.first * self.factor ** max(0, failures - 1))


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentHealth:
    """One component's state, as ``/healthz`` shows it.

    Attributes:
        name: ``<service>`` or ``<service>.<task>``, e.g. ``runtime.journal``.
        up: Whether it works now.
        state: ``running``, ``restarting``, ``stopped``, ``finished``, ``up``, ``down``.
        error: Why it is not up (the last error), if it is not.
        restarts: How often it was restarted.
    """

    name: str
    up: bool
    state: str
    error: str | None = None
    restarts: int = 0


@dataclass(slots=True)
class _Task:
    name: str
    run: Callable[[], Coroutine[Any, Any, None]]
    policy: Policy
    task: asyncio.Task[None] | None = None
    state: TaskState = TaskState.RUNNING
    error: str | None = None
    restarts: int = 0


class Supervisor:
    """Owns the named background tasks of one service (see the module docs).

    Args:
        service: The service's name (``eventstore``, ``runtime``, ...).
        clock: For the back-off waits.
        backoff: Delays between restarts.
        on_stop: Called once with the exception when a ``STOP`` task dies.
    """

    def __init__(
        self,
        service: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        backoff: Backoff | None = None,
        on_stop: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.service = service
        self._clock = clock
        self._backoff = backoff or Backoff()
        self.on_stop = on_stop
        self._tasks: dict[str, _Task] = {}
        self._conditions: dict[str, str | None] = {}
        self.failure: BaseException | None = None
        """The exception that stopped the service (``Policy.STOP``), if one did."""

    def spawn(
        self,
        name: str,
        run: Callable[[], Coroutine[Any, Any, None]],
        *,
        policy: Policy = Policy.RESTART,
    ) -> asyncio.Task[None]:
        """Start ``run()`` as the task ``name`` (replacing a finished one of that name).

        ``run`` is a factory: a restart calls it again for a fresh coroutine.
        """
        old = self._tasks.get(name)
        if old is not None and old.task is not None and not old.task.done():
            raise RuntimeError(f"{self.service}: task {name!r} is running already")
        entry = _Task(name, run, policy)
        self._tasks[name] = entry
        entry.task = asyncio.create_task(self._keep(entry), name=f"tideflow-{self.service}-{name}")
        return entry.task

    async def _keep(self, entry: _Task) -> None:
        failures = 0
        while True:
            started = self._clock.monotonic()
            entry.state = TaskState.RUNNING
            try:
                await entry.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                entry.error = f"{type(exc).__name__}: {exc}"
                if entry.policy is Policy.STOP:
                    self._stopped(entry, exc)
                    return
                if self._clock.monotonic() - started >= self._backoff.reset_after:
                    failures = 0
                failures += 1
                delay = self._backoff.delay(failures)
                log.error(
                    "%s: task %s died; restarting it in %.1f s",
                    self.service,
                    entry.name,
                    delay,
                    exc_info=exc,
                )
                entry.state = TaskState.RESTARTING
                await self._clock.sleep(delay)
                entry.restarts += 1
                continue
            entry.state = TaskState.FINISHED
            entry.error = None
            return

    def _stopped(self, entry: _Task, exc: BaseException) -> None:
        log.critical(
            "%s: task %s died; the service is stopped", self.service, entry.name, exc_info=exc
        )
        entry.state = TaskState.STOPPED
        if self.failure is None:
            self.failure = exc
            if self.on_stop is not None:
                try:
                    self.on_stop(exc)
                except Exception:  # the hook must not hide the death it reports
                    log.exception("%s: on_stop hook failed", self.service)

    def report(self, condition: str, error: str | None) -> None:
        """Set a condition of the service that is not a task: ``error`` ``None`` when it is
        fine, else why not (e.g. ``listener``: the LISTEN connection is down)."""
        self._conditions[condition] = error

    async def cancel(self, name: str) -> None:
        """Cancel the task ``name`` (if it runs) and wait for it; forget it."""
        entry = self._tasks.pop(name, None)
        if entry is not None and entry.task is not None:
            entry.task.cancel()
            await asyncio.gather(entry.task, return_exceptions=True)

    async def wait(self, name: str) -> None:
        """Wait until the task ``name`` has ended (returned, stopped or been cancelled)."""
        entry = self._tasks.get(name)
        if entry is not None and entry.task is not None:
            await asyncio.gather(entry.task, return_exceptions=True)

    def cancel_all(self) -> None:
        """Cancel every task without waiting (:meth:`stop` waits for them)."""
        for entry in self._tasks.values():
            if entry.task is not None:
                entry.task.cancel()

    async def stop(self) -> None:
        """Cancel every task and wait for them all."""
        entries, self._tasks = list(self._tasks.values()), {}
        tasks = [e.task for e in entries if e.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def running(self, name: str) -> bool:
        """Whether the task ``name`` exists and has not ended."""
        entry = self._tasks.get(name)
        return entry is not None and entry.task is not None and not entry.task.done()

    def health(self) -> list[ComponentHealth]:
        """One entry per task and per reported condition."""
        found = [
            ComponentHealth(
                name=f"{self.service}.{e.name}",
                up=e.state in (TaskState.RUNNING, TaskState.FINISHED),
                state=str(e.state),
                error=None if e.state in (TaskState.RUNNING, TaskState.FINISHED) else e.error,
                restarts=e.restarts,
            )
            for e in self._tasks.values()
        ]
        found.extend(
            ComponentHealth(
                name=f"{self.service}.{condition}",
                up=error is None,
                state="up" if error is None else "down",
                error=error,
            )
            for condition, error in self._conditions.items()
        )
        return found


class Probe(Protocol):
    """A cheap check of something a process depends on (cached by the probe itself)."""

    name: str

    async def check(self) -> str | None:
        """``None`` when it is up, else why it is not."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthReport:
    """The process's health: up only when every component is up."""

    up: bool
    components: tuple[ComponentHealth, ...]

    @property
    def down(self) -> tuple[ComponentHealth, ...]:
        """The components that are not up."""
        return tuple(c for c in self.components if not c.up)


@dataclass(slots=True)
class HealthBoard:
    """The supervisors and probes of one process, for ``GET /healthz``."""

    supervisors: list[Supervisor] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)

    def watch(self, *supervisors: Supervisor) -> None:
        """Include ``supervisors`` in the report."""
        self.supervisors.extend(supervisors)

    def probe(self, probe: Probe) -> None:
        """Include ``probe`` (checked on every report; it caches its own answer)."""
        self.probes.append(probe)

    async def report(self) -> HealthReport:
        """Every component's state; probes first (the database before what needs it)."""
        results: Sequence[str | None] = await _gather([p.check() for p in self.probes])
        components = [
            ComponentHealth(
                name=p.name,
                up=error is None,
                state="up" if error is None else "down",
                error=error,
            )
            for p, error in zip(self.probes, results, strict=True)
        ]
        for supervisor in self.supervisors:
            components.extend(supervisor.health())
        return HealthReport(up=all(c.up for c in components), components=tuple(components))


async def _gather(checks: list[Awaitable[str | None]]) -> list[str | None]:
    return list(await asyncio.gather(*checks))


@contextlib.asynccontextmanager
async def scoped(awaitables: Iterable[Awaitable[T]]) -> AsyncIterator[list[asyncio.Future[T]]]:
    """Tasks running ``awaitables`` that do not outlive the block.

    On the way out (the block's end, an exception, a cancellation) those not
    done are cancelled and awaited; their outcomes stay on the futures for the
    block to read (a failure counts as retrieved: never logged as unread).
    When all are done already the way out does not pass the event loop a turn
    (a durable run ends in such a block: two passes of the loop per instance).
    """
    tasks: list[asyncio.Future[T]] = [asyncio.ensure_future(a) for a in awaitables]
    try:
        yield tasks
    finally:
        pending = [task for task in tasks if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        for task in tasks:
            if not task.cancelled():
                task.exception()  # retrieved, as the gather did


async def first_done(*awaitables: Awaitable[Any]) -> list[asyncio.Future[Any]]:
    """Wait until the first of ``awaitables`` is done; cancel the others.

    Returns:
        Their futures in the order given, every one done (finished, failed or
        cancelled): no task outlives the call.
    """
    async with scoped(awaitables) as tasks:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    return tasks


class Watched:
    """``async with Watched(*watchers):`` the block, cancelled when a watcher ends first.

    The watchers run as tasks while the block runs. The first to end cancels the task
    running the block, the way :func:`asyncio.timeout` does; the way out takes that
    cancellation back and ends the block quietly (:attr:`fired` tells). A cancellation
    from elsewhere goes on as usual. Unlike :func:`first_done`, the block runs in the
    caller's own task: the moment what it awaits is done wakes the caller at the next
    pass of the loop, not through a task of its own and a wait on it (a long poll's
    answer: four passes fewer). On the way out the watchers are cancelled and not
    awaited -- they must hold nothing (a disconnect, an event), and they end at the
    next pass.
    """

    def __init__(self, *watchers: Awaitable[Any]) -> None:
        self._watched = watchers
        self._watchers: list[asyncio.Future[Any]] = []
        self._task: asyncio.Task[Any] | None = None
        self._over = False
        self.fired = False
        """Whether a watcher ended first and the block was cancelled for it."""

    async def __aenter__(self) -> Watched:
        self._task = asyncio.current_task()
        self._watchers = [asyncio.ensure_future(w) for w in self._watched]
        for watcher in self._watchers:
            watcher.add_done_callback(self._fire)
        return self

    def _fire(self, _watcher: object) -> None:
        if not self._over and not self.fired and self._task is not None:
            self.fired = True
            self._task.cancel()

    async def __aexit__(self, kind: type[BaseException] | None, *_: object) -> bool:
        self._over = True  # a watcher's callback already queued changes nothing now
        for watcher in self._watchers:
            watcher.cancel()
        if not self.fired or self._task is None:
            return False
        # taken back; the block ends quietly unless the task was cancelled besides
        return self._task.uncancel() == 0 and kind is asyncio.CancelledError


class TaskSet:
    """Short-lived tasks one object owns beyond a call (see the module docs).

    Args:
        name: What they are, in the log line of a failure.
        logger: Where a failure is logged (with its traceback).
        awaited: Every task is awaited by callers who see its failure (a load
            shared by its callers): nothing is logged.
    """

    def __init__(self, name: str, logger: logging.Logger = log, *, awaited: bool = False) -> None:
        self.name = name
        self._log = logger
        self._awaited = awaited
        self._tasks: set[asyncio.Future[Any]] = set()

    def spawn(self, awaitable: Awaitable[T]) -> asyncio.Future[T]:
        """Run ``awaitable`` as a task of the set (gone from it once done)."""
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and not self._awaited:
            self._log.error("%s failed", self.name, exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    async def wait(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Until every task is done, or ``timeout`` seconds passed."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def cancel(self) -> None:
        """Cancel every task and wait until they are done."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
