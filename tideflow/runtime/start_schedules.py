"""Workflows started on a schedule: ``start.schedule`` in ``tideflow serve``.

A workflow whose ``start`` has a ``schedule`` (an ISO 8601 repeating interval
in UTC, or ``{interval | cron, timezone}``) gets one schedule in the timer
service, with the stable id ``workflow:<id>``. Each tick of that schedule is
one timer (``workflow:<id>@<tick>``, started exactly once per tick by the
timer service, see ``docs/timers.md``); firing it starts one instance of the
workflow's latest non-deleted version with the input ``{}``.

Starting is idempotent, keyed by the tick: the instance id is derived from
the tick's timer id (:func:`instance_id_for`), and starting an instance whose
id exists returns the existing one. So a tick fired again -- after a crash
between the start and the firing commit, or by a second process -- never
starts a second instance.

:class:`WorkflowSchedules` keeps the schedules in step with the registry:
:meth:`~WorkflowSchedules.sync` after a deploy or a delete, and
:meth:`~WorkflowSchedules.sync_all` when a server starts. A schedule whose
definition did not change is left alone, so ticks missed while no server ran
follow the catch-up policy instead of being forgotten by a re-deploy.

A schedule on an Event start state starts nothing: the spec reads it as an
event source issuing the start events at those times, which lies outside the
workflow. Tideflow warns when such a definition is deployed and leaves the
instances to the events.

DSL 1.0 definitions have a top-level ``schedule``: ``every: <duration>``
(one instance per interval, whether or not the previous one has ended) is the
interval ``R/<duration>`` and ``cron: <expression>`` the cron schedule, both
in UTC, kept and ticked exactly as above. ``on`` (instances started by
events) is the workflow subscriber's (:mod:`tideflow.triggers.workflow_events`).
``after`` (run again a delay after each run ends) is a chain of timers of its
own (:mod:`tideflow.runtime.after_schedules`), which :meth:`WorkflowSchedules.sync`
begins through the :class:`AfterChains` it is given.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from tideflow.errors import (
    InvalidSchedule,
    Problem,
    WorkflowNotFound,
    WorkflowValidationError,
)
from tideflow.timer.schedules import parse_schedule
from tideflow.workflow.dsl1 import is_dsl1

if TYPE_CHECKING:
    import asyncpg

    from tideflow.runtime.gateway import PostgresRegistry, WorkflowVersion
    from tideflow.timer.records import ScheduleRecord, TimerRecord
    from tideflow.timer.service import TimerService

log = logging.getLogger("tideflow.schedules")

WORKFLOW_START_KIND = "tideflow.workflow_start"
"""Kind of the timer each tick of a workflow's schedule adds."""

SCHEDULE_PREFIX = "workflow:"
"""Schedule ids are this prefix and the workflow id."""

EVENT_START_WARNING = (
    "the start state is an event state: the schedule starts no instances; instances are "
    "created by the start events (an event source must send them at the scheduled times)"
)


_NAMESPACE = uuid.UUID("6f1d3c2e-8a4b-5c6d-9e0f-7a8b9c0d1e2f")
_PARSE_ANCHOR = datetime(2000, 1, 1, tzinfo=UTC)  # only checks syntax; never planned from


class AfterChains(Protocol):
    """Begins the ``schedule.after`` chain of a version (``AfterSchedules``)."""

    async def sync(self, latest: WorkflowVersion | None) -> bool:
        """Begin the chain of ``latest`` if it has ``after``; whether it has one."""
        ...


class Starter(Protocol):
    """Starts an instance (``DurableRuntime.start_instance``)."""

    async def __call__(
        self,
        workflow_id: str,
        input: Any,
        *,
        version: str | None = None,
        instance_id: str | None = None,
    ) -> Any:
        """Start (or, with an existing ``instance_id``, return) an instance."""
        ...


def schedule_id(workflow_id: str) -> str:
    """The stable id of a workflow's schedule in the timer service."""
    return SCHEDULE_PREFIX + workflow_id


def instance_id_for(timer_id: str) -> str:
    """The id of the instance a tick's timer starts: the same for the same tick."""
    return str(uuid.uuid5(_NAMESPACE, timer_id))


