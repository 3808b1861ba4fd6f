"""Conversion to and from ``serverlessworkflow-sdk`` ``Workflow`` objects (the ``sdk`` extra).

The SDK (1.0.0, Python 3.11 only: it pins PyYAML 6.0 and jsonschema 4.4.0) is
optional; Tideflow's own model is the core. Install it with
``pip install 'tideflow[sdk]'``. The SDK cannot represent event definitions
with a ``correlation`` list (it crashes on them); :func:`to_sdk` says so.
"""

from __future__ import annotations

import json
from typing import Any

from tideflow.errors import ConfigurationError, TideflowError, WorkflowValidationError
from tideflow.workflow import model
from tideflow.workflow._build_workflow import workflow as build_workflow
from tideflow.workflow._serialize import to_document
from tideflow.workflow.validate import validate_document

_INSTALL = "the SDK interop needs serverlessworkflow-sdk: pip install 'tideflow[sdk]' (Python 3.11)"


def _sdk_workflow_class() -> Any:
    try:
        from serverlessworkflow.sdk.workflow import (  # type: ignore[import-not-found]
            Workflow as SdkWorkflow,
        )
    except ImportError as exc:
        raise ConfigurationError(_INSTALL) from exc
    return SdkWorkflow


def to_sdk(workflow: model.Workflow) -> Any:
    """Return the workflow as a ``serverlessworkflow.sdk.workflow.Workflow``.

    Raises:
        ConfigurationError: The SDK is not installed.
        TideflowError: The SDK cannot represent this workflow (e.g. correlation lists).
    """
    sdk_class = _sdk_workflow_class()
    if any(event.correlation for event in workflow.events):
        raise TideflowError(
            "serverlessworkflow-sdk 1.0.0 cannot represent event definitions with a "
            "correlation list"
        )
    try:
        return sdk_class(**to_document(workflow))
    except Exception as exc:  # the SDK raises bare Exception and TypeError
        raise TideflowError(f"serverlessworkflow-sdk rejected the workflow: {exc}") from exc


def from_sdk(sdk_workflow: Any) -> model.Workflow:
    """Build a Tideflow workflow from a ``serverlessworkflow.sdk.workflow.Workflow``.

    The SDK's object is serialized to JSON, validated like any document (its
    external references must already be inline) and built into the model.

    Raises:
        WorkflowValidationError: The SDK's workflow is not a valid definition.
    """
    doc = json.loads(sdk_workflow.to_json())
    problems = validate_document(doc)
    if any(p.severity == "error" for p in problems):
        raise WorkflowValidationError(problems, source="serverlessworkflow-sdk workflow")
    return build_workflow(doc)


__all__ = ["from_sdk", "to_sdk"]
