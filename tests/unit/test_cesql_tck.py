"""The CloudEvents SQL v1.0.0 TCK: every case of every file must pass."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.support.conformance import CLOUDEVENTS, absent, needs
from tideflow.errors import CesqlParseError
from tideflow.triggers.cesql import compile_expression

TCK = CLOUDEVENTS / "cesql-tck"
EXPECTED_CASES = 275
BASE_EVENT = {"specversion": "1.0", "id": "tck-id", "source": "/tck", "type": "tck.type"}


class _TypedLoader(yaml.SafeLoader):
    """YAML 1.1 typing for results and events, but timestamps stay strings."""


_TypedLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _load_cases() -> list[Any]:
    """One pytest param per case: expressions loaded as raw strings (BaseLoader)."""
    if not TCK.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=absent(TCK)))]
    cases = []
    for path in sorted(TCK.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        raw = yaml.load(text, Loader=yaml.BaseLoader)
        typed = yaml.load(text, Loader=_TypedLoader)
        for index, (raw_case, case) in enumerate(zip(raw["tests"], typed["tests"], strict=True)):
            case = {**case, "expression": raw_case["expression"], "file": path.name}
            cases.append(pytest.param(case, id=f"{path.stem}[{index}] {case['name']}"))
    return cases


CASES = _load_cases()


def _event(case: dict[str, Any]) -> dict[str, Any]:
    event = dict(case.get("event") or BASE_EVENT)
    event.update(case.get("eventOverrides") or {})
    return event


@needs(TCK)
def test_every_tck_case_is_loaded() -> None:
    assert len(CASES) == EXPECTED_CASES
    assert all(isinstance(param.values[0]["expression"], str) for param in CASES)
    assert {param.values[0]["file"] for param in CASES} == {p.name for p in TCK.glob("*.yaml")}


@pytest.mark.parametrize("case", CASES)
def test_tck_case(case: dict[str, Any]) -> None:
    error = case.get("error")
    if error == "parse":
        with pytest.raises(CesqlParseError) as caught:
            compile_expression(case["expression"])
        assert caught.value.column >= 1
        return
    expression = compile_expression(case["expression"])
    event = _event(case)
    result = expression.evaluate(event)
    if "result" in case:
        expected = case["result"]
        assert result.value == expected
        assert type(result.value) is type(expected)
    kinds = [str(problem.kind) for problem in result.errors]
    if error:
        assert error in kinds
    else:
        assert kinds == []
    assert expression.matches(event) is (result.value is True and not result.errors)
