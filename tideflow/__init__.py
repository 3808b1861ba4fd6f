"""Tideflow: a Serverless Workflow-first orchestration engine on PostgreSQL."""

from __future__ import annotations

from tideflow.errors import (
    ExpressionError,
    FunctionCallError,
    TideflowError,
    WorkflowLoadError,
    WorkflowValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "ExpressionError",
    "FunctionCallError",
    "TideflowError",
    "WorkflowLoadError",
    "WorkflowValidationError",
    "__version__",
]
