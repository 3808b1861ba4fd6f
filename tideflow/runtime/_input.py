"""Workflow input checks: a JSON object, valid against ``dataInputSchema``.

Internal. The validator is built once per workflow. A schema given as a URI
that the loader did not resolve cannot be read here (no I/O): it is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tideflow.errors import format_path
from tideflow.workflow.model import Workflow, thaw


class InputChecker:
    """Checks a workflow's input.

    Attributes:
        fail: ``dataInputSchema.failOnValidationErrors`` (default true).
    """

    def __init__(self, workflow: Workflow) -> None:
        spec = workflow.data_input_schema
        self.fail = True if spec is None else spec.fail_on_validation_errors
        self._validator: Any = None
        if spec is not None and isinstance(spec.schema, Mapping):
            import jsonschema  # type: ignore[import-untyped]  # slow import: only when needed

            schema = thaw(spec.schema)
            cls = jsonschema.validators.validator_for(schema)
            self._validator = cls(schema)

    def problem(self, data: Any) -> str | None:
        """What is wrong with ``data`` as workflow input, or ``None``."""
        if not isinstance(data, dict):
            return f"the workflow input must be a JSON object, not {type(data).__name__}"
        if self._validator is None:
            return None
        try:
            errors = sorted(self._validator.iter_errors(data), key=lambda e: list(e.path))
        except Exception as exc:  # an unresolvable $ref, a hostile schema: never a raw error
            return f"dataInputSchema cannot be applied: {type(exc).__name__}: {exc}"
        if not errors:
            return None
        first = errors[0]
        where = format_path(tuple(first.absolute_path)) if first.absolute_path else "input"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return f"input does not match dataInputSchema at {where}: {first.message}{more}"
