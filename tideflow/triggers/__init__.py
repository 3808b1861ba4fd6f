"""Tideflow triggers."""

from __future__ import annotations

from tideflow.triggers.cesql import CesqlExpression, compile_expression
from tideflow.triggers.filters import CompiledFilters, compile_filter, compile_filters

__all__ = [
    "CesqlExpression",
    "CompiledFilters",
    "compile_expression",
    "compile_filter",
    "compile_filters",
]
