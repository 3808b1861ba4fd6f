"""Workflow expressions: compile once, evaluate fast.

jq (the ``jq`` package) is the default language; JSONPath (``jsonpath-ng``'s
extended parser) is used when a workflow sets ``expressionLang: jsonpath``.
See ``docs/expressions.md`` for the rules chosen where 0.8 is silent.

Variables (``$CONST``, ``$SECRETS``, ``$WORKFLOW`` and any others) are passed
per evaluation. A jq program is compiled once per expression text: only the
variables the text mentions are bound, by a prelude that reads them from the
input, so evaluating with new variables never recompiles.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jq  # type: ignore[import-not-found]

from tideflow.errors import ExpressionError, PathPart
from tideflow.workflow import _bounds, _fastpath, _jsonpath, _projection
from tideflow.workflow._fastpath import MISMATCH
from tideflow.workflow.exprtext import (
    function_reference,
    is_expression,
    is_interpolation,
    resolve_functions,
    segments,
    unwrap,
)

__all__ = [
    "LANGUAGES",
    "Evaluator",
    "Expression",
    "compile_expression",
    "evaluate_value",
    "function_reference",
    "install_evaluator",
    "is_expression",
    "is_interpolation",
    "resolve_functions",
    "unwrap",
]

LANGUAGES = ("jq", "jsonpath")
"""The values of ``expressionLang`` Tideflow understands."""

Variables = Mapping[str, Any]
_Runner = Callable[[Any, Variables | None], list[Any]]

Evaluator = Callable[["Expression", str, Any, "Variables | None"], Any]
"""Evaluates ``expression.<method>(data, variables)`` for an expression that can run
away (``bounded`` false), e.g. in a worker process under a budget."""

_evaluator: Evaluator | None = None


def install_evaluator(evaluator: Evaluator | None) -> None:
    """Evaluate unbounded expressions through ``evaluator`` (``None``: in-process).

    :mod:`tideflow.expression_budget` installs its worker pool when imported.
    """
    global _evaluator
    _evaluator = evaluator


_COMPILE_ERRORS = re.compile(r"\njq: \d+ compile errors?$")
_MODULE_DIRECTIVE = re.compile(r"\s*(?:import|include|module)\b")
_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
# jq's own names: never bound from the caller's variables.
_JQ_BUILTIN_VARIABLES = frozenset({"__loc__", "__prog_args", "ENV", "__d"})
# The environment of the engine's process is not the workflow's business: a
# definition must not read TIDEFLOW_DATABASE_URL through `env` or `$ENV`.
_JQ_PRELUDE = "def env: {}; def input_filename: null; "


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled workflow expression.

    Attributes:
        source: The text as written in the definition (``${ }`` and all).
        lang: ``"jq"`` or ``"jsonpath"``.
        body: The expression without its ``${ }`` wrapper.
        variables: The ``$NAME`` variables the expression mentions, sorted.
        bounded: The expression cannot run away (see
            :mod:`tideflow.workflow._bounds`): it is evaluated in-process;
            otherwise through the installed evaluator, under a budget.
        reads: The only top-level fields of an object input a jq expression
            reads, when that is certain (:mod:`tideflow.workflow._projection`):
            jq is handed only those; ``None``: the whole input.
    """

    source: str
    lang: str
    body: str
    variables: tuple[str, ...]
    _run: _Runner = field(repr=False, compare=False)
    bounded: bool = True
    _program: Any = field(default=None, repr=False, compare=False)
    _fast: tuple[str | None, tuple[PathPart, ...]] | None = field(
        default=None, repr=False, compare=False
    )
    reads: tuple[str, ...] | None = field(default=None, repr=False, compare=False)

    def __reduce__(self) -> tuple[Any, ...]:
        # Compiled programs cannot be copied or pickled; the text can be recompiled.
        return (compile_expression, (self.source, self.lang))

    def evaluate_all(self, data: Any, variables: Variables | None = None) -> list[Any]:
        """Evaluate and return every output (jq) or every match (JSONPath).

        Raises:
            ExpressionError: The expression failed on this data.
            ExpressionLimitExceeded: It ran out of its time or memory budget.
        """
        if self._fast is not None:
            found = self._walk(data, variables)
            if found is not MISMATCH:
                return [found]
        if not self.bounded and _evaluator is not None:
            return list(_evaluator(self, "evaluate_all", data, variables))
        return self._run(data, variables)

    def _walk(self, data: Any, variables: Variables | None) -> Any:
        root, steps = self._fast  # type: ignore[misc]
        if root is not None:
            data = variables.get(root) if variables is not None else None
        found = _fastpath.walk(data, steps)
        return found if found is MISMATCH else _fastpath.copy_json(found)

    def evaluate(self, data: Any, variables: Variables | None = None) -> Any:
        """Evaluate against ``data`` and return one value.

        jq: the first output; ``None`` when there is none (``empty``).
        JSONPath: ``None`` for no match, the value for one match, a list of
        the values for several.

        Args:
            data: The JSON value the expression sees as ``.`` (or ``$``).
            variables: Values visible as ``$NAME`` (``CONST``, ``SECRETS``,
                ``WORKFLOW``, ...); a mentioned but absent variable is null.

        Raises:
            ExpressionError: The expression failed on this data.
            ExpressionLimitExceeded: It ran out of its time or memory budget.
        """
        if self._fast is not None:  # a plain path: walked in Python, no JSON round trip
            found = self._walk(data, variables)
            if found is not MISMATCH:
                return found
        if not self.bounded and _evaluator is not None:
            return _evaluator(self, "evaluate", data, variables)
        program = self._program
        if program is not None:  # jq: the first output only, without building a list
            data = _project(self.reads, data)
            try:
                if self.variables:
                    data = _jq_input(self.variables, data, variables)
                return program.input_value(data).first()
            except StopIteration:
                return None
            except (ValueError, TypeError) as exc:
                raise _eval_error(self.source, exc) from None
        found = self._run(data, variables)
        if not found:
            return None
        return found[0] if len(found) == 1 else found

    def evaluate_bool(self, data: Any, variables: Variables | None = None) -> bool:
        """Evaluate as a condition: only ``false`` and ``null`` (or no output) are false."""
        result = self.evaluate(data, variables)
        return result is not None and result is not False

    def path(self, data: Any, variables: Variables | None = None) -> tuple[PathPart, ...]:
        """Turn the expression into the location it names, e.g. ``.a.b[0]`` -> ``("a", "b", 0)``.

        Used for ``toStateData``; the location need not exist yet.

        Raises:
            ExpressionError: The expression does not name a location.
        """
        if self.lang == "jsonpath":
            return _jsonpath.to_path(self.body, self.source)
        fast = self._fast
        if fast is not None and fast[0] is None and _fastpath.walk(data, fast[1]) is not MISMATCH:
            return fast[1]
        if not self.bounded and _evaluator is not None:
            return tuple(_evaluator(self, "path", data, variables))
        program = _compile_jq_path(self.body, self.variables, self.source)
        try:
            found = _run_jq(program, self.source, self.variables, data, variables)
        except ExpressionError as exc:
            raise ExpressionError(
                f"{exc.message} (a location such as .a.b[0] is expected)", expression=self.source
            ) from None
        if not found or not found[0]:
            raise ExpressionError(f"{self.source!r} names no location", expression=self.source)
        return tuple(found[0][0])


