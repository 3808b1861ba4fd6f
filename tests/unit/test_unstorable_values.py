"""Strings with a NUL character, which PostgreSQL's ``jsonb`` cannot store, are refused where
values enter (found by the schemathesis run: an instance input with ``\\u0000`` was a 503, and a
workflow building one stopped every later journal commit of the server).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pytest

from tests.unit.interp_support import run, workflow
from tests.unit.test_fuzz_inputs import KeptVersions
from tideflow import jsontext
from tideflow.api.errors import tideflow_error_response
from tideflow.deploy import deploy_definition
from tideflow.errors import EventRejected, UnstorableValue, WorkflowLoadError
from tideflow.eventstore.codec import encode_event
from tideflow.limits import check_definition, check_value
from tideflow.runtime.result import Failed
from tideflow.workflow.loader import parse_document

ROOT = Path(__file__).resolve().parents[2]
EVENT = {"specversion": "1.0", "id": "e-1", "source": "/t", "type": "t"}


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("a\x00b", ()),
        ({"a": [1, "\x00"]}, ("a", 1)),
        ({"a": {"k\x00": 1}}, ("a",)),
    ],
)
def test_a_nul_in_a_string_or_a_key_is_refused_with_its_path(
    value: object, path: tuple[object, ...]
) -> None:
    with pytest.raises(UnstorableValue) as caught:
        check_value(value, "the input")
    assert caught.value.code == "VALUE_NUL_CHARACTER"
    assert caught.value.path == path
    assert "the input holds a string with a NUL character" in caught.value.message


def test_other_control_characters_and_an_escaped_backslash_pass() -> None:
    check_value({"a\x01": "\t\x1f\\u0000"}, "the input")


def test_the_api_answers_400_naming_where() -> None:
    response = tideflow_error_response(UnstorableValue("x", path=("a", 1)))
    assert response.status_code == 400
    assert b'"path":"a[1]"' in response.body


@pytest.mark.parametrize(
    "data", [{"a": "x\x00"}, {"k\x00": 1}, ["\x00"]], ids=["value", "key", "item"]
)
def test_an_event_with_a_nul_in_its_data_is_rejected(data: object) -> None:
    with pytest.raises(EventRejected) as caught:
        encode_event({**EVENT, "data": data}, 2)
    assert (caught.value.status, caught.value.index) == (400, 2)
    assert caught.value.reason.startswith("VALUE_NUL_CHARACTER: event [2]")


def test_an_event_with_an_escaped_backslash_before_u0000_is_kept() -> None:
    assert encode_event({**EVENT, "data": "\\u0000"}, 0)[3].endswith('"data":"\\\\u0000"}')


@pytest.mark.parametrize(
    "text",
    ['description: "a\\0b"', '{"id": "x", "metadata": {"k\\u0000": 1}}', "a: [x, 'y', \"\\0\"]"],
)
def test_a_definition_with_a_nul_does_not_load(text: str) -> None:
    with pytest.raises(WorkflowLoadError, match="VALUE_NUL_CHARACTER"):
        parse_document(text)


def test_check_definition_looks_at_keys_and_strings() -> None:
    check_definition({"a": ["b", {"c": "d"}]})
    with pytest.raises(UnstorableValue):
        check_definition({"a": ["b", {"c\x00": "d"}]})


async def test_a_workflow_building_a_nul_fails_with_the_code() -> None:
    build = "${ {x: ([97, 0] | implode)} }"
    state = {"name": "A", "type": "inject", "data": {}, "end": True}
    result = await run(workflow([{**state, "stateDataFilter": {"output": build}}]), {})
    assert isinstance(result, Failed)
    assert result.error.code == "VALUE_NUL_CHARACTER"
    assert result.data == {}  # the last data that can be stored


@pytest.mark.parametrize(
    ("text", "tag", "where"),
    [
        ("a: {b: [1, !!binary aGVsbG8=]}", "!!binary", "a.b[1]"),
        ("a: !!set {x: null}", "!!set", "a"),
        ("a: !!omap [x: 1]", "!!omap or !!pairs", "a[0]"),
    ],
)
def test_a_definition_with_a_yaml_value_json_cannot_hold_does_not_load(
    text: str, tag: str, where: str
) -> None:
    """DSL 1.0 ``document.metadata`` and 0.8 ``data`` took them: a 500 at the store."""
    with pytest.raises(WorkflowLoadError) as caught:
        parse_document(text)
    assert f"VALUE_NOT_JSON: the definition holds a YAML {tag} value at {where}" in str(
        caught.value
    )


def test_yaml_dates_and_scalar_keys_still_load() -> None:
    assert parse_document("a: {1: 2, 2020-01-01: x, null: 3, b: 2020-01-01}")["a"][1] == 2


def test_the_standard_writer_writes_what_orjson_writes() -> None:
    """The writer for big integers met NaN, a date or a date key: a 500 at deploy (loader fuzz)."""
    value = {
        "n": float("nan"),
        "i": [float("-inf")],
        "d": date(2020, 1, 1),
        "t": datetime(2020, 1, 1, 10, tzinfo=UTC),
        date(2021, 2, 2): 1,
        None: 2,
    }
    assert jsontext.dumps_standard(value) == orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    text = jsontext.dumps({"big": 10**30, **value}, orjson.OPT_NON_STR_KEYS)
    assert text.startswith('{"big":1000000000000000000000000000000,"n":null,"i":[null],')


async def test_a_definition_with_a_big_integer_and_a_date_or_nan_deploys() -> None:
    hello = (ROOT / "examples" / "workflows" / "hello-world.yaml").read_text()
    for extra in ("n: .nan", "d: 2020-01-01"):
        more = f"      big: 123456789012345678901234567890\n      {extra}\n"
        text = hello.replace("      greeting: Hello\n", f"      greeting: Hello\n{more}")
        registry = KeptVersions()
        deployed = await deploy_definition(registry, text, "application/yaml")  # type: ignore[arg-type]
        stored = registry.kept[deployed.version.workflow_id].resolved
        assert stored is not None
        assert str(stored["states"][0]["data"]["big"]) == "123456789012345678901234567890"
