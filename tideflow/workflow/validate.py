"""Validation of a workflow document: every problem at once, each with its path.

:func:`validate_document` is a pure function of the parsed document (with its
external documents already inlined by the loader). One walk checks the
structure against Serverless Workflow 0.8 and collects the references and
expressions, which are then resolved and compiled.

Choices where 0.8 is silent or contradicts itself (see FEATURES.md of the
conformance set):

- ``PT30D`` (days after ``T``, in the spec's own ``order`` example) is read as
  ``P30D`` with a warning; ``PT2W`` (``booklending``) is an error.
- An action ``sleep`` may have both ``before`` and ``after`` (the schema's
  ``oneOf`` rejects that by accident).
- ``eventTimeout`` belongs under ``timeouts`` (the schema's rule; the prose
  example puts it on the switch state itself).
- Inject states have no ``onErrors`` (schema); ``contextAttributes`` is an
  object of strings (schema; the prose shows an array).
- ``workflowExecTimeout.interrupt`` defaults to true (schema; the prose says
  false); retry ``maxAttempts`` is at least 1 (schema).
- ``iterationParam`` must be a plain name, not an expression.
- Function types ``asyncapi`` and ``rpc`` are refused as not supported yet.
- Extra top-level properties are allowed, but a near-miss of a known one
  (``retires``) is warned about; unreachable states and reachable states
  with no way to an end are warnings, not errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tideflow.errors import PathPart, Problem, WorkflowValidationError
from tideflow.workflow._compile import check_expressions
from tideflow.workflow._cycles import cycle_problems
from tideflow.workflow._document import WORKFLOW
from tideflow.workflow._graph import check_graph
from tideflow.workflow._references import check_references, collect_names
from tideflow.workflow._schema import Context
from tideflow.workflow.loader import load_and_validate

__all__ = [
    "in_document_order",
    "is_valid",
    "load_and_validate",
    "raise_for_problems",
    "validate_document",
]


def validate_document(doc: Mapping[str, Any], dialect: str | None = None) -> list[Problem]:
    """Return every problem of a parsed workflow document, errors and warnings.

    Args:
        doc: The parsed document; string values of ``functions``, ``events``
            and the other external sections are taken as unread references and
            their names are not checked.
        dialect: ``"sonataflow"`` accepts what SonataFlow accepts
            (:mod:`tideflow.workflow.dialects`).

    Returns:
        The problems in document order; an empty list for a valid definition.
    """
    if cycles := cycle_problems(doc):  # nothing else can walk a document with no end
        return cycles
    ctx = Context(dialect=dialect)
    WORKFLOW.check(doc, (), ctx)
    if not isinstance(doc, Mapping):  # untyped callers may pass anything
        return ctx.problems  # type: ignore[unreachable]
    names = collect_names(doc, ctx)
    check_references(ctx.references, names, ctx)
    check_graph(doc, ctx.references, names, ctx)
    check_expressions(doc, ctx.expressions, ctx)
    return in_document_order(doc, ctx.problems)


def in_document_order(doc: Mapping[str, Any], problems: list[Problem]) -> list[Problem]:
    """Sort problems by where their path appears in the document (stable).

    A path naming something absent (a missing property) sorts with its parent.
    """
    if len(problems) < 2:
        return problems
    positions: dict[tuple[PathPart, ...], int] = {}
    _number(doc, (), positions)

    def key(problem: Problem) -> int:
        path = problem.path
        while path not in positions and path:
            path = path[:-1]
        return positions.get(path, 0)

    return sorted(problems, key=key)


def _number(value: Any, path: tuple[PathPart, ...], positions: dict[Any, int]) -> None:
    positions[path] = len(positions)
    if isinstance(value, Mapping):
        for name, item in value.items():
            _number(item, (*path, str(name)), positions)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _number(item, (*path, index), positions)


def raise_for_problems(problems: list[Problem], source: str | None = None) -> None:
    """Raise :class:`WorkflowValidationError` when any problem is an error.

    Raises:
        WorkflowValidationError: With every problem (warnings included).
    """
    if any(p.severity == "error" for p in problems):
        raise WorkflowValidationError(problems, source=source)


def is_valid(doc: Mapping[str, Any]) -> bool:
    """Whether the document has no errors (warnings allowed)."""
    return all(p.severity != "error" for p in validate_document(doc))
