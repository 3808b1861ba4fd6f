"""The Serverless Workflow 1.0 CTK (``../shared/conformance/sw-1.0/ctk``), every scenario.

Each scenario is one test (its id: ``feature: scenario``), run through the
local host that ``tideflow run`` uses; the public services it calls
(``petstore.swagger.io``, ``httpbin.org``) are local stand-ins.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ctk_steps import World, run_scenario
from tests.support.gherkin import Scenario, parse_feature
from tests.support.sw1 import FEATURES, needs_sw1
from tests.support.sw1_services import start_stand_ins


def scenarios() -> list[Scenario]:
    found: list[Scenario] = []
    for path in sorted(FEATURES.glob("*.feature")) if FEATURES.is_dir() else []:
        found.extend(parse_feature(path))
    return found


@pytest.fixture(scope="module")
def redirects() -> Iterator[dict[str, str]]:
    with start_stand_ins() as found:
        yield found


@needs_sw1
def test_the_ctk_has_scenarios():
    assert len(scenarios()) >= 21


@needs_sw1
@pytest.mark.parametrize("scenario", scenarios(), ids=lambda s: s.ident)
async def test_ctk_scenario(scenario: Scenario, redirects: dict[str, str], tmp_path: Path) -> None:
    await run_scenario(scenario, World(folder=tmp_path, redirects=redirects))


def test_the_reader_refuses_what_it_does_not_understand(tmp_path):
    feature = tmp_path / "outline.feature"
    feature.write_text("Feature: F\n  Scenario Outline: S\n    Given a thing\n")
    with pytest.raises(ValueError, match=r"outline.feature:2: not supported"):
        parse_feature(feature)


def test_the_reader_keeps_doc_strings_and_lines(tmp_path):
    feature = tmp_path / "one.feature"
    feature.write_text(
        'Feature: F\n  Scenario: S\n    Given a workflow with definition:\n    """yaml\n'
        '    a:\n      b: 1\n    """\n    When the workflow is executed\n'
    )
    (scenario,) = parse_feature(feature)
    assert [(s.keyword, s.text, s.line, s.doc) for s in scenario.steps] == [
        ("Given", "a workflow with definition:", 3, "a:\n  b: 1\n"),
        ("When", "the workflow is executed", 8, None),
    ]
