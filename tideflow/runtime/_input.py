"""Workflow input and output checks: valid against ``dataInputSchema`` and SonataFlow's
``workflow-output-schema`` extension.

Internal. The validators are built once per workflow. A schema given as a URI
that the loader did not resolve cannot be read here (no I/O): it is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tideflow.errors import format_path
from tideflow.workflow.model import DataInputSchema, Workflow, thaw


class SchemaChecker:
    """Checks a value against one of a workflow's schemas.

    Attributes:
        fail: The schema's ``failOnValidationErrors`` (default true).
    """

    def __init__(self, spec: DataInputSchema | None, name: str) -> None:
        """Args:
        spec: The schema, if any.
        name: How messages name it (``dataInputSchema``).
        """
        self.fail = True if spec is None else spec.fail_on_validation_errors
        self.name = name
        self._validator: Any = None
        if spec is not None and isinstance(spec.schema, Mapping):
            import jsonschema  # type: ignore[import-untyped]  # slow import: only when needed

            schema = thaw(spec.schema)
            cls = jsonschema.validators.validator_for(schema)
            self._validator = cls(schema)

    def mismatch(self, data: Any, what: str) -> str | None:
        """How ``data`` (``what``: "input", "output") does not match the schema, or ``None``."""
        if self._validator is None:
            return None
        try:
            errors = sorted(self._validator.iter_errors(data), key=lambda e: list(e.path))
        except Exception as exc:  # an unresolvable $ref, a hostile schema: never a raw error
            return f"{self.name} cannot be applied: {type(exc).__name__}: {exc}"
        if not errors:
            return None
        first = errors[0]
        where = format_path(tuple(first.absolute_path)) if first.absolute_path else what
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return f"{what} does not match {self.name} at {where}: {first.message}{more}"


class InputChecker(SchemaChecker):
    """Checks a workflow's input: a JSON object, valid against ``dataInputSchema``."""

    def __init__(self, workflow: Workflow) -> None:
        super().__init__(workflow.data_input_schema, "dataInputSchema")

    def problem(self, data: Any) -> str | None:
        """What is wrong with ``data`` as workflow input, or ``None``."""
        if not isinstance(data, dict):
            return f"the workflow input must be a JSON object, not {type(data).__name__}"
        return self.mismatch(data, "input")


class OutputChecker(SchemaChecker):
    """Checks a workflow's output against SonataFlow's ``workflow-output-schema``."""

    def __init__(self, workflow: Workflow) -> None:
        super().__init__(workflow.data_output_schema, "workflow-output-schema")

    def problem(self, data: Any) -> str | None:
        """What is wrong with ``data`` as workflow output, or ``None``."""
        return self.mismatch(data, "output")
