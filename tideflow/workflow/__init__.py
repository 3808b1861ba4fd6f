"""The Serverless Workflow 0.8 language: load, validate, the immutable model."""

from __future__ import annotations

from tideflow.workflow._serialize import to_document
from tideflow.workflow.data_filters import (
    apply_state_filter,
    filter_action_input,
    merge,
    merge_action_result,
    merge_event_data,
    put_at,
)
from tideflow.workflow.expressions import (
    Expression,
    compile_expression,
    evaluate_value,
    is_expression,
    unwrap,
)
from tideflow.workflow.loader import (
    load_and_validate,
    load_file,
    load_workflow,
    parse_document,
)
from tideflow.workflow.model import Workflow
from tideflow.workflow.secrets import load_secrets
from tideflow.workflow.validate import validate_document

__all__ = [
    "Expression",
    "Workflow",
    "apply_state_filter",
    "compile_expression",
    "evaluate_value",
    "filter_action_input",
    "is_expression",
    "load_and_validate",
    "load_file",
    "load_secrets",
    "load_workflow",
    "merge",
    "merge_action_result",
    "merge_event_data",
    "parse_document",
    "put_at",
    "to_document",
    "unwrap",
    "validate_document",
]
