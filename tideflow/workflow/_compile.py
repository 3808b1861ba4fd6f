"""Expression checks: every expression of a document compiles (jq or JSONPath)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tideflow.errors import ExpressionError
from tideflow.workflow._schema import Context, Path
from tideflow.workflow.expressions import (
    LANGUAGES,
    compile_expression,
    is_expression,
    is_interpolation,
    resolve_functions,
)
from tideflow.workflow.exprtext import segments


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
    for path, text, whole in expressions:
        if whole or is_expression(text):
            _compile(text, lang, functions, path, ctx)
        elif is_interpolation(text):
            for is_expr, part in segments(text):
                if is_expr:
                    _compile(f"${{ {part} }}", lang, functions, path, ctx)


def _compile(text: str, lang: str, functions: Mapping[str, str], path: Path, ctx: Context) -> None:
    try:
        source = resolve_functions(text, functions) if "fn:" in text else text
        compile_expression(source, lang)
    except ExpressionError as exc:
        ctx.error(path, f"invalid expression '{text.strip()}': {exc.message}")
