"""The host's values on Temporal's wire: Tideflow's converter writes the JSON Temporal's
default converter writes and reads what it reads, without its generic type walk.

Histories recorded with the default converter must replay with this one, and a worker
of an earlier version must read what this one writes: the bytes are compared.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from typing import Any

import pytest
from temporalio.converter import DataConverter

from tideflow.runtime.hosts.temporal import _values

DEFAULT = DataConverter.default
OURS = _values.with_values(DEFAULT)

DEFINITION = _values.StoredDefinition(
    workflow_id="w", version="1", document={"id": "w", "states": [{"name": "A"}]}, dialect="sf"
)
VALUES: list[Any] = [
    _values.InstanceStart(workflow_id="w"),
    _values.InstanceStart(
        workflow_id="w",
        version="1",
        input={"n": [1, {"deep": None}], "t": (1, 2)},
        instance_id="i",
        run_no=2,
        parent_id="p",
        mirrored=True,
        definition=DEFINITION,
    ),
    _values.DefinitionRef(workflow_id="w", version=None),
    DEFINITION,
    _values.CallRequest(
        name="inc",
        operation="python:m:inc",
        type="custom",
        arguments={"n": 1, "nested": {"list": [1.5, "x", True]}},
        auth={"name": "a", "scheme": "bearer", "properties": {"token": "t"}},
        idempotency_key="k",
        timeout=2.5,
    ),
    _values.Published(instance_id="i", events=[{"id": "e", "data": {"x": 1}}]),
    _values.Progress(
        instance_id="i",
        run_no=1,
        workflow_id="w",
        version="1",
        status="completed",
        state="A",
        steps=[{"kind": "state.entered", "key": "A", "state": "A", "at": "2026-12-07"}],
        output={"n": 3},
        wait={"key": "w1", "all": False, "events": [], "types": ["t"]},
    ),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_the_same_json_both_ways(value: Any) -> None:
    written = OURS.payload_converter.to_payloads([value])
    assert written == DEFAULT.payload_converter.to_payloads([value])
    hint = type(value)
    read = OURS.payload_converter.from_payloads(written, [hint])[0]
    assert read == DEFAULT.payload_converter.from_payloads(written, [hint])[0]
    assert type(read) is hint
    if isinstance(read, _values.InstanceStart) and read.definition is not None:
        assert type(read.definition) is _values.StoredDefinition


def test_unknown_keys_are_left_out_and_a_non_object_is_refused() -> None:
    later = {"workflow_id": "w", "version": "1", "added_later": {"x": 1}}
    payloads = DEFAULT.payload_converter.to_payloads([later])
    assert OURS.payload_converter.from_payloads(payloads, [_values.DefinitionRef]) == [
        _values.DefinitionRef(workflow_id="w", version="1")
    ]
    with pytest.raises(TypeError, match="CallRequest is a JSON object, not list"):
        OURS.payload_converter.from_payloads(
            DEFAULT.payload_converter.to_payloads([[1]]), [_values.CallRequest]
        )


def test_other_values_are_converted_as_temporal_does() -> None:
    @dataclasses.dataclass
    class Elsewhere:
        n: int

    written = OURS.payload_converter.to_payloads([Elsewhere(1), {"a": 1}, 5])
    assert written == DEFAULT.payload_converter.to_payloads([Elsewhere(1), {"a": 1}, 5])
    assert OURS.payload_converter.from_payloads(written, [Elsewhere, dict, int]) == [
        Elsewhere(1),
        {"a": 1},
        5,
    ]


def test_every_value_class_of_the_module_is_read_by_the_converter() -> None:
    classes = {
        cls
        for _, cls in inspect.getmembers(_values, inspect.isclass)
        if dataclasses.is_dataclass(cls) and cls.__module__ == _values.__name__
    }
    assert classes == set(_values._VALUES)


def test_with_values_keeps_the_rest_of_the_converter() -> None:
    assert _values.with_values(OURS) is OURS
    assert OURS.failure_converter_class is DEFAULT.failure_converter_class
    assert OURS.payload_codec is DEFAULT.payload_codec
    assert json.loads(OURS.payload_converter.to_payloads([VALUES[1]])[0].data)["definition"][
        "document"
    ] == {"id": "w", "states": [{"name": "A"}]}
