"""SonataFlow's ``workflow-output-schema`` extension (docs/spec-coverage.md, S20).

SonataFlow (``builder/extensions/OutputSchema.java``) reads
``extensions: [{extensionid: workflow-output-schema, outputSchema: <a dataInputSchema>}]``
and validates the workflow's output against it when the workflow ends, with the
input's ``failOnValidationErrors`` rule.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.interp_support import kinds, run
from tideflow.errors import WorkflowValidationError, format_path
from tideflow.runtime.result import Completed, Failed, Terminated
from tideflow.workflow.loader import build_definition

SCHEMA = {"type": "object", "required": ["total"], "properties": {"total": {"type": "number"}}}


def document(data: Any, output_schema: Any, *, terminate: bool = False) -> dict[str, Any]:
    state: dict[str, Any] = {"name": "S", "type": "inject", "data": data}
    state["end"] = {"terminate": True} if terminate else True
    return {
        "id": "totals",
        "version": "1",
        "specVersion": "0.8",
        "start": "S",
        "extensions": [
            {"extensionid": "workflow-uri-definitions", "definitions": {}},
            {"extensionid": "workflow-output-schema", "outputSchema": output_schema},
        ],
        "states": [state],
    }


async def test_an_output_that_matches_completes() -> None:
    definition = build_definition(document({"total": 3}, {"schema": SCHEMA}))
    result = await run(definition.workflow)
    assert isinstance(result, Completed)
    assert result.output == {"total": 3}


@pytest.mark.parametrize("terminate", [False, True])
async def test_an_output_that_does_not_match_fails_the_workflow(terminate: bool) -> None:
    doc = document({"total": "three"}, {"schema": SCHEMA}, terminate=terminate)
    result = await run(build_definition(doc).workflow)
    assert isinstance(result, Failed)
    assert (result.error.name, result.error.code) == ("validation", "VALIDATION")
    assert result.error.message == (
        "output does not match workflow-output-schema at total: 'three' is not of type 'number'"
    )


async def test_without_fail_on_validation_errors_the_mismatch_is_only_recorded() -> None:
    spec = {"schema": SCHEMA, "failOnValidationErrors": False}
    for doc in (document({}, spec), document({}, spec, terminate=True)):
        result = await run(build_definition(doc).workflow)
        assert isinstance(result, Completed | Terminated)
        assert result.output == {}
        assert "output.invalid" in kinds(result)


async def test_a_schema_file_and_its_sibling_are_read_and_stored_inline() -> None:
    contents = {
        "schemas/out.json": json.dumps({"type": "object", "properties": {"n": {"$ref": "n.json"}}}),
        "schemas/n.json": json.dumps({"type": "integer"}),
    }
    definition = build_definition(document({"n": 1.5}, "schemas/out.json"), contents)
    stored = definition.document["extensions"][1]["outputSchema"]
    assert stored["schema"]["properties"]["n"]["$ref"].startswith("#/$tideflowDocuments/")
    result = await run(build_definition(definition.document).workflow)  # as a stored version
    assert isinstance(result, Failed)
    assert "output does not match workflow-output-schema at n" in result.error.message
    assert definition.document["extensions"][0]["extensionid"] == "workflow-uri-definitions"


@pytest.mark.parametrize(
    ("spec", "path", "message"),
    [
        ({"failOnValidationErrors": False}, "extensions[1].outputSchema", "must be a schema URI"),
        (
            {"schema": SCHEMA, "failOnValidationErrors": "no"},
            "extensions[1].outputSchema.failOnValidationErrors",
            "must be true or false",
        ),
        ({"schema": {"type": 7}}, "extensions[1].outputSchema.schema.type", "not a valid JSON"),
        ("schemas/none.json", "extensions[1].outputSchema", "cannot read 'schemas/none.json'"),
    ],
)
def test_a_bad_output_schema_is_a_problem_at_its_path(spec: Any, path: str, message: str) -> None:
    with pytest.raises(WorkflowValidationError) as caught:
        build_definition(document({}, spec))
    found = [(format_path(p.path), p.message) for p in caught.value.problems]
    assert any(at == path and message in text for at, text in found), found
