"""specs/workflow.schema.json: generated from the validator's own checks, and kept up to date."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]

from tests.support.conformance import SW08_EXAMPLES, skip_unless
from tideflow.workflow.loader import (
    external_references,
    inline_references,
    parse_document,
    read_local_references,
)
from tideflow.workflow.schema import workflow_json_schema

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "specs" / "workflow.schema.json"
EXAMPLES = SW08_EXAMPLES


def test_the_shipped_schema_is_up_to_date() -> None:
    shipped = json.loads(SHIPPED.read_text())
    assert shipped == workflow_json_schema(), (
        "regenerate: python -m tideflow.workflow.schema > specs/workflow.schema.json"
    )


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(workflow_json_schema())


def test_spec_examples_against_the_schema() -> None:
    skip_unless(EXAMPLES)
    validator = jsonschema.Draft202012Validator(workflow_json_schema())
    verdicts = {}
    for path in sorted(EXAMPLES.iterdir()):
        if path.suffix not in (".yaml", ".json") or path.name.count(".") != 1:
            continue
        if path.name == "functiondefs.json":
            continue
        parsed = parse_document(path.read_text(), path.name)
        local = read_local_references(external_references(parsed), EXAMPLES)
        doc, _ = inline_references(parsed, local)
        verdicts[path.name] = [list(e.absolute_path) for e in validator.iter_errors(doc)]
    assert len(verdicts) == 31
    # the one structural defect of the set (INDEX.md): a top-level eventTimeout on a switch
    assert verdicts.pop("eventbasedswitchstate.json") == [["states", 0]]
    assert all(errors == [] for errors in verdicts.values()), verdicts


def test_the_schema_rejects_what_validation_rejects_structurally() -> None:
    validator = jsonschema.Draft202012Validator(workflow_json_schema())
    state = {"name": "a", "type": "sleep", "duration": "PT1S", "end": True}
    good = {"id": "x", "specVersion": "0.8", "states": [state]}
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "key": "k"})  # id and key
    assert not validator.is_valid({**good, "states": [{**state, "type": "nap"}]})
    action = {"functionRef": "f", "subFlowRef": "g"}  # two invocations
    operation = {"name": "a", "type": "operation", "actions": [action], "end": True}
    assert not validator.is_valid({**good, "states": [operation]})
