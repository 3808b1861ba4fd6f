"""DSL 1.0 ``schedule.after``: run the workflow again a delay after each run ends.

A deployed version whose ``schedule`` is ``after: <duration>`` gets a *chain*
of instances, kept entirely in the timer service, so it survives crashes and
restarts and no run starts twice:

- the deploy adds the chain's first start timer, due at once
  (``after:<workflow>:<version>#0``);
- a start timer ``#n`` starts the instance :func:`chain_instance_id` (derived
  from the timer id: a start fired again returns the same instance) and adds
  its first *check* timer, ``#n/check0``, one check interval later;
- a check timer looks at that instance: still running (or waiting), it adds
  the next check (``#n/check<k+1>``); ended ``completed`` or ``failed``, it adds
  the start timer ``#n+1`` due ``after`` past the instance's end; ``cancelled``
  (by someone), the chain stops there.

Every timer id is derived from the chain, the run and the check number, and
adding a timer whose id exists returns the existing one: a handler fired
twice (a crash before its firing commit, two servers) adds nothing twice.

A chain belongs to one version: a new version with ``after`` starts its own
chain at its deploy, and an older chain stops at its next start (as it does
when the workflow is deleted or its latest version no longer has ``after``).
A run that ends while a check interval is still running starts its successor
at most one interval late: :func:`check_interval` (the delay itself, within
1 to 30 seconds).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from tideflow.errors import InstanceNotFound, WorkflowNotFound, WorkflowValidationError
from tideflow.isotime import parse_duration
from tideflow.runtime.start_schedules import instance_id_for
from tideflow.runtime.status import InstanceStatus
from tideflow.workflow.dsl1 import is_dsl1

if TYPE_CHECKING:
    import asyncpg

    from tideflow.runtime.gateway import PostgresRegistry, WorkflowVersion
    from tideflow.runtime.rows import InstanceRow
    from tideflow.runtime.start_schedules import Starter
    from tideflow.timer.records import TimerRecord
    from tideflow.timer.service import TimerService

log = logging.getLogger("tideflow.schedules")

AFTER_START_KIND = "tideflow.workflow_after"
"""Kind of a chain's start timers."""
AFTER_CHECK_KIND = "tideflow.workflow_after_check"
"""Kind of the timers that look whether a chain's run has ended."""

_MIN_CHECK = timedelta(seconds=1)
_MAX_CHECK = timedelta(seconds=30)
_UNITS = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1, "milliseconds": 0.001}
_ENDED_GOES_ON = (InstanceStatus.COMPLETED, InstanceStatus.FAILED)

InstanceLookup = Callable[[str], Awaitable["InstanceRow"]]
"""Reads an instance (``PostgresInstances.get``); raises ``InstanceNotFound``."""


def after_delay(definition: Any) -> timedelta | None:
    """The ``schedule.after`` delay of a parsed 1.0 definition, or ``None``.

    A duration that cannot be read (validation refuses it at deploy; a stored
    definition could hold one only from before) is logged and counts as none:
    one bad definition must not keep a server from starting.
    """
    try:
        return _after_delay(definition)
    except (ValueError, TypeError) as exc:
        log.error("schedule.after not used: %s", exc)
        return None


def _after_delay(definition: Any) -> timedelta | None:
    if not isinstance(definition, Mapping) or not is_dsl1(definition):
        return None
    schedule = definition.get("schedule")
    if not isinstance(schedule, Mapping) or "after" not in schedule:
        return None
    value = schedule["after"]
    if isinstance(value, Mapping):
        return timedelta(seconds=sum(_UNITS.get(str(k), 0) * float(v) for k, v in value.items()))
    return parse_duration(str(value))


def check_interval(delay: timedelta) -> timedelta:
    """How often a chain looks whether its running instance has ended."""
    return min(max(delay, _MIN_CHECK), _MAX_CHECK)


def chain_id(workflow_id: str, version: str) -> str:
    """The chain of one deployed version."""
    return f"after:{workflow_id}:{version}"


def start_timer_id(chain: str, run: int) -> str:
    """The timer that starts run ``run`` of a chain."""
    return f"{chain}#{run}"


def check_timer_id(chain: str, run: int, check: int) -> str:
    """The ``check``-th look at run ``run`` of a chain."""
    return f"{chain}#{run}/check{check}"


def chain_instance_id(start_timer: str) -> str:
    """The instance a start timer starts: the same for the same timer."""
    return instance_id_for(start_timer)


