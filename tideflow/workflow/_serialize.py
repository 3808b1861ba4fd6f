"""The model back to a Serverless Workflow 0.8 document (plain JSON values).

:func:`to_document` writes the normalized form: object forms instead of
shorthand strings, and only values that differ from the spec's defaults, so
that building the document again gives an equal model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from tideflow.workflow import model as m


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def _value(value: Any) -> Any:
    if isinstance(value, m.End) and value == m.End():
        return True
    if isinstance(value, m.Start) and value.schedule is None:
        return value.state_name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _object(value)
    if isinstance(value, Mapping):
        return {k: _value(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_value(v) for v in value]
    return value


def _object(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in dataclasses.fields(obj):
        if not field.init:
            continue
        value = getattr(obj, field.name)
        default = _default(field)
        is_default = value is None or (default is not dataclasses.MISSING and value == default)
        if is_default and field.name != "type":  # a state always says its type
            continue
        out[_camel(field.name)] = _value(value)
    return out


def to_document(workflow: m.Workflow) -> dict[str, Any]:
    """Return the workflow as a spec document of plain JSON values.

    The document validates, and :func:`tideflow.workflow.loader.load_workflow`
    of it gives a workflow equal to ``workflow``.
    """
    doc = _object(workflow)
    doc["specVersion"] = workflow.spec_version
    return doc
