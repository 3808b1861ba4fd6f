"""Function invokers: every function type a workflow can call."""

from __future__ import annotations

from tideflow.runtime.functions.invoker import FunctionInvoker
from tideflow.runtime.functions.python import PythonFunction, as_call_error, call_function
from tideflow.runtime.functions.types import AuthDefinition, Invocation

__all__ = [
    "AuthDefinition",
    "FunctionInvoker",
    "Invocation",
    "PythonFunction",
    "as_call_error",
    "call_function",
]
