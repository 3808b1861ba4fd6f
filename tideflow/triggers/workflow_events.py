"""Workflows as subscribers: a deployed workflow's consumed events, compiled (pure code).

Deploying a workflow compiles its event definitions into what the workflow
subscriber (:mod:`tideflow.triggers.correlation`) matches events against:

- a :class:`StartSpec` when the start state waits for events (an event state
  or an event-based switch): a matching event creates an instance
  (``exclusive: true``), or once every listed event has arrived with the same
  correlation values (``exclusive: false``);
- the :class:`Shape` of every consumed event definition: its type and the
  names of its correlation attributes. An event's correlation key for a shape
  is ``{name: value}`` of those attributes; waiting instances are indexed by
  ``(type, key)`` so an event finds its instances without a scan.

See ``docs/events.md``.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from tideflow.runtime import timeouts
from tideflow.workflow.dsl1 import Task, tasks
from tideflow.workflow.dsl1 import Workflow as Workflow1
from tideflow.workflow.model import EventState, SwitchState, Workflow

__all__ = [
    "ANY_TYPE",
    "PROCESS_REFERENCE",
    "EventMatch",
    "IndexKey",
    "Shape",
    "StartSpec",
    "SubscriberIndex",
    "WorkflowEvents",
    "attribute",
    "attribute_text",
    "compile_dsl1",
    "compile_workflow",
    "correlation_key",
    "partition_of",
    "schedule_on_problem",
]


ANY_TYPE = ""
"""The type a wait for events of any type is indexed under (a 1.0 ``any: []`` listen,
or a filter whose ``type`` is an expression): every event is looked up under it too."""

PROCESS_REFERENCE: Final = "kogitoprocrefid"
"""SonataFlow's CloudEvents extension naming the instance an event is for (its id)."""

IndexKey = tuple[str, dict[str, str]]
"""``(type, correlation key)``: where a waiting instance may be indexed for an event."""


def attribute_text(value: Any) -> str:
    """A context attribute's value as correlation compares it (text, JSON for non-strings)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def attribute(event: Mapping[str, Any], name: str) -> Any:
    """The event's context attribute ``name``, or ``None``.

    CloudEvents attribute names are lower case, so a ``contextAttributeName``
    such as the spec examples' ``patientId`` is found as ``patientid`` too.
    """
    value = event.get(name)
    if value is None and not name.islower():
        value = event.get(name.lower())
    return value


def correlation_key(names: Iterable[str], event: Mapping[str, Any]) -> dict[str, str] | None:
    """``{name: value}`` of the event's attributes ``names``; ``None`` when one is missing."""
    key: dict[str, str] = {}
    for name in names:
        value = attribute(event, name)
        if value is None:
            return None
        key[name] = attribute_text(value)
    return key


def partition_of(instance_id: str, partitions: int) -> int:
    """The workflow subscriber's partition (``0 <= p < partitions``) that starts an instance
    from its event and answers its new waits: the same in every process (CRC-32 of the id)."""
    return zlib.crc32(instance_id.encode()) % partitions


@dataclass(frozen=True, slots=True, kw_only=True)
class EventMatch:
    """One consumed event definition as a matcher."""

    name: str
    """The event definition's name."""
    type: str
    """CloudEvent ``type``."""
    source: str | None = None
    """CloudEvent ``source`` (``None``: any)."""
    correlation: tuple[tuple[str, str | None], ...] = ()
    """``(contextAttributeName, literal contextAttributeValue or None)``."""

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Type, source and the literal correlation values (an expression value is not literal)."""
        if event.get("type") != self.type:
            return False
        if self.source is not None and event.get("source") != self.source:
            return False
        for name, value in self.correlation:
            found = attribute(event, name)
            if found is None:
                return False
            if value is not None and attribute_text(found) != value:
                return False
        return True

    @property
    def names(self) -> tuple[str, ...]:
        """The correlation attribute names, sorted."""
        return tuple(sorted(name for name, _ in self.correlation))


@dataclass(frozen=True, slots=True, kw_only=True)
class StartSpec:
    """How events start instances of one workflow version."""

    workflow_id: str
    """The workflow."""
    version: str
    """Its version."""
    state: str
    """The start state's name."""
    exclusive: bool
    """One instance per matching event (``True``), or one per complete correlated set."""
    events: tuple[EventMatch, ...]
    """The events the start state waits for."""
    event_timeout: float | None = None
    """Non-exclusive only: the most seconds between the events of a set
    (``eventTimeout`` of the state, else of the workflow); ``None``: no limit."""
    events_as_input: bool = False
    """DSL 1.0 ``schedule.on``: the instance's input is the list of its starting
    events (else they answer its start state's first wait)."""

    @property
    def wait_key(self) -> str:
        """The step key of the start state's first wait (what the start events answer)."""
        return f"{self.state}/events"

    def group_key(self, event: Mapping[str, Any]) -> dict[str, str]:
        """The values of every correlation attribute of the set present on ``event``."""
        names = sorted({n for match in self.events for n in match.names})
        found = {n: attribute(event, n) for n in names}
        return {n: attribute_text(v) for n, v in found.items() if v is not None}


