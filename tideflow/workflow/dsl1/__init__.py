"""The Serverless Workflow DSL 1.0 language: validate, load, the immutable model.

A second front end beside 0.8 (:mod:`tideflow.workflow`): the same problem
reporting (:class:`~tideflow.errors.Problem` with paths,
:class:`~tideflow.errors.WorkflowValidationError`) and the same expressions.
A document is 1.0 when its ``document.dsl`` is ``1.x.y``.
"""

from __future__ import annotations

from tideflow.workflow.dsl1.loader import load_and_validate, load_document, normalize
from tideflow.workflow.dsl1.model import Task, TaskList, Workflow
from tideflow.workflow.dsl1.validate import dsl_version, is_dsl1, validate_document
from tideflow.workflow.dsl1.walk import not_run_calls, python_calls, script_runs, tasks

__all__ = [
    "Task",
    "TaskList",
    "Workflow",
    "dsl_version",
    "is_dsl1",
    "load_and_validate",
    "load_document",
    "normalize",
    "not_run_calls",
    "python_calls",
    "script_runs",
    "tasks",
    "validate_document",
]