class AfterSchedules:
    """Runs the chains of ``schedule.after`` workflows on the timer service (module docs).

    Args:
        timers: The timer service (handlers added by :meth:`register`).
        registry: The workflow registry.
        start: Starts an instance (``DurableRuntime.start_instance``).
        lookup: Reads an instance (``PostgresInstances.get``).
    """

    def __init__(
        self,
        timers: TimerService,
        registry: PostgresRegistry,
        start: Starter,
        lookup: InstanceLookup,
    ) -> None:
        self._timers = timers
        self._registry = registry
        self._start = start
        self._lookup = lookup

    def register(self) -> None:
        """Register both timer handlers with the timer service (before it starts)."""
        self._timers.register(AFTER_START_KIND, self._fire_starts)
        self._timers.register(AFTER_CHECK_KIND, self._fire_checks)

    async def sync(self, latest: WorkflowVersion | None) -> bool:
        """Begin the chain of ``latest`` if it has ``after`` (nothing if it exists already).

        Returns:
            Whether ``latest`` has a chain.
        """
        if latest is None or after_delay(latest.definition) is None:
            return False
        chain = chain_id(latest.workflow_id, latest.version)
        payload = {"workflowId": latest.workflow_id, "version": latest.version, "run": 0}
        record = await self._timers.add(
            AFTER_START_KIND,
            self._timers.clock.now(),
            payload,
            timer_id=start_timer_id(chain, 0),
        )
        log.info("workflow %s: 'after' chain %s (first start %s)", latest.workflow_id, chain,
                 record.state)  # fmt: skip
        return True

    async def _current(
        self, payload: Mapping[str, Any]
    ) -> tuple[WorkflowVersion, timedelta] | None:
        """The chain's version and delay while it is still the latest with ``after``."""
        workflow_id, version = str(payload.get("workflowId", "")), str(payload.get("version", ""))
        try:
            latest = await self._registry.get(workflow_id)
        except WorkflowNotFound:
            return None
        delay = after_delay(latest.definition)
        if latest.version != version or delay is None:
            return None
        return latest, delay

    async def _fire_starts(self, timers: list[TimerRecord], conn: asyncpg.Connection) -> None:
        await _each(self._start_run, timers)

    async def _fire_checks(self, timers: list[TimerRecord], conn: asyncpg.Connection) -> None:
        await _each(self._check_run, timers)

    async def _start_run(self, timer: TimerRecord) -> None:
        payload = timer.payload if isinstance(timer.payload, Mapping) else {}
        current = await self._current(payload)
        if current is None:
            log.info("timer %s: the 'after' chain ended (a newer version, or deleted)", timer.id)
            return
        latest, delay = current
        run = int(payload.get("run", 0))
        instance_id = chain_instance_id(timer.id)
        try:
            await self._start(
                latest.workflow_id, {}, version=latest.version, instance_id=instance_id
            )
        except (WorkflowNotFound, WorkflowValidationError) as exc:
            log.error("timer %s: not started, the chain ends: %s", timer.id, exc.message)
            return
        await self._check_later(latest, run, 0, instance_id, delay)

    async def _check_later(
        self, version: WorkflowVersion, run: int, check: int, instance_id: str, delay: timedelta
    ) -> None:
        chain = chain_id(version.workflow_id, version.version)
        payload = {
            "workflowId": version.workflow_id,
            "version": version.version,
            "run": run,
            "check": check,
            "instanceId": instance_id,
        }
        due = self._timers.clock.now() + check_interval(delay)
        timer_id = check_timer_id(chain, run, check)
        await self._timers.add(AFTER_CHECK_KIND, due, payload, timer_id=timer_id)

    async def _check_run(self, timer: TimerRecord) -> None:
        payload = timer.payload if isinstance(timer.payload, Mapping) else {}
        current = await self._current(payload)
        if current is None:
            return
        latest, delay = current
        run, check = int(payload.get("run", 0)), int(payload.get("check", 0))
        instance_id = str(payload.get("instanceId", ""))
        try:
            row = await self._lookup(instance_id)
        except InstanceNotFound:
            log.warning("timer %s: instance %s is gone; the chain ends", timer.id, instance_id)
            return
        if row.status == InstanceStatus.CANCELLED:
            log.info("workflow %s: run %d was cancelled; the 'after' chain ends",
                     latest.workflow_id, run)  # fmt: skip
            return
        if row.status not in _ENDED_GOES_ON or row.ended_at is None:
            await self._check_later(latest, run, check + 1, instance_id, delay)
            return
        # The end as the timer service's clock sees it: no later than now.
        ended = min(row.ended_at, self._timers.clock.now())
        chain = chain_id(latest.workflow_id, latest.version)
        payload = {"workflowId": latest.workflow_id, "version": latest.version, "run": run + 1}
        await self._timers.add(
            AFTER_START_KIND,
            ended + delay,
            payload,
            timer_id=start_timer_id(chain, run + 1),
        )


async def _each(handle: Callable[[TimerRecord], Awaitable[None]], timers: list[Any]) -> None:
    """Handle timers fired together concurrently; raise the first failure (retried later)."""
    results = await asyncio.gather(*(handle(t) for t in timers), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