_UNITS = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1, "milliseconds": 0.001}


def _every(duration: Any) -> str:
    """``R/<duration>`` of a 1.0 ``every`` (ISO 8601 text or ``{days, hours, ...}``)."""
    if isinstance(duration, Mapping):
        seconds = sum(_UNITS.get(str(k), 0) * float(v) for k, v in duration.items())
        return f"R/PT{seconds:g}S"
    return f"R/{duration}"


def start_schedule(definition: Any) -> Any | None:
    """The schedule that starts instances of a parsed definition, or ``None``.

    0.8: ``start.schedule`` as written. 1.0: ``schedule.every`` and
    ``schedule.cron`` in the timer service's form (``on`` starts by events).
    """
    if not isinstance(definition, Mapping):
        return None
    if is_dsl1(definition):
        schedule = definition.get("schedule")
        if not isinstance(schedule, Mapping):
            return None
        if "every" in schedule:
            return {"interval": _every(schedule["every"])}
        if "cron" in schedule:
            return {"cron": schedule["cron"]}
        return None
    start = definition.get("start")
    if not isinstance(start, Mapping):
        return None
    return start.get("schedule")


def starts_with_event(definition: Any) -> bool:
    """Whether the start state of a parsed definition is an event state."""
    if not isinstance(definition, Mapping):
        return False
    states = definition.get("states") or []
    start = definition.get("start")
    name = start.get("stateName") if isinstance(start, Mapping) else start
    for state in states:
        if isinstance(state, Mapping) and (name is None or state.get("name") == name):
            return state.get("type") == "event"
    return False


def schedule_to_register(definition: Any) -> Any | None:
    """The schedule that starts instances of this definition, or ``None``.

    ``None`` when there is no schedule, and when the start state is an event
    state (the schedule is then the event source's business, not ours).
    """
    schedule = start_schedule(definition)
    if schedule is None or starts_with_event(definition):
        return None
    return schedule


def check_start_schedule(definition: Any, source: str | None = None) -> list[Problem]:
    """Check ``start.schedule`` the way the timer service will read it.

    Returns:
        Warnings: a schedule on an event start state starts nothing.

    Raises:
        WorkflowValidationError: The schedule cannot be used (an impossible
            cron expression, interval or time zone), with its path.
    """
    schedule = start_schedule(definition)
    if schedule is None:
        return []
    try:
        parse_schedule(schedule, anchor=_PARSE_ANCHOR)
    except InvalidSchedule as exc:
        if is_dsl1(definition):
            where: tuple[str, ...] = ("schedule", "every" if "interval" in schedule else "cron")
        else:
            where = ("start", "schedule", *_argument_path(schedule, exc.argument))
        raise WorkflowValidationError([Problem(where, exc.message)], source=source) from None
    if starts_with_event(definition):
        return [Problem(("start", "schedule"), EVENT_START_WARNING, severity="warning")]
    return []


def _argument_path(schedule: Any, argument: str | None) -> tuple[str, ...]:
    """Where in ``start.schedule`` a parse error points (``cron.validUntil``, ...)."""
    if isinstance(schedule, str) or not argument or argument == "schedule":
        return ()
    if argument == "cron" and isinstance(schedule.get("cron"), Mapping):
        return ("cron", "expression")
    return tuple(argument.split("."))


def _payload(workflow_id: str, schedule: Any) -> dict[str, Any]:
    return {"workflowId": workflow_id, "schedule": schedule}


