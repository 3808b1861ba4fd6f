"""The state of one 1.0 run and what every task needs: evaluation, durations, keys, timeline."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tideflow.errors import ExpressionError
from tideflow.isotime import duration_seconds, format_timestamp
from tideflow.runtime._turns import CountedPace
from tideflow.runtime.dsl1.errors import Raised, standard_error
from tideflow.runtime.effects import Effects, Pace
from tideflow.runtime.result import Step
from tideflow.workflow.dsl1.model import Task, Workflow, thaw
from tideflow.workflow.expressions import compile_expression, evaluate_value
from tideflow.workflow.exprtext import is_expression

_UNITS = {"days": 86400.0, "hours": 3600.0, "minutes": 60.0, "seconds": 1.0, "milliseconds": 0.001}
_URI_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ID_NAMESPACE = uuid.UUID("6f2b7f0e-54c5-4d8c-9f3e-1a0e5b7c2d41")


@dataclass(slots=True)
class Run:
    """What one run of a 1.0 workflow carries from task to task.

    Attributes:
        workflow: The definition.
        effects: The host.
        seed: A run-wide id from the host, the seed of deterministic event ids.
        base: ``$workflow``, ``$runtime``, ``$secrets``: the same for every task.
        context: ``$context`` (replaced by ``export.as``).
        timeline: The steps taken.
        on_step: Told of every step as it happens.
        visits: How often each step key was entered (keys of loops get ``#n``).
    """

    workflow: Workflow
    effects: Effects
    seed: str
    base: dict[str, Any]
    context: Any = field(default_factory=dict)
    timeline: list[Step] = field(default_factory=list)
    on_step: Any = None
    visits: dict[str, int] = field(default_factory=dict)
    on_task: Any = None
    """Told ``(task name, input)`` as each task starts (the host's ``on_state``)."""
    definitions: dict[str, Any] = field(default_factory=dict)
    """``$task.definition`` by task reference, thawed once (shared by the runs of one
    interpreter: expressions read it, nothing writes it)."""
    task_moments: bool = False
    """Whether tasks read the clock as they start, for ``$task.startedAt`` (only
    definitions that mention it pay one host clock read per task)."""
    started: dict[str, Any] = field(default_factory=dict)
    """``$task.startedAt`` by task reference: the latest start of that task."""
    authorizations: dict[str, Any] = field(default_factory=dict)
    """``$authorization`` by task reference: the resolved authentication of a call."""
    pace: Pace = field(default_factory=CountedPace)
    """When loops give the event loop a turn (the host's; a count when it gives none)."""

    def task_started(self, task: Task) -> None:
        """Note the moment ``task`` starts (when the definition reads ``$task.startedAt``)."""
        if self.task_moments:
            self.started[task.reference] = moment_of(self.effects.now())

    def step(self, kind: str, key: str, task: str | None, **detail: Any) -> None:
        """Record one timeline step."""
        entry = Step(kind, key, task, detail)
        self.timeline.append(entry)
        if self.on_step is not None:
            self.on_step(entry)

    def enter(self, scope: str, name: str) -> str:
        """The step key of a task entered in ``scope`` (``#n`` from its second visit)."""
        key = f"{scope}/{name}" if scope else name
        count = self.visits.get(key, 0) + 1
        self.visits[key] = count
        return key if count == 1 else f"{key}#{count}"

    def event_id(self, key: str) -> str:
        """A deterministic CloudEvent id for the event produced at ``key``."""
        return str(uuid.uuid5(_ID_NAMESPACE, f"{self.seed}/{key}"))

    def fraction(self, key: str) -> float:
        """A deterministic number in [0, 1) for ``key`` (retry jitter)."""
        digest = hashlib.sha256(f"{self.seed}/{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def variables(self, task: Task | None, scope: Mapping[str, Any], **more: Any) -> dict[str, Any]:
        """The variables an expression sees: the run's, the scope's, and ``more``."""
        out = {**self.base, "context": self.context, **scope, **more}
        if task is not None:
            definition = self.definitions.get(task.reference)
            if definition is None:
                definition = self.definitions[task.reference] = thaw(task.spec)
            out["task"] = {
                "name": task.name,
                "reference": task.reference,
                "definition": definition,
                **({"input": more["input"]} if "input" in more else {}),
            }
            started = self.started.get(task.reference)
            if started is not None:
                out["task"]["startedAt"] = started
            authorization = self.authorizations.get(task.reference)
            if authorization is not None:
                out["authorization"] = authorization
        return out


def moment_of(when: datetime) -> dict[str, Any]:
    """A 1.0 date-time descriptor: ``{iso8601, epoch: {seconds, milliseconds}}``."""
    return {
        "iso8601": format_timestamp(when),
        "epoch": {
            "seconds": int(when.timestamp()),
            "milliseconds": int(when.timestamp() * 1000),
        },
    }


def reads_task_started_at(definition: Any) -> bool:
    """Whether a definition may read ``$task.startedAt`` (a cheap, generous test)."""
    text = json.dumps(definition, default=str)
    return "$task" in text and "startedAt" in text


def evaluate(text: str, data: Any, variables: Mapping[str, Any], instance: str) -> Any:
    """Evaluate an expression field (``${ }`` or bare jq); failures are ``expression`` errors."""
    try:
        return compile_expression(text).evaluate(data, variables)
    except ExpressionError as exc:
        raise standard_error("expression", instance, str(exc)) from None


def evaluate_bool(text: str, data: Any, variables: Mapping[str, Any], instance: str) -> bool:
    """Evaluate a condition; anything but ``false`` and ``null`` is true (jq's truth)."""
    return evaluate(text, data, variables, instance) not in (False, None)


def template(value: Any, data: Any, variables: Mapping[str, Any], instance: str) -> Any:
    """Evaluate every ``${ }`` string inside a (deep-frozen) JSON value.

    With ``evaluate.mode: loose`` every other string is evaluated too, and
    stays the string it is when it is no expression that evaluates
    (``dsl.md`` §Runtime Expressions).
    """
    try:
        if _loose(variables):
            return _loose_value(thaw(value), data, variables)
        return evaluate_value(thaw(value), data, variables)
    except ExpressionError as exc:
        raise standard_error("expression", instance, str(exc)) from None


def _loose(variables: Mapping[str, Any]) -> bool:
    definition = (variables.get("workflow") or {}).get("definition") or {}
    evaluate = definition.get("evaluate") if isinstance(definition, Mapping) else None
    return isinstance(evaluate, Mapping) and evaluate.get("mode") == "loose"


def _loose_value(value: Any, data: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(value, Mapping):
        return {k: _loose_value(v, data, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_loose_value(v, data, variables) for v in value]
    if not isinstance(value, str) or "${" in value:
        return evaluate_value(value, data, variables)
    try:
        return compile_expression(value).evaluate(data, variables)
    except ExpressionError:  # loose: what does not evaluate is text
        return value


def transform(spec: Any, data: Any, variables: Mapping[str, Any], instance: str) -> Any:
    """``input.from``, ``output.as``, ``export.as``: an expression string or an object template."""
    if isinstance(spec, str):
        return evaluate(spec, data, variables, instance)
    return template(spec, data, variables, instance)


def seconds(duration: Any, data: Any, variables: Mapping[str, Any], instance: str) -> float:
    """Seconds of a 1.0 duration: ISO 8601 text, ``{days, ...}`` or a runtime expression."""
    if isinstance(duration, str) and is_expression(duration):
        duration = evaluate(duration, data, variables, instance)
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        return float(duration)
    if isinstance(duration, str):
        try:
            return duration_seconds(duration.strip())
        except ValueError:
            raise standard_error("validation", instance, f"not a duration: {duration!r}") from None
    if isinstance(duration, Mapping):
        return sum(_UNITS.get(k, 0.0) * float(v) for k, v in duration.items())
    raise standard_error("validation", instance, f"not a duration: {duration!r}")


def uri_template(uri: str, data: Any, fallback: Any = None) -> str:
    """Fill ``{name}`` placeholders from the top-level properties of ``data``.

    A name ``data`` lacks is taken from ``fallback`` (the workflow's input),
    so a task whose input is not an object (a listen's list of events) can
    still build its URI from the workflow's arguments.
    """

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        for source in (data, fallback):
            if isinstance(source, Mapping) and source.get(name) is not None:
                return str(source[name])
        return match.group(0)

    return _URI_VARIABLE.sub(fill, uri)


def raise_error(error: Any, instance: str) -> Raised:
    """The :class:`Raised` for an evaluated error object, its ``instance`` defaulted."""
    body = dict(error) if isinstance(error, Mapping) else {"type": str(error), "status": 500}
    body.setdefault("instance", instance)
    return Raised(body)


@functools.lru_cache(maxsize=256)
def _validator(text: str) -> Any:
    import jsonschema  # type: ignore[import-untyped]  # slow import: only when needed

    schema = json.loads(text)
    return jsonschema.validators.validator_for(schema)(schema)


def check_schema(spec: Any, value: Any, what: str, instance: str) -> None:
    """Validate ``value`` against an ``input``/``output``/``export`` schema (``format: json``).

    Only inline schemas (``document``) are checked: the interpreter reads no
    ``resource``. A mismatch is a ``validation`` error (400).
    """
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    if not isinstance(schema, Mapping) or schema.get("format", "json") != "json":
        return
    document = schema.get("document")
    if not isinstance(document, Mapping):
        return
    validator = _validator(json.dumps(thaw(document), sort_keys=True))
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path)
        at = f" at /{where}" if where else ""
        detail = f"the {what} does not match its schema{at}: {first.message}"
        raise standard_error("validation", instance, detail)
