"""Per-run context of the interpreter: effects, variables, expressions, timeline.

Internal. One :class:`Run` exists per interpreter run; it is mutable (the
timeline grows, the compensation stack changes) but only the interpreter's
own coroutines touch it.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from tideflow.errors import ExpressionError
from tideflow.runtime._input import InputChecker, OutputChecker
from tideflow.runtime._turns import CountedPace
from tideflow.runtime.effects import Effects, EventEmit, EventSpec, Pace
from tideflow.runtime.result import Fault, Step, WorkflowError, fault_from_exception
from tideflow.runtime.retry import RetryPolicy, policy_from_definition
from tideflow.runtime.state import InstanceState
from tideflow.workflow.dialects import sonataflow_forms
from tideflow.workflow.expressions import Expression, compile_expression, evaluate_value
from tideflow.workflow.exprtext import is_expression, resolve_functions
from tideflow.workflow.model import ProducedEvent, Workflow, thaw

StepCallback = Callable[[Step], None]
StateCallback = Callable[[InstanceState], None]


def fast_thaw(value: Any) -> Any:
    """:func:`~tideflow.workflow.model.thaw` without ABC checks (hot path)."""
    kind = type(value)
    if kind is MappingProxyType or kind is dict:
        return {k: fast_thaw(v) for k, v in value.items()}
    if kind is tuple or kind is list:
        return [fast_thaw(v) for v in value]
    if kind in _SCALARS:
        return value
    return thaw(value)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def normalize_code(code: Any) -> str:
    """``"HTTP:404"``, ``" 404 "`` and ``404`` all become ``"404"`` (case-insensitive)."""
    text = str(code).strip()
    if text.upper().startswith("HTTP:"):
        text = text[5:].strip()
    return text.upper()


class Compiled:
    """What the interpreter derives once per workflow definition.

    Attributes:
        workflow: The model.
        lang: Its expression language.
        fn_ops: Expression-function name -> operation (for ``fn:name``).
        retry_policies: Retry definition name -> :class:`RetryPolicy`.
        retry_problems: Retry definition name -> why it cannot be used.
        error_by_code: Normalized error code -> error definition name.
        sonataflow: The SonataFlow dialect's leniencies are on.
        constants: ``$CONST`` as plain JSON.
        input: The workflow input checker.
    """

    def __init__(self, workflow: Workflow, dialect: str | None = None) -> None:
        self.workflow = workflow
        self.sonataflow = dialect == "sonataflow"
        self.lang = workflow.expression_lang or "jq"
        self.fn_ops = {f.name: f.operation for f in workflow.functions if f.type == "expression"}
        self.retry_policies: dict[str, RetryPolicy] = {}
        self.retry_problems: dict[str, str] = {}
        for definition in workflow.retries:
            try:
                self.retry_policies[definition.name] = policy_from_definition(definition)
            except ValueError as exc:  # reported when an action uses it, not at load
                self.retry_problems[definition.name] = f"retries[{definition.name!r}]: {exc}"
        self.error_by_code: dict[str, str] = {}
        for err in workflow.errors:
            if err.code is not None:
                self.error_by_code.setdefault(normalize_code(err.code), err.name)
        self._exprs: dict[str, Expression] = {}
        self._lenient: dict[str, Expression | None] = {}
        self.constants = fast_thaw(workflow.constants)
        self.input = InputChecker(workflow)
        self.output = OutputChecker(workflow)

    @classmethod
    def for_workflow(cls, workflow: Workflow, dialect: str | None = None) -> Compiled:
        """The (cached) :class:`Compiled` of a workflow: hosts make one
        ``Interpreter`` per run, the derived data is built once per definition."""
        key = (id(workflow), dialect)
        found = _CACHE.get(key)
        if found is not None and found.workflow is workflow:
            return found
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        found = _CACHE[key] = cls(workflow, dialect)
        return found

    def expr(self, text: str) -> Expression:
        """Compile (once) an expression, resolving ``fn:name`` references."""
        found = self._exprs.get(text)
        if found is None:
            forms = sonataflow_forms(text) if self.sonataflow else (text,)
            for index, form in enumerate(forms):
                source = resolve_functions(form, self.fn_ops) if "fn:" in form else form
                try:
                    found = compile_expression(source, self.lang)
                    break
                except ExpressionError:
                    if index == len(forms) - 1:
                        raise
            assert found is not None
            self._exprs[text] = found
        return found

    def lenient_expr(self, text: str) -> Expression | None:
        """SonataFlow's reading of a plain string: the expression it compiles to, if any.

        As ``JqExpression`` does: ``${ }`` (or ``{{ }}``) around it is optional,
        ``fn:name`` names an expression function, and text that does not compile
        but does as a string (``Hello \\(.name)``) is a string interpolation.
        """
        if text in self._lenient:
            return self._lenient[text]
        found: Expression | None = None
        body = _trim_delimiters(text)
        if body:
            try:
                found = self.expr(body)  # with sonataflow_forms' interpolation
            except ExpressionError:
                found = None
        if len(self._lenient) < _LENIENT_SIZE:
            self._lenient[text] = found
        return found

    def error_matches(self, ref: str, error: WorkflowError) -> bool:
        """Whether ``onErrors`` reference ``ref`` catches ``error``.

        A workflow error definition matches when its ``code`` equals the
        error's code (``"404"`` and ``"HTTP:404"`` are the same), or when its
        name equals the error's name. A reference to no definition matches by
        name or code directly.
        """
        try:
            definition = self.workflow.error(ref)
        except KeyError:
            code_hit = error.code is not None and normalize_code(ref) == normalize_code(error.code)
            return ref == error.name or code_hit
        if definition.name == error.name:
            return True
        return (
            definition.code is not None
            and error.code is not None
            and normalize_code(definition.code) == normalize_code(error.code)
        )

    def name_error(self, error: WorkflowError) -> WorkflowError:
        """Give an error the name of the workflow error definition its code matches."""
        if error.code is None:
            return error
        name = self.error_by_code.get(normalize_code(error.code))
        if name is None or name == error.name:
            return error
        return WorkflowError(name=name, code=error.code, message=error.message, state=error.state)


def _lenient(value: Any, run: Run, data: Any) -> Any:
    """SonataFlow's reading of argument strings (``ExpressionHandlerUtils.transform``):
    every string that compiles as an expression is one; one that fails stays a literal."""
    if isinstance(value, dict):
        return {k: _lenient(v, run, data) for k, v in value.items()}
    if isinstance(value, list):
        return [_lenient(v, run, data) for v in value]
    if isinstance(value, str):
        expression = run.compiled.lenient_expr(value)
        if expression is None:
            return value
        try:
            return expression.evaluate(data, run.variables)
        except ExpressionError:
            return value
    return value


def _trim_delimiters(text: str) -> str:
    """``ExpressionHandlerUtils.trimExpr``: drop ``${ }`` or the legacy ``{{ }}``."""
    text = text.strip()
    for start, end in (("${", "}"), ("{{", "}}")):
        if text.startswith(start):
            text = text[len(start) :]
            text = text[: -len(end)] if text.endswith(end) else text
            break
    return text.strip()


_LENIENT_SIZE = 4096
_CACHE: dict[tuple[int, str | None], Compiled] = {}
_CACHE_SIZE = 256


class Run:
    """Everything one run of one instance needs."""

    __slots__ = (
        "compensable",
        "compiled",
        "data",
        "effects",
        "on_state",
        "on_step",
        "pace",
        "seed",
        "timeline",
        "variables",
        "visits",
        "workflow",
    )

    def __init__(
        self,
        compiled: Compiled,
        effects: Effects,
        variables: dict[str, Any],
        seed: str,
        on_step: StepCallback | None,
        on_state: StateCallback | None = None,
        pace: Pace | None = None,
    ) -> None:
        self.compiled = compiled
        self.workflow = compiled.workflow
        self.effects = effects
        self.variables = variables
        self.seed = seed
        self.on_step = on_step
        self.on_state = on_state
        self.pace: Pace = pace or CountedPace()
        self.timeline: list[Step] = []
        self.visits: dict[str, int] = {}
        self.compensable: list[str] = []
        self.data: Any = None

    def with_variables(self, extra: Mapping[str, Any]) -> Run:
        """This run with more jq variables (a foreach iteration's); the timeline,
        visits and compensations stay shared."""
        child = copy.copy(self)
        child.variables = {**self.variables, **extra}
        return child

    # --- timeline -------------------------------------------------------

    def step(self, kind: str, key: str, state: str | None, **detail: Any) -> None:
        """Append a timeline step (and tell the host)."""
        entry = Step(kind, key, state, detail)
        self.timeline.append(entry)
        if self.on_step is not None:
            self.on_step(entry)

    def enter(self, name: str) -> str:
        """Count a visit of state ``name`` and return its step key."""
        visit = self.visits.get(name, 0) + 1
        self.visits[name] = visit
        return name if visit == 1 else f"{name}#{visit}"

    # --- expressions ----------------------------------------------------

    def evaluate(self, text: str, data: Any) -> Any:
        """Evaluate an expression against ``data`` with the run's variables."""
        return self.compiled.expr(text).evaluate(data, self.variables)

    def condition(self, text: str, data: Any) -> bool:
        """Evaluate a condition (only ``false``/``null``/nothing are false)."""
        return self.compiled.expr(text).evaluate_bool(data, self.variables)

    def value(self, value: Any, data: Any) -> Any:
        """Evaluate every ``${ }`` inside a (frozen) literal; return plain JSON."""
        return evaluate_value(
            fast_thaw(value), data, self.variables, self.compiled.lang, self.compiled.fn_ops
        )

    def arguments(self, value: Any, data: Any) -> Any:
        """Function arguments: :meth:`value`, plus the SonataFlow dialect's leniency.

        With ``dialect="sonataflow"`` every plain string argument that compiles
        as an expression of the workflow's language (``".name"``, ``"$item"``,
        ``"length"``, ``"42"``) is evaluated, as SonataFlow does; one that does
        not compile, or fails, stays a literal. Arguments given as one
        expression (a string) are evaluated: an object is the arguments, any
        other value is passed as ``{"body": value}`` (SonataFlow's
        ``ContentData``, the request body of an HTTP call).

        Raises:
            ExpressionError: The one expression of string arguments failed.
        """
        if isinstance(value, str):
            out = self.evaluate(value, data)
            return out if isinstance(out, dict) else {"body": out}
        out = self.value(value, data)
        if not self.compiled.sonataflow:
            return out
        return _lenient(out, self, data)

    def payload(self, value: Any, data: Any) -> Any:
        """Event payloads: an expression (``${ }`` or bare) or a literal object."""
        if value is None:
            return None
        if isinstance(value, str):
            if is_expression(value):
                return self.evaluate(value, data)
            return self.evaluate(value, data) if value.startswith(".") else value
        return self.value(value, data)

    # --- errors ---------------------------------------------------------

    def fault(self, exc: BaseException, state: str | None) -> Fault:
        """Turn an exception into a named :class:`Fault`."""
        fault = fault_from_exception(exc, state)
        named = self.compiled.name_error(fault.error)
        if named is not fault.error:
            return Fault(named, retryable=fault.retryable)
        return fault

    def expression_fault(self, message: str, state: str | None) -> Fault:
        """A :class:`Fault` for a failed expression rule (e.g. a missing collection)."""
        return self.fault(ExpressionError(message), state)

    # --- events ---------------------------------------------------------

    def event_spec(self, name: str, data: Any) -> EventSpec:
        """The :class:`EventSpec` of consumed event definition ``name``."""
        definition = self.workflow.event(name)
        correlation = tuple(
            (
                c.context_attribute_name,
                None
                if c.context_attribute_value is None
                else str(self.payload(c.context_attribute_value, data)),
            )
            for c in definition.correlation
        )
        return EventSpec(
            name=definition.name,
            type=definition.type,
            # SonataFlow matches consumed events by type alone (it never reads source)
            source=None if self.compiled.sonataflow else definition.source,
            correlation=correlation,
            data_only=definition.data_only,
            definition=definition,
        )

    def event_payload(self, spec: EventSpec, event: Mapping[str, Any]) -> Any:
        """What filters see of a consumed event: its data, or all of it when not dataOnly."""
        if spec.data_only:
            return event.get("data")
        return dict(event)

    def cloud_event(
        self, name: str, data: Any, attributes: Mapping[str, Any], key: str
    ) -> dict[str, Any]:
        """Build the CloudEvent for produced event definition ``name``.

        The id is a UUID derived from the run seed and the step key, so a
        replay produces the same id (hosts may use it to drop duplicates).
        """
        definition = self.workflow.event(name)
        event: dict[str, Any] = {
            "specversion": "1.0",
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"tideflow:{self.seed}:{key}")),
            "type": definition.type,
        }
        if definition.source is not None:
            event["source"] = definition.source
        for corr in definition.correlation:
            if corr.context_attribute_value is not None:
                event[corr.context_attribute_name] = corr.context_attribute_value
        for attr, value in attributes.items():
            event[str(attr).lower()] = value
        if data is not None:
            event["datacontenttype"] = "application/json"
            event["data"] = data
        return event

    async def produce(
        self, events: tuple[ProducedEvent, ...], data: Any, key: str, state: str | None
    ) -> None:
        """Produce ``events`` (transition or end) with payloads evaluated against ``data``."""
        for index, produced in enumerate(events):
            event_key = f"{key}/event:{index}"
            try:
                payload = self.payload(produced.data, data)
                attrs = {k: self.payload(v, data) for k, v in produced.context_attributes.items()}
            except ExpressionError as exc:
                raise self.fault(exc, state) from None
            event = self.cloud_event(produced.event_ref, payload, attrs, event_key)
            await self.effects.emit(EventEmit(key=event_key, event=event))
            self.step("event.produced", event_key, state, event=produced.event_ref)
