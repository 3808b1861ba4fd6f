"""Read a DSL 1.0 definition (YAML or JSON), validate it, build the model.

Files and text are read as for 0.8 (:mod:`tideflow.workflow.loader`); the
version is told by ``document.dsl``. YAML 1.1 reads an unquoted ``on`` key
(``schedule.on``) as ``true``: keys that YAML turned into booleans are given
back their 1.0 spelling before validation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from tideflow.errors import Problem, WorkflowValidationError
from tideflow.workflow._cycles import cycle_problems
from tideflow.workflow.dsl1._build import build_workflow
from tideflow.workflow.dsl1.model import Workflow
from tideflow.workflow.dsl1.validate import validate_document

__all__ = ["load_and_validate", "load_document", "normalize"]


def normalize(value: Any) -> Any:
    """A copy of a parsed document with boolean keys spelled ``on``/``off`` again."""
    if isinstance(value, Mapping):
        return {_key(k): normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    return value


def _key(key: Any) -> Any:
    if key is True:
        return "on"
    if key is False:
        return "off"
    return key


def load_document(
    doc: Mapping[str, Any], *, source: str | None = None, processes: bool | None = False
) -> tuple[Workflow, tuple[Problem, ...]]:
    """Validate a parsed 1.0 document and build its model; return it with its warnings.

    Args:
        doc: The parsed document.
        source: Where it came from, for messages.
        processes: Whether ``run: shell|container`` may run (see
            :func:`~tideflow.workflow.dsl1.validate.validate_document`).

    Raises:
        WorkflowValidationError: The definition has problems (all of them).
    """
    if cycles := cycle_problems(doc):  # nothing can walk a document with no end
        raise WorkflowValidationError(cycles, source=source)
    doc = normalize(doc)
    problems = validate_document(doc, processes=processes)
    if any(p.severity == "error" for p in problems):
        raise WorkflowValidationError(problems, source=source)
    return build_workflow(doc), tuple(problems)


def load_and_validate(
    path_or_text: str | os.PathLike[str], *, processes: bool | None = False
) -> tuple[Workflow, tuple[Problem, ...]]:
    """Load and validate a 1.0 definition from a path or its text.

    Raises:
        WorkflowLoadError: The file cannot be read or does not parse.
        WorkflowValidationError: The definition has problems (all of them).
    """
    from tideflow.workflow.loader import parse_document, source_text

    text, source, _ = source_text(path_or_text)
    return load_document(parse_document(text, source), source=source, processes=processes)