class WorkflowSchedules:
    """Keeps the timer service's schedules in step with deployed workflows; starts ticks.

    Args:
        timers: The timer service (its handler is added by :meth:`register`).
        registry: The workflow registry.
        start: Starts an instance, e.g. ``DurableRuntime.start_instance``.
        after: Begins ``schedule.after`` chains (``None``: they start nothing).
    """

    def __init__(
        self,
        timers: TimerService,
        registry: PostgresRegistry,
        start: Starter,
        after: AfterChains | None = None,
    ) -> None:
        self._timers = timers
        self._registry = registry
        self._start = start
        self._after = after

    def register(self) -> None:
        """Register the tick handler with the timer service (before it starts)."""
        self._timers.register(WORKFLOW_START_KIND, self.fire)

    async def sync(self, workflow_id: str) -> ScheduleRecord | None:
        """Register, replace or cancel the schedule of ``workflow_id`` after a deploy or delete.

        Returns:
            The schedule now in force, or ``None`` (none, or cancelled).

        Raises:
            InvalidSchedule: The latest version's schedule is unusable.
            StoreError: The database failed.
        """
        try:
            latest = await self._registry.get(workflow_id)
        except WorkflowNotFound:
            latest = None
        existing = await self._timers.store.get_schedule(schedule_id(workflow_id))
        if self._after is not None:
            await self._after.sync(latest)
        return await self._apply(workflow_id, latest, existing)

    async def sync_all(self) -> int:
        """Sync every deployed workflow and every schedule left by a deleted one.

        An unusable schedule is logged, not raised: one bad definition must
        not keep a server from starting.

        Returns:
            How many workflow schedules are in force.
        """
        latest = {v.workflow_id: v for v in await self._registry.list()}
        known = {
            r.id.removeprefix(SCHEDULE_PREFIX): r
            for r in await self._timers.store.list_schedules(WORKFLOW_START_KIND)
        }
        active = 0
        for workflow_id in sorted(latest.keys() | known.keys()):
            try:
                if self._after is not None:
                    await self._after.sync(latest.get(workflow_id))
                record = await self._apply(
                    workflow_id, latest.get(workflow_id), known.get(workflow_id)
                )
            except InvalidSchedule as exc:
                log.error("workflow %s: schedule not registered: %s", workflow_id, exc.message)
                continue
            active += record is not None and record.state == "active"
        return active

    async def _apply(
        self,
        workflow_id: str,
        latest: WorkflowVersion | None,
        existing: ScheduleRecord | None,
    ) -> ScheduleRecord | None:
        """Make the stored schedule (``existing``) match the latest version's."""
        sid = schedule_id(workflow_id)
        schedule = None if latest is None else schedule_to_register(latest.definition)
        if latest is not None and schedule is None and start_schedule(latest.definition):
            log.warning("workflow %s: %s", workflow_id, EVENT_START_WARNING)
        if schedule is None:
            if existing is not None and existing.state == "active":
                await self._timers.cancel_schedule(sid)
                log.info("workflow %s: schedule cancelled", workflow_id)
            return None
        payload = _payload(workflow_id, schedule)
        if existing is not None and existing.state != "cancelled" and existing.payload == payload:
            return existing  # unchanged: keep its next tick (missed ticks follow catch-up)
        record = await self._timers.schedule(
            WORKFLOW_START_KIND, schedule, payload, schedule_id=sid
        )
        log.info("workflow %s: scheduled, next tick %s", workflow_id, record.next_tick)
        return record

    async def fire(self, timers: list[TimerRecord], conn: asyncpg.Connection) -> None:
        """The tick handler: start one instance per tick (idempotent, keyed by the tick).

        A tick of a workflow deleted since, or whose latest version no longer
        has a schedule, starts nothing. A database failure is raised, so the
        timer service retries the tick later (starting stays idempotent).
        Ticks fired together start concurrently (their creations share commits).
        """
        results = await asyncio.gather(
            *(self._start_tick(timer) for timer in timers), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _start_tick(self, timer: TimerRecord) -> None:
        payload = timer.payload if isinstance(timer.payload, Mapping) else {}
        workflow_id = str(payload.get("workflowId", ""))
        try:
            latest = await self._registry.get(workflow_id)
        except WorkflowNotFound:
            log.info("tick %s: workflow %r is not deployed; nothing started", timer.id, workflow_id)
            return
        if schedule_to_register(latest.definition) is None:
            log.info("tick %s: workflow %r has no schedule now", timer.id, workflow_id)
            return
        try:
            await self._start(
                workflow_id, {}, version=latest.version, instance_id=instance_id_for(timer.id)
            )
        except (WorkflowNotFound, WorkflowValidationError) as exc:
            log.error("tick %s: workflow %r not started: %s", timer.id, workflow_id, exc.message)