@dataclass(frozen=True, slots=True, kw_only=True)
class Shape:
    """A consumed event type and the names of its correlation attributes."""

    type: str
    """CloudEvent ``type``."""
    names: tuple[str, ...]
    """Correlation attribute names, sorted (may be empty)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowEvents:
    """What one workflow version subscribes to."""

    start: StartSpec | None
    """Its event start, if it has one."""
    shapes: tuple[Shape, ...]
    """Every consumed event definition's shape (and every subset of its names:
    a wait whose values are not bound yet is indexed by the bound ones only)."""
    kept: frozenset[str] = frozenset()
    """Types of the consumed events the start state does not list: an event of
    such a type that nobody waits for yet is kept for instances that wait later."""
    sonataflow: bool = False
    """Deployed with the SonataFlow dialect: an event of a consumed type carrying
    :data:`PROCESS_REFERENCE` is addressed to the instance it names."""


def _match(workflow: Workflow, name: str, sonataflow: bool = False) -> EventMatch:
    definition = workflow.event(name)
    return EventMatch(
        name=definition.name,
        type=definition.type,
        # SonataFlow's dialect: consumed events match by type alone (it never reads source)
        source=None if sonataflow else definition.source,
        correlation=tuple(
            (c.context_attribute_name, _literal(c.context_attribute_value))
            for c in definition.correlation
        ),
    )


def _literal(value: str | None) -> str | None:
    # An expression is evaluated against the instance's data, which a start has not got.
    if value is None or "${" in value:
        return None
    return value


def _start(workflow: Workflow, version: str, sonataflow: bool = False) -> StartSpec | None:
    state = workflow.start_state
    if isinstance(state, EventState):
        refs = [ref for group in state.on_events for ref in group.event_refs]
        exclusive = state.exclusive
    elif isinstance(state, SwitchState) and state.event_conditions:
        refs = [c.event_ref for c in state.event_conditions]
        exclusive = True
    else:
        return None
    unique = list(dict.fromkeys(refs))
    return StartSpec(
        workflow_id=workflow.identifier,
        version=version,
        state=state.name,
        exclusive=exclusive,
        events=tuple(_match(workflow, ref, sonataflow) for ref in unique),
        # Spec 0.8: an exclusive start ignores eventTimeout; a non-exclusive
        # one bounds the time between the events of its set.
        event_timeout=None if exclusive else timeouts.event(state.timeouts, workflow.timeouts),
    )


def _subsets(names: tuple[str, ...]) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = [()]
    for name in names:
        found += [(*prefix, name) for prefix in found]
    return found


def compile_workflow(
    workflow: Workflow, version: str, *, sonataflow: bool = False
) -> WorkflowEvents:
    """The subscriptions of a deployed workflow version (see the module docs);
    ``sonataflow``: deployed with that dialect (start events match by type alone)."""
    if getattr(workflow, "spec_version", "") == "1.0":
        return compile_dsl1(workflow, version)  # type: ignore[arg-type]
    shapes: dict[Shape, None] = {}
    for definition in workflow.events:
        if definition.kind != "consumed":
            continue
        names = tuple(sorted(c.context_attribute_name for c in definition.correlation))
        for subset in _subsets(names)[:64]:  # 6 attributes at most: keep the lookup small
            shapes[Shape(type=definition.type, names=tuple(sorted(subset)))] = None
    start = _start(workflow, version, sonataflow)
    starting = {m.type for m in start.events} if start is not None else set()
    kept = frozenset(
        d.type for d in workflow.events if d.kind == "consumed" and d.type not in starting
    )
    return WorkflowEvents(start=start, shapes=tuple(shapes), kept=kept, sonataflow=sonataflow)


def _listen_filters(task: Task) -> list[Mapping[str, Any]]:
    to = task.get("listen", {}).get("to", {})
    found = [to["one"]] if "one" in to else list(to.get("all") or to.get("any") or [])
    until = to.get("until")
    if isinstance(until, Mapping):
        found += (
            [until["one"]] if "one" in until else list(until.get("any") or until.get("all") or [])
        )
    return found


def _filter_match(name: str, event_filter: Mapping[str, Any]) -> EventMatch | None:
    """A 1.0 event filter of plain attributes as a matcher (``None``: it has more)."""
    attributes = dict(event_filter.get("with") or {})
    kind, source = attributes.pop("type", None), attributes.pop("source", None)
    plain = all(isinstance(v, str) and "${" not in v for v in attributes.values())
    if not isinstance(kind, str) or "${" in kind or not plain or "correlate" in event_filter:
        return None
    if source is not None and (not isinstance(source, str) or "${" in source):
        return None
    correlation = tuple((str(k), str(v)) for k, v in attributes.items())
    return EventMatch(name=name, type=kind, source=source, correlation=correlation)


def schedule_on_problem(strategy: Any) -> tuple[tuple[str | int, ...], str] | None:
    """Why ``tideflow serve`` cannot start instances on this ``schedule.on``: (path, reason)."""
    if not isinstance(strategy, Mapping):
        return None
    if "until" in strategy:
        return ("schedule", "on", "until"), "'until' does not start instances here"
    filters = [strategy["one"]] if "one" in strategy else strategy.get("any", strategy.get("all"))
    if not filters:
        return ("schedule", "on"), "starting on any event at all is not supported"
    where = "one" if "one" in strategy else ("any" if "any" in strategy else "all")
    for index, event_filter in enumerate(filters):
        if _filter_match("", event_filter) is None:
            path: tuple[str | int, ...] = ("schedule", "on", where)
            path += () if where == "one" else (index,)
            reason = ("a starting event is matched on a literal type and literal attributes "
                      "only (no expressions, no correlate)")  # fmt: skip
            return path, reason
    return None


def _schedule_start(workflow: Workflow1, version: str) -> StartSpec | None:
    strategy = (workflow.schedule or {}).get("on")
    if not isinstance(strategy, Mapping) or schedule_on_problem(strategy) is not None:
        return None
    filters = [strategy["one"]] if "one" in strategy else strategy.get("any", strategy.get("all"))
    matches = [_filter_match(f"on:{i}", f) for i, f in enumerate(filters)]
    return StartSpec(
        workflow_id=workflow.identifier,
        version=version,
        state="schedule",
        exclusive="all" not in strategy,
        events=tuple(m for m in matches if m is not None),
        events_as_input=True,
    )


def compile_dsl1(workflow: Workflow1, version: str) -> WorkflowEvents:
    """What a DSL 1.0 workflow subscribes to: ``schedule.on`` and its ``listen`` tasks.

    ``schedule.on`` is a start: ``one`` and ``any`` start an instance per
    matching event, ``all`` one per complete set; the instance's input is the
    list of its events (filters of literal attributes only, see
    :func:`schedule_on_problem`). A filter's shape is its ``type`` and its
    other plain ``with`` attributes (``source`` and ``data`` aside,
    expressions aside): the names the 1.0 interpreter puts in its
    :class:`~tideflow.runtime.effects.EventSpec` correlation. A filter without
    a plain ``type`` (``any: []``, or a type that is an expression) takes
    events of every type: its shape's type is :data:`ANY_TYPE`, and the
    interpreter judges each event.
    """
    shapes: dict[Shape, None] = {}
    for task in tasks(workflow):
        if task.kind != "listen":
            continue
        filters = _listen_filters(task)
        if not filters:  # any: [] -- any event
            shapes[Shape(type=ANY_TYPE, names=())] = None
        for event_filter in filters:
            attributes = event_filter.get("with") or {}
            kind = attributes.get("type")
            if not isinstance(kind, str) or "${" in kind:
                kind = ANY_TYPE
            names = sorted(
                str(k) for k, v in attributes.items()
                if k not in ("type", "source", "data") and not (isinstance(v, str) and "${" in v)
            )  # fmt: skip
            shapes[Shape(type=kind, names=tuple(names))] = None
    start = _schedule_start(workflow, version)
    starting = {m.type for m in start.events} if start is not None else set()
    kept = frozenset(shape.type for shape in shapes if shape.type not in starting)
    return WorkflowEvents(start=start, shapes=tuple(shapes), kept=kept)


@dataclass(slots=True)
class SubscriberIndex:
    """Deployed workflows' subscriptions by event type (latest version of each workflow)."""

    compiled: dict[str, WorkflowEvents] = field(default_factory=dict)
    """Workflow id -> its latest version's events."""
    starts: dict[str, list[StartSpec]] = field(default_factory=dict)
    """Event type -> the start specs listing it."""
    shapes: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)
    """Event type -> correlation name sets instances may wait with."""
    kept: set[str] = field(default_factory=set)
    """Event types kept when nobody waits for them yet (see :attr:`WorkflowEvents.kept`;
    :data:`ANY_TYPE`: every event)."""
    addressable: set[str] = field(default_factory=set)
    """Event types a SonataFlow-dialect workflow consumes (see :meth:`addressed_to`)."""

    def put(self, workflow_id: str, events: WorkflowEvents | None) -> None:
        """Set (or with ``None`` drop) one workflow's subscriptions and rebuild the maps."""
        if events is None:
            self.compiled.pop(workflow_id, None)
        else:
            self.compiled[workflow_id] = events
        self.starts = {}
        shapes: dict[str, set[tuple[str, ...]]] = {}
        for compiled in self.compiled.values():
            for shape in compiled.shapes:
                shapes.setdefault(shape.type, set()).add(shape.names)
            if compiled.start is not None:
                for match in compiled.start.events:
                    self.starts.setdefault(match.type, []).append(compiled.start)
        self.shapes = shapes
        self.kept = {t for compiled in self.compiled.values() for t in compiled.kept}
        self.addressable = {
            shape.type
            for compiled in self.compiled.values()
            if compiled.sonataflow
            for shape in compiled.shapes
        }

    def addressed_to(self, event: Mapping[str, Any]) -> str | None:
        """The instance id ``event`` names in :data:`PROCESS_REFERENCE`, when a
        SonataFlow-dialect workflow consumes its type (else ``None``)."""
        if str(event.get("type")) not in self.addressable:
            return None
        reference = event.get(PROCESS_REFERENCE)
        return reference if isinstance(reference, str) and reference else None

    def is_sonataflow(self, workflow_id: str) -> bool:
        """Whether ``workflow_id``'s latest version was deployed with the SonataFlow dialect."""
        compiled = self.compiled.get(workflow_id)
        return compiled is not None and compiled.sonataflow

    def keys(self, event: Mapping[str, Any]) -> list[IndexKey]:
        """Every ``(type, key)`` under which a waiting instance may be indexed for ``event``.

        Its own type's shapes, and :data:`ANY_TYPE`'s (waits for any type).
        """
        found = []
        kind = str(event.get("type"))
        for indexed in dict.fromkeys((kind, ANY_TYPE)):
            for names in self.shapes.get(indexed, ()):
                key = correlation_key(names, event)
                if key is not None:
                    found.append((indexed, key))
        return found

    def keeps(self, event: Mapping[str, Any]) -> bool:
        """Whether ``event`` is kept when nobody waits for it yet."""
        return str(event.get("type")) in self.kept or ANY_TYPE in self.kept

    def aliased(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """``event`` with each correlation attribute also under its definition's name.

        A definition may name an attribute ``patientId``; CloudEvents carry it
        as ``patientid``. The copy has both, so the runtime's own checks and
        the values it binds from the first event see the definition's name.
        """
        copy = dict(event)
        for names in self.shapes.get(str(event.get("type")), ()):
            for name in names:
                if name not in copy and not name.islower() and name.lower() in copy:
                    copy[name] = copy[name.lower()]
        return copy

    def starting(self, event: Mapping[str, Any]) -> list[StartSpec]:
        """The start specs one of whose events ``event`` matches."""
        specs = self.starts.get(str(event.get("type")), [])
        unique = {id(s): s for s in specs if any(m.matches(event) for m in s.events)}
        return list(unique.values())
