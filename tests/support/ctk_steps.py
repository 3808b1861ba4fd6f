"""The steps of the Serverless Workflow 1.0 CTK, run on Tideflow's local host.

Each scenario's workflow is written to a file and run by
:class:`~tideflow.runtime.hosts.local.LocalHost` (what ``tideflow run``
uses), with the public services the CTK calls redirected to local
stand-ins. Assertions read the run's outcome and its timeline.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.gherkin import GherkinStep, Scenario
from tideflow.runtime.hosts.local import LocalHost, LocalOptions, LocalRun
from tideflow.runtime.result import Completed, Failed


@dataclass
class World:
    """What the steps of one scenario share."""

    folder: Path
    redirects: Mapping[str, str]
    definition: str = ""
    input: Any = None
    outcome: LocalRun | None = None
    log: list[str] = field(default_factory=list)

    @property
    def result(self) -> Any:
        assert self.outcome is not None, "the workflow was not executed"
        return self.outcome.result

    def output(self) -> Any:
        assert isinstance(self.result, Completed), f"the workflow did not complete: {self.result}"
        return self.result.output

    def started(self) -> list[str]:
        return [s.state for s in self.result.timeline if s.kind == "task.started"]


def _yaml(step: GherkinStep) -> Any:
    assert step.doc is not None, f"line {step.line}: the step needs a doc string"
    return yaml.safe_load(step.doc)


def _lookup(value: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        assert isinstance(value, Mapping), f"{dotted}: {part!r} is looked up in {value!r}"
        assert part in value, f"the output has no {dotted!r}: {value!r}"
        value = value[part]
    return value


async def _execute(world: World, step: GherkinStep, match: re.Match[str]) -> None:
    path = world.folder / "workflow.yaml"
    path.write_text(world.definition, encoding="utf-8")
    host = LocalHost(LocalOptions(redirects=world.redirects, log=world.log.append))
    world.outcome = await host.run_file(path, world.input)


def _define(world: World, step: GherkinStep, match: re.Match[str]) -> None:
    assert step.doc is not None
    world.definition = step.doc


def _input(world: World, step: GherkinStep, match: re.Match[str]) -> None:
    world.input = _yaml(step)


def _complete(world: World, step: GherkinStep, match: re.Match[str]) -> None:
    output = world.output()
    if match.group(1):
        assert output == _yaml(step)


def _fault(world: World, step: GherkinStep, match: re.Match[str]) -> None:
    assert isinstance(world.result, Failed), f"the workflow did not fault: {world.result}"
    if match.group(1):
        expected = _yaml(step)
        details = world.result.error.details or {}
        assert {k: details.get(k) for k in expected} == expected


def _properties(world: World, step: GherkinStep, match: re.Match[str]) -> None:
    output = world.output()
    for dotted in re.findall(r"'([^']+)'", match.group(1)):
        _lookup(output, dotted)


def _value(world: World, step: GherkinStep, match: re.Match[str]) -> None:
    assert _lookup(world.output(), match.group(1)) == _yaml(step)


def _count(world: World, step: GherkinStep, match: re.Match[str]) -> None:
    assert len(_lookup(world.output(), match.group(1))) == int(match.group(2))


def _first(world: World, step: GherkinStep, match: re.Match[str]) -> None:
    assert world.started()[0] == match.group(1), world.started()


def _last(world: World, step: GherkinStep, match: re.Match[str]) -> None:
    assert world.started()[-1] == match.group(1), world.started()


def _before(world: World, step: GherkinStep, match: re.Match[str]) -> None:
    started = world.started()
    assert started.index(match.group(1)) < started.index(match.group(2)), started


def _after(world: World, step: GherkinStep, match: re.Match[str]) -> None:
    started = world.started()
    assert started.index(match.group(1)) > started.index(match.group(2)), started


Handler = Callable[[World, GherkinStep, re.Match[str]], Any]
STEPS: list[tuple[re.Pattern[str], Handler]] = [
    (re.compile(r"^a workflow with definition:$"), _define),
    (re.compile(r"^(?:given )?the workflow input is:$"), _input),
    (re.compile(r"^the workflow is executed$"), _execute),
    (re.compile(r"^the workflow should complete( with output:)?$"), _complete),
    (re.compile(r"^the workflow should fault( with error:)?$"), _fault),
    (re.compile(r"^the workflow output should have properties (.+)$"), _properties),
    (re.compile(r"^the workflow output should have a '([^']+)' property with value:$"), _value),
    (
        re.compile(
            r"^the workflow output should have a '([^']+)' property containing (\d+) items$"
        ),
        _count,
    ),
    (re.compile(r"^(\w+) should run first$"), _first),
    (re.compile(r"^(\w+) should run last$"), _last),
    (re.compile(r"^(\w+) should run before (\w+)$"), _before),
    (re.compile(r"^(\w+) should run after (\w+)$"), _after),
]


async def run_scenario(scenario: Scenario, world: World) -> None:
    """Run every step of ``scenario``; an unknown step fails the scenario."""
    for step in scenario.steps:
        for pattern, handler in STEPS:
            match = pattern.match(step.text)
            if match is not None:
                outcome = handler(world, step, match)
                if outcome is not None:
                    await outcome
                break
        else:
            raise AssertionError(f"{scenario.path.name}:{step.line}: no step matches {step.text!r}")
