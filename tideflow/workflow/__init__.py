"""The Serverless Workflow 0.8 language: load, validate, the immutable model."""

from __future__ import annotations

from tideflow.workflow.loader import (
    load_and_validate,
    load_file,
    load_workflow,
    parse_document,
)
from tideflow.workflow.model import Workflow
from tideflow.workflow.validate import validate_document

__all__ = [
    "Workflow",
    "load_and_validate",
    "load_file",
    "load_workflow",
    "parse_document",
    "validate_document",
]
