"""Validation of a DSL 1.0 document: every problem at once, each with its path.

:func:`validate_document` is a pure function of the parsed document. One walk
(:mod:`tideflow.workflow.dsl1._structure`) checks the structure and the flow
directives and collects expressions and ``use`` references; then the
references are resolved, the expressions compiled (jq, as for 0.8) and the
host policy applied:

- ``run: shell`` and ``run: container`` start processes on the host: an
  error unless the caller enables them (``processes=True``), a warning when
  the caller only validates (``processes=None``, ``tideflow validate``).
- ``run: script`` runs Python and JavaScript (``js``, ``javascript``); another
  language is refused with a clear message (a warning only when the caller
  just validates).
- ``call: mcp`` over ``transport.stdio`` would start the MCP server as a
  process: valid, but never run (a warning here, refused at deploy, a
  ``configuration`` error if a run reaches it); ``transport.http`` runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tideflow.errors import Problem
from tideflow.workflow._compile import check_expressions
from tideflow.workflow._cycles import cycle_problems
from tideflow.workflow._schema import Context, quoted, suggest
from tideflow.workflow.dsl1._structure import WORKFLOW

__all__ = ["dsl_version", "is_dsl1", "validate_document"]

USE_SECTIONS = ("authentications", "errors", "functions", "retries", "timeouts", "catalogs")
SCRIPT_LANGUAGES = ("python", "js", "javascript")
_SINGULAR = {
    "authentications": "authentication",
    "errors": "error",
    "functions": "function",
    "retries": "retry policy",
    "timeouts": "timeout",
    "catalogs": "catalog",
}


def dsl_version(doc: Any) -> str | None:
    """``document.dsl`` of a parsed document, or ``None`` when it has none."""
    if not isinstance(doc, Mapping):
        return None
    document = doc.get("document")
    if not isinstance(document, Mapping):
        return None
    version = document.get("dsl")
    return str(version) if version is not None else None


def is_dsl1(doc: Any) -> bool:
    """Whether a parsed document is a DSL 1.x workflow (``document.dsl: 1.x.y``)."""
    version = dsl_version(doc)
    return version is not None and version.split(".")[0] == "1"


def validate_document(doc: Mapping[str, Any], *, processes: bool | None = None) -> list[Problem]:
    """Return every problem of a parsed DSL 1.0 document, errors and warnings.

    Args:
        doc: The parsed document.
        processes: Whether ``run: shell|container`` may run here: ``True``
            allows them, ``False`` refuses them (an error), ``None`` warns
            that they need an explicit host option.

    Returns:
        The problems in document order; an empty list for a valid definition.
    """
    from tideflow.workflow.validate import in_document_order

    if cycles := cycle_problems(doc):  # nothing can walk a document with no end
        return cycles
    ctx = Context()
    WORKFLOW.check(doc, (), ctx)
    if not isinstance(doc, Mapping):  # untyped callers may pass anything
        return ctx.problems  # type: ignore[unreachable]
    _check_references(doc, ctx, processes)
    check_expressions(doc, ctx.expressions, ctx)
    return in_document_order(doc, ctx.problems)


def _defined(doc: Mapping[str, Any], section: str) -> list[str]:
    use = doc.get("use")
    names = use.get(section) if isinstance(use, Mapping) else None
    return [str(n) for n in names] if isinstance(names, Mapping) else []


def _check_references(doc: Mapping[str, Any], ctx: Context, processes: bool | None = None) -> None:
    for ref in ctx.references:
        if ref.kind in USE_SECTIONS:
            names = _defined(doc, ref.kind)
            if ref.kind == "catalogs":
                names.append("default")
            if ref.name not in names:
                what = _SINGULAR[ref.kind]
                hint = suggest(ref.name, names)
                ctx.error(ref.path, f"{what} '{ref.name}' is not defined in use.{ref.kind}{hint}")
        elif ref.kind == "process":
            _process(ref.name, ref.path, ctx, processes)
        elif ref.kind == "script" and ref.name not in SCRIPT_LANGUAGES:
            message = (
                f"script language '{ref.name}' is not supported: Tideflow runs "
                f"{quoted(SCRIPT_LANGUAGES)} scripts only"
            )
            (ctx.warn if processes is None else ctx.error)(ref.path, message)
        elif ref.kind == "unsupported-call":
            ctx.warn(ref.path, f"{ref.name}: a run fails at this task")


def _process(kind: str, path: Any, ctx: Context, processes: bool | None) -> None:
    message = f"run.{kind} starts processes on the host and is disabled unless the host enables it"
    if processes is None:
        ctx.warn(path, message)
    elif not processes:
        ctx.error(path, message)