def _variable_names(body: str) -> tuple[str, ...]:
    return tuple(sorted(set(_VARIABLE.findall(body)) - _JQ_BUILTIN_VARIABLES))


def _jq_source(body: str, names: tuple[str, ...]) -> str:
    env = "{} as $ENV | " if "$ENV" in body else ""
    if not names:
        return f"{_JQ_PRELUDE}{env}({body}\n)"
    binds = ", ".join(f"${name}" for name in names)
    return f"{_JQ_PRELUDE}{env}. as [$__d, {binds}] | $__d | ({body}\n)"


def _compile_jq(text: str, source: str, body: str) -> Any:
    try:
        return jq.compile(text)
    except ValueError as exc:
        error = exc
    if _MODULE_DIRECTIVE.match(body):  # never let jq look for module files on the server
        raise ExpressionError(
            f"invalid jq expression {source!r}: jq modules (import/include) are not available",
            expression=source,
        )
    try:  # jq's message about the bare body points at the user's column, not the prelude's
        jq.compile(body)
    except ValueError as exc:
        error = exc
    detail = _COMPILE_ERRORS.sub("", str(error)).strip()
    raise ExpressionError(f"invalid jq expression {source!r}: {detail}", expression=source)


@functools.lru_cache(maxsize=4096)
def _compile_jq_path(body: str, names: tuple[str, ...], source: str) -> Any:
    return _compile_jq(_jq_source(f"[path({body})]", names), source, body)


def _project(reads: tuple[str, ...] | None, data: Any) -> Any:
    """``data`` with only the fields ``reads`` (an object larger than them), else as it is."""
    if reads is None or type(data) is not dict or len(data) <= len(reads):
        return data
    return {name: data[name] for name in reads if name in data}


def _jq_input(names: tuple[str, ...], data: Any, variables: Variables | None) -> Any:
    if not names:
        return data
    if variables is None:
        return [data]
    return [data, *[variables.get(name) for name in names]]


def _eval_error(source: str, exc: Exception) -> ExpressionError:
    return ExpressionError(f"cannot evaluate {source!r}: {exc}", expression=source)


