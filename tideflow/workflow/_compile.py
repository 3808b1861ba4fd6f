"""Expression checks: every expression of a document compiles (jq or JSONPath)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jq  # type: ignore[import-not-found]

from tideflow.errors import ExpressionError
from tideflow.workflow._schema import Context, Path
from tideflow.workflow.dialects import sonataflow_forms
from tideflow.workflow.expressions import (
    LANGUAGES,
    compile_expression,
    is_expression,
    is_interpolation,
    resolve_functions,
)
from tideflow.workflow.exprtext import segments, unwrap


def expression_functions(doc: Mapping[str, Any]) -> dict[str, str]:
    """Name -> operation of the document's ``type: expression`` functions."""
    functions = doc.get("functions")
    if not isinstance(functions, list):
        return {}
    return {
        f["name"]: f["operation"]
        for f in functions
        if isinstance(f, Mapping)
        and f.get("type") == "expression"
        and isinstance(f.get("name"), str)
        and isinstance(f.get("operation"), str)
    }


def check_expressions(
    doc: Mapping[str, Any], expressions: Sequence[tuple[Path, str, bool]], ctx: Context
) -> None:
    """Compile every expression the walk found; report syntax errors at their paths."""
    lang = doc.get("expressionLang", "jq")
    if lang not in LANGUAGES:
        return  # reported by the structure check
    functions = expression_functions(doc)
    found: list[tuple[Path, str]] = []
    for path, text, whole in expressions:
        if ctx.sonataflow and whole:
            text = _sonataflow_form(text, functions, lang)
        if whole or is_expression(text):
            found.append((path, text))
        elif is_interpolation(text):
            found.extend((path, f"${{ {part} }}") for is_expr, part in segments(text) if is_expr)
    resolved: list[tuple[Path, str, str]] = []
    for path, text in found:
        try:
            body = resolve_functions(text, functions) if "fn:" in text else text
            resolved.append((path, text, body))
        except ExpressionError as exc:
            ctx.error(path, _message(text, exc))
    if lang == "jq" and _all_compile_as_one_program(tuple(body for _, _, body in resolved)):
        return
    for path, text, body in resolved:
        try:
            compile_expression(body, lang)
        except ExpressionError as exc:
            ctx.error(path, _message(text, exc))


def _sonataflow_form(text: str, functions: Mapping[str, str], lang: str) -> str:
    """The first of SonataFlow's readings of ``text`` that compiles (else the first)."""
    forms = sonataflow_forms(text)
    for form in forms[1:]:
        try:
            compile_expression(resolve_functions(form, functions) if "fn:" in form else form, lang)
        except ExpressionError:
            continue
        try:
            compile_expression(forms[0], lang)
        except ExpressionError:
            return form
    return forms[0]


_FILTERS = {
    "stateDataFilter": ("input", "output"),
    "actionDataFilter": ("fromStateData", "results", "toStateData"),
    "eventDataFilter": ("data", "toStateData"),
}
_EXPRESSION_KEYS = ("condition", "inputCollection", "outputCollection")


def sonataflow_expressions(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` (valid under the dialect) with its conditions, filters and collections
    in the form SonataFlow reads them (:func:`~tideflow.workflow.dialects.sonataflow_forms`)."""
    functions = expression_functions(doc)
    lang = doc.get("expressionLang", "jq")

    def walk(value: Any) -> Any:
        if isinstance(value, list):
            return [walk(item) for item in value]
        if not isinstance(value, Mapping):
            return value
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in _FILTERS and isinstance(item, Mapping):
                out[key] = {
                    k: _sonataflow_form(v, functions, lang)
                    if k in _FILTERS[key] and isinstance(v, str)
                    else v
                    for k, v in item.items()
                }
            elif key in _EXPRESSION_KEYS and isinstance(item, str):
                out[key] = _sonataflow_form(item, functions, lang)
            else:
                out[key] = walk(item)
        return out

    return {**doc, "states": walk(doc.get("states"))}


_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_JQ_OWN = frozenset({"__loc__", "ENV"})


@functools.lru_cache(maxsize=256)
def _all_compile_as_one_program(bodies: tuple[str, ...]) -> bool:
    """Check many jq expressions with one compile (jq spends milliseconds per compile).

    Each body becomes a function of one program; every ``$name`` is bound, as
    :func:`compile_expression` binds them. On any error the caller compiles the
    expressions one by one to report each at its path.
    """
    if not bodies:
        return True
    names = sorted({n for body in bodies for n in _VARIABLE.findall(body)} - _JQ_OWN)
    binds = "".join(f"null as ${n} | " for n in names)
    defs = "".join(f"def __tideflow_{i}: ({unwrap(b)}\n); " for i, b in enumerate(bodies))
    try:
        jq.compile(f"{binds}{defs}.")
    except ValueError:
        return False
    return True


def _message(text: str, exc: ExpressionError) -> str:
    first = exc.message.splitlines()[0].replace("jq: error: ", "").strip().rstrip(":")
    if first.startswith("invalid"):
        return first
    return f"invalid expression '{text.strip()}': {first}"
