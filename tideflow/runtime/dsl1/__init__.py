"""The Serverless Workflow DSL 1.0 interpreter (pure, on the same Effects as 0.8)."""

from __future__ import annotations

from tideflow.runtime.dsl1._calls import CallTarget
from tideflow.runtime.dsl1.errors import ERROR_TYPES, matches_filter
from tideflow.runtime.dsl1.interpreter import Interpreter

__all__ = ["ERROR_TYPES", "CallTarget", "Interpreter", "matches_filter"]