def _run_jq(
    program: Any, source: str, names: tuple[str, ...], data: Any, variables: Variables | None
) -> list[Any]:
    try:
        return list(program.input_value(_jq_input(names, data, variables)))
    except (ValueError, TypeError) as exc:
        raise _eval_error(source, exc) from None


class _JqRunner:
    """Callable that evaluates a compiled jq program; keeps the program for the fast path."""

    __slots__ = ("names", "program", "reads", "source")

    def __init__(
        self, program: Any, names: tuple[str, ...], source: str, reads: tuple[str, ...] | None
    ) -> None:
        self.program = program
        self.names = names
        self.source = source
        self.reads = reads

    def __call__(self, data: Any, variables: Variables | None) -> list[Any]:
        data = _project(self.reads, data)
        return _run_jq(self.program, self.source, self.names, data, variables)


@functools.lru_cache(maxsize=4096)
def compile_expression(text: str, lang: str = "jq") -> Expression:
    """Compile a workflow expression (cached by text and language).

    Args:
        text: ``${ expression }`` or the bare expression. ``fn:name``
            references must be resolved first (:func:`resolve_functions`).
        lang: ``"jq"`` (default) or ``"jsonpath"``.

    Returns:
        The compiled :class:`Expression`.

    Raises:
        ExpressionError: Unknown language, or a syntax error (the message
            carries jq's or jsonpath-ng's own text).
    """
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be a string, not {type(text).__name__}")
    body = unwrap(text)
    if not body:
        raise ExpressionError("empty expression", expression=text)
    if lang not in LANGUAGES:
        raise ExpressionError(
            f"unknown expression language {lang!r} (expected one of: {', '.join(LANGUAGES)})",
            expression=text,
        )
    name = function_reference(body)
    if name is not None:
        raise ExpressionError(
            f"fn:{name} must be resolved against the workflow's expression functions first",
            expression=text,
        )
    if lang == "jsonpath":
        parsed = _jsonpath.compile_jsonpath(body, text)
        return Expression(text, lang, body, parsed.variables, parsed)
    names = _variable_names(body)
    program = _compile_jq(_jq_source(body, names), text, body)
    fast = _fastpath.parse(body)
    if fast is not None and fast[0] in _JQ_BUILTIN_VARIABLES:
        fast = None
    reads = _projection.read_fields(body)
    runner = _JqRunner(program, names, text, reads)
    bounded = fast is not None or _bounds.is_bounded(body)
    return Expression(text, lang, body, names, runner, bounded, program, fast, reads)


_LITERAL, _EXPRESSION, _INTERPOLATION = range(3)


@functools.lru_cache(maxsize=8192)
def _string_kind(text: str) -> int:
    if is_expression(text):
        return _EXPRESSION
    return _INTERPOLATION if is_interpolation(text) else _LITERAL


def _stringify(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _interpolate(
    text: str,
    data: Any,
    variables: Variables | None,
    lang: str,
    functions: Mapping[str, str] | None,
) -> str:
    parts: list[str] = []
    for is_expr, part in segments(text):
        if is_expr:
            if functions and "fn:" in part:
                part = resolve_functions(part, functions)
            value = compile_expression(part, lang).evaluate(data, variables)
            parts.append("" if value is None else _stringify(value))
        else:
            parts.append(part)
    return "".join(parts)


def evaluate_value(
    value: Any,
    data: Any,
    variables: Variables | None = None,
    lang: str = "jq",
    functions: Mapping[str, str] | None = None,
) -> Any:
    """Evaluate every ``${ }`` string inside a JSON-like value.

    Used for function arguments, produced-event data and similar payloads:
    dicts and lists are walked recursively; a string that is one expression
    is replaced by its value (any JSON type); a string mixing text and
    expressions gets each result spliced in (strings as-is, other values as
    compact JSON, null as nothing); every other value passes through.

    Args:
        value: The literal from the definition.
        data: What the expressions see as ``.``.
        variables: ``$CONST``, ``$SECRETS``, ``$WORKFLOW``, ...
        lang: The workflow's expression language.
        functions: Expression functions, for ``fn:name`` references.

    Raises:
        ExpressionError: An expression failed to compile or evaluate.
    """
    if isinstance(value, str):
        if "${" not in value:
            return value
        kind = _string_kind(value)
        if kind == _EXPRESSION:
            if functions and "fn:" in value:
                value = resolve_functions(value, functions)
            return compile_expression(value, lang).evaluate(data, variables)
        if kind == _INTERPOLATION:
            return _interpolate(value, data, variables, lang, functions)
        return value
    if isinstance(value, Mapping):
        return {k: evaluate_value(v, data, variables, lang, functions) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [evaluate_value(v, data, variables, lang, functions) for v in value]
    return value
