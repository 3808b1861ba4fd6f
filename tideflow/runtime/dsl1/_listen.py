"""The ``listen`` task: ``one``, ``any`` (``until``), ``all``, correlation, ``read``, ``foreach``.

The host matches events on ``type``, ``source`` and the other plain ``with``
attributes (:class:`~tideflow.runtime.effects.EventSpec`); what only the
workflow can judge -- a ``data`` expression over the event's data and the
``correlate`` keys -- the interpreter checks on each event it receives,
dropping the ones that fail and waiting again under the next step key. So
every host runs 1.0 listens with the event waits it already has:

- ``one``: the first event that passes the filter;
- ``any`` without ``until``: the first event that passes any filter (an
  empty ``any`` takes any event);
- ``any`` with ``until``: events are consumed one by one until the ``until``
  expression (over the list consumed so far) holds, or until an event of the
  ``until`` strategy arrives (that event is not part of the output);
- ``all``: one event per filter, waited for in order (the host keeps events
  that arrive before their wait).

The listen is the workflow correlating events: a ``correlation.started`` step
as it begins, a ``correlation.completed`` one (with the ``correlate`` keys it
resolved as ``correlationKeys``) once it has consumed its events -- the
standard ``workflow.correlation-*`` lifecycle events on a server.

The output is the list of consumed events as ``read`` asks (``data``, the
default; ``envelope``, the whole CloudEvent; ``raw``, the same here). With
``foreach``, ``foreach.do`` runs for each consumed event (``$item`` and
``$index`` by default) after the listen, and the task's output is the list
of their outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tideflow.runtime.dsl1._executor import Executor, Scope
from tideflow.runtime.dsl1._scope import evaluate, evaluate_bool, template
from tideflow.runtime.dsl1.errors import standard_error
from tideflow.runtime.effects import EventSpec, EventWait
from tideflow.workflow.dsl1.model import Task
from tideflow.workflow.exprtext import is_expression

Outcome = tuple[Any, str | None]
_MAX_DROPPED = 10_000


class _Listen:
    """One listen task's waits and checks."""

    def __init__(self, ex: Executor, task: Task, data: Any, key: str, scope: Scope) -> None:
        self.ex, self.task, self.data, self.key = ex, task, data, key
        self.variables = ex.run.variables(task, scope, input=data)
        self.waits = 0
        self.expected: dict[str, Any] = {}

    def spec(self, index: int, event_filter: Mapping[str, Any]) -> EventSpec:
        """The host's part of a filter: type, source and plain attributes."""
        plain = {
            k: v for k, v in (event_filter.get("with") or {}).items()
            if k != "data" and not (isinstance(v, str) and is_expression(v))
        }  # fmt: skip
        attributes = dict(template(plain, self.data, self.variables, self.task.reference))
        kind = attributes.pop("type", "")
        source = attributes.pop("source", None)
        pairs = tuple((str(k), None if v is None else str(v)) for k, v in attributes.items())
        return EventSpec(name=f"filter:{index}", type=str(kind), source=source,
                         correlation=pairs, data_only=False, definition=event_filter)  # fmt: skip

    async def next_event(self, filters: Sequence[Mapping[str, Any]]) -> tuple[int, dict[str, Any]]:
        """The next event that passes one of ``filters``: (its filter's index, the event)."""
        specs = tuple(self.spec(i, f) for i, f in enumerate(filters))
        if not specs:
            specs = (EventSpec(name="any", type="", data_only=False),)
        for _ in range(_MAX_DROPPED):
            self.waits += 1
            step = f"{self.key}/events" + (f":{self.waits}" if self.waits > 1 else "")
            wait = EventWait(key=step, events=specs, state=self.task.name)
            events = await self.ex.run.effects.wait_for_events(wait)
            if not events:
                raise standard_error("timeout", self.task.reference, "no event arrived in time")
            event = events[0]
            index = self._passes(filters, event)
            if index is not None:
                return index, event
            self.ex.run.step("event.dropped", step, self.task.name, type=event.get("type"))
        raise standard_error("runtime", self.task.reference, "too many events dropped")

    def _passes(self, filters: Sequence[Mapping[str, Any]], event: dict[str, Any]) -> int | None:
        if not filters:
            return 0
        for index, event_filter in enumerate(filters):
            if self._matches(event_filter, event) and self._correlates(event_filter, event):
                return index
        return None

    def _matches(self, event_filter: Mapping[str, Any], event: dict[str, Any]) -> bool:
        attributes = event_filter.get("with") or {}
        kind = attributes.get("type")
        if isinstance(kind, str) and not is_expression(kind) and kind != event.get("type"):
            return False
        for name, value in attributes.items():
            if isinstance(value, str) and is_expression(value):
                target = event.get("data") if name == "data" else event.get(name)
                if not evaluate_bool(value, target, self.variables, self.task.reference):
                    return False
        return True

    def _correlates(self, event_filter: Mapping[str, Any], event: dict[str, Any]) -> bool:
        found: dict[str, Any] = {}
        for name, rule in (event_filter.get("correlate") or {}).items():
            value = evaluate(rule["from"], event, self.variables, self.task.reference)
            expect = rule.get("expect")
            if expect is not None:
                wanted = template(expect, self.data, self.variables, self.task.reference)
            else:
                wanted = self.expected.get(name, value)
            if value != wanted:
                return False
            found[name] = value
        self.expected.update(found)
        return True


def _read(events: list[dict[str, Any]], read: str) -> list[Any]:
    return [event.get("data") if read == "data" else event for event in events]


async def _consume(listen: _Listen, to: Mapping[str, Any], read: str) -> list[dict[str, Any]]:
    if "one" in to:
        return [(await listen.next_event([to["one"]]))[1]]
    if "all" in to:
        return [(await listen.next_event([f]))[1] for f in to["all"]]
    filters = list(to.get("any") or [])
    until = to.get("until")
    if until is None:
        return [(await listen.next_event(filters))[1]]
    stop = [] if isinstance(until, str) else _strategy_filters(until)
    consumed: list[dict[str, Any]] = []
    while True:
        index, event = await listen.next_event([*filters, *stop] if stop else filters)
        if stop and index >= len(filters):
            return consumed
        consumed.append(event)
        if isinstance(until, str):
            seen = _read(consumed, read)
            if evaluate_bool(until, seen, listen.variables, listen.task.reference):
                return consumed


def _strategy_filters(strategy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if "one" in strategy:
        return [strategy["one"]]
    return list(strategy.get("any") or strategy.get("all") or [])


async def run_listen(ex: Executor, task: Task, data: Any, key: str, scope: Scope) -> Outcome:
    """``listen`` (see the module docstring)."""
    spec = task.get("listen")
    read = str(spec.get("read", "data"))
    listen = _Listen(ex, task, data, key, scope)
    ex.run.step("correlation.started", key, task.name, reference=task.reference)
    consumed = _read(await _consume(listen, spec["to"], read), read)
    ex.run.step("correlation.completed", key, task.name, reference=task.reference,
                correlationKeys=dict(listen.expected))  # fmt: skip
    foreach = task.get("foreach")
    if foreach is None:
        return consumed, None
    each, at = foreach.get("item", "item"), foreach.get("at", "index")
    outputs = []
    for index, item in enumerate(consumed):
        inner = {**scope, each: item, at: index}
        body = task.lists.get("foreach")
        output = (
            item if body is None else await ex.run_list(body, item, f"{key}/item:{index}", inner)
        )
        outputs.append(output)
    return outputs, None
