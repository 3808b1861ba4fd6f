"""The JSON Schema of the workflow documents Tideflow accepts, generated from its own checks.

The structural checks of :mod:`tideflow.workflow.validate` are the source of
truth; this module renders them as JSON Schema (draft 2020-12) for editors and
API clients. References, the graph, expressions and duration syntax are checked
only by validation. Regenerate the shipped copy with::

    python -m tideflow.workflow.schema > specs/workflow.schema.json
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from tideflow.workflow import _document
from tideflow.workflow._schema import (
    Bool,
    ByType,
    Duration,
    Either,
    Enum,
    Expr,
    Lenient,
    ListOf,
    Number,
    Obj,
    Ref,
    Spec,
    Str,
    StrMap,
    Template,
)

SCHEMA_ID = "https://tideflow.dev/schemas/workflow-0.8.json"


class _Renderer:
    """Turns specs into schemas, sharing each object spec through ``$defs``."""

    def __init__(self) -> None:
        self.defs: dict[str, dict[str, Any]] = {}
        self.names: dict[int, str] = {}

    def render(self, spec: Spec) -> dict[str, Any]:
        if isinstance(spec, Obj):
            return {"$ref": f"#/$defs/{self._define(spec)}"}
        if isinstance(spec, ByType):
            return self._by_type(spec)
        if isinstance(spec, Either):
            return {"anyOf": [self.render(option) for option in spec.options]}
        if isinstance(spec, Lenient):  # the schema is 0.8's: no dialect
            return self.render(spec.strict)
        if isinstance(spec, ListOf):
            out: dict[str, Any] = {"type": "array", "items": self.render(spec.item)}
            if spec.min_items:
                out["minItems"] = spec.min_items
            if spec.unique:
                out["uniqueItems"] = True
            return out
        return _scalar(spec)

    def _define(self, spec: Obj) -> str:
        name = self.names.get(id(spec))
        if name is not None:
            return name
        base = re.sub(r"^(an?|the) ", "", spec.title).replace(" ", "_")
        name = base
        while name in self.defs:
            name += "_"
        self.names[id(spec)] = name
        self.defs[name] = {}  # reserve the name before rendering children
        self.defs[name] = self._object(spec)
        return name

    def _object(self, spec: Obj) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "object",
            "properties": {key: self.render(value) for key, value in spec.fields.items()},
        }
        if spec.required:
            out["required"] = list(spec.required)
        if not spec.extra:
            out["additionalProperties"] = False
        groups: list[dict[str, Any]] = [
            {"oneOf": [{"required": [k]} for k in g]} for g in spec.exactly_one
        ]
        groups += [{"not": {"required": list(g[:2])}} for g in spec.at_most_one]
        if groups:
            out["allOf"] = groups
        return out

    def _by_type(self, spec: ByType) -> dict[str, Any]:
        variants = []
        for kind, variant in spec.variants.items():
            variants.append(
                {
                    "if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
                    "then": self.render(variant),
                }
            )
        kinds = {"type": {"enum": list(spec.variants)}}
        return {"type": "object", "required": ["type"], "properties": kinds, "allOf": variants}


_FIXED: dict[type, dict[str, Any]] = {
    Ref: {"type": "string", "minLength": 1},
    Expr: {"type": "string", "minLength": 1},
    Bool: {"type": "boolean"},
    Duration: {"type": "string", "format": "duration"},
    StrMap: {"type": "object", "additionalProperties": {"type": "string"}},
    _document.Timestamp: {"type": "string", "format": "date-time"},
}


def _scalar(spec: Spec) -> dict[str, Any]:
    fixed = _FIXED.get(type(spec))
    if fixed is not None:
        return dict(fixed)
    if isinstance(spec, Str):
        return {"type": "string", "minLength": spec.min_len} if spec.min_len else {"type": "string"}
    if isinstance(spec, Enum):
        return {"type": "string", "enum": list(spec.values)}
    if isinstance(spec, Number):
        out: dict[str, Any] = {"type": ["number", "string"] if spec.or_string else "number"}
        if spec.minimum is not None:
            out["minimum"] = spec.minimum
        if spec.maximum is not None:
            out["maximum"] = spec.maximum
        return out
    if isinstance(spec, Template):
        return {"type": "object"} if spec.object_only else {}
    if spec.expects != "a value":  # intervals, cron text, time zones, versions
        return {"type": "string"}
    return {}


def workflow_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a 0.8 workflow document, as Tideflow reads it."""
    renderer = _Renderer()
    root = renderer.render(_document.WORKFLOW)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Serverless Workflow 0.8 definition (Tideflow)",
        **root,
        "$defs": renderer.defs,
    }


def main() -> None:
    """Print the schema as JSON."""
    json.dump(workflow_json_schema(), sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
