"""The Serverless Workflow 1.0 CTK (``../shared/conformance/sw-1.0/ctk``), every scenario.

Each scenario is one test (its id: ``feature: scenario``), run through one
real ``tideflow serve`` for the module (on a database of its own): deployed
with ``POST /workflows``, started with ``POST /workflows/{id}/instances?wait=60``
and checked on the instance the server answers (see
:mod:`tests.support.ctk_steps`). The public services the scenarios call
(``petstore.swagger.io``, ``httpbin.org``) are local stand-ins the server is
sent to with ``--server``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.ctk_steps import World, run_scenario, slug_of
from tests.support.gherkin import Scenario, parse_feature
from tests.support.served import LOCAL, Served, copied_database, serve_process
from tests.support.sw1 import FEATURES, needs_sw1
from tests.support.sw1_services import start_stand_ins


def scenarios() -> list[Scenario]:
    found: list[Scenario] = []
    for path in sorted(FEATURES.glob("*.feature")) if FEATURES.is_dir() else []:
        found.extend(parse_feature(path))
    return found


@pytest.fixture(scope="module")
async def server(
    pg_server_url: str,
    pg_template: str,
    _db_names: tuple[str, list[int]],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Served]:
    """One server for every scenario, on a database of its own."""
    home = tmp_path_factory.mktemp("serve-ctk")
    name = f"t_{_db_names[0]}_ctk"
    async with copied_database(pg_server_url, pg_template, name) as url:
        with start_stand_ins() as redirects:
            sent = [
                arg for origin, to in redirects.items() for arg in ("--server", f"{origin}={to}")
            ]
            with serve_process(url, home, *sent, *LOCAL) as running:
                yield running


@needs_sw1
def test_the_ctk_has_scenarios():
    assert len(scenarios()) >= 21
    assert len({slug_of(s) for s in scenarios()}) == len(scenarios())  # one version each


@needs_sw1
@pytest.mark.parametrize("scenario", scenarios(), ids=lambda s: s.ident)
async def test_ctk_scenario(scenario: Scenario, server: Served) -> None:
    async with server.async_client(timeout=90) as client:
        world = World(client=client, slug=slug_of(scenario))
        try:
            await run_scenario(scenario, world)
        except AssertionError as failed:
            raise AssertionError(
                f"{failed}\n--- server log:\n{server.output()[-3000:]}"
            ) from failed


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
