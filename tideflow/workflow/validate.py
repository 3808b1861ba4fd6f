"""Validation of a workflow document: every problem at once, each with its path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tideflow.errors import Problem


def validate_document(doc: Mapping[str, Any]) -> list[Problem]:
    """Return every problem of a parsed workflow document (errors and warnings)."""
    problems: list[Problem] = []
    if "specVersion" not in doc:
        problems.append(
            Problem(path=("specVersion",), message="missing; assuming 0.8", severity="warning")
        )
    return problems
