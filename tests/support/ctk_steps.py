"""The steps of the Serverless Workflow 1.0 CTK, run on a real ``tideflow serve``.

Each scenario's workflow is deployed with ``POST /workflows`` under a version
of its own (several scenarios share a ``namespace.name``), started with its
input by ``POST /workflows/{id}/instances?wait=60``, and checked against the
instance the server answers: its output, or its error's Problem Details
(``error.details``); the order of tasks comes from ``GET
/instances/{id}/timeline``. The public services the CTK calls are local
stand-ins (the server's ``--server`` redirects).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import yaml

from tests.support.gherkin import GherkinStep, Scenario

WAIT_SECONDS = 60
_VERSION = re.compile(r"(\n\s+version:\s*)['\"]?([0-9][^'\"\s]*)['\"]?")


@dataclass
class World:
    """What the steps of one scenario share."""

    client: httpx.AsyncClient
    """A client of the server, with its token."""
    slug: str
    """Appended to the workflow's version (``1.0.0-<slug>``): one version per scenario."""
    definition: str = ""
    input: Any = None
    instance: dict[str, Any] | None = None
    """The instance as the server answered once it ended."""
    tasks: list[str] | None = None
    """The names of the tasks started, in order (read from the timeline once asked)."""

    @property
    def shown(self) -> dict[str, Any]:
        assert self.instance is not None, "the workflow was not executed"
        return self.instance

    def output(self) -> Any:
        assert self.shown["status"] == "completed", f"the workflow did not complete: {self.shown}"
        return self.shown["output"]

    async def started(self) -> list[str]:
        if self.tasks is None:
            entries: list[dict[str, Any]] = []
            after: str | None = None
            while True:
                params: dict[str, str | int] = {"limit": 500}
                if after is not None:
                    params["after"] = after
                page = await self.client.get(
                    f"/instances/{self.shown['id']}/timeline", params=params
                )
                assert page.status_code == 200, page.text
                entries.extend(page.json()["entries"])
                after = page.json()["next"]
                if after is None:
                    break
            self.tasks = [e["state"] for e in entries if e["kind"] == "task.started"]
        return self.tasks


def slug_of(scenario: Scenario) -> str:
    """A semver pre-release identifier naming the scenario (``flow-explicit-sequence-flow``)."""
    return re.sub(r"[^0-9a-z]+", "-", scenario.ident.lower()).strip("-")


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
    text = _VERSION.sub(lambda m: f"{m.group(1)}'{m.group(2)}-{world.slug}'", world.definition, 1)
    document = yaml.safe_load(text)["document"]
    headers = {"content-type": "application/yaml"}
    deployed = await world.client.post("/workflows", content=text, headers=headers)
    assert deployed.status_code == 201, deployed.text
    assert deployed.json()["version"] == document["version"], deployed.text
    started = await world.client.post(
        f"/workflows/{deployed.json()['id']}/instances",
        json=world.input if world.input is not None else {},
        params={"version": document["version"], "wait": WAIT_SECONDS},
    )
    assert started.status_code == 201, started.text
    world.instance = started.json()
    assert world.shown["status"] in {"completed", "failed"}, f"still running: {world.shown}"


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
    assert world.shown["status"] == "failed", f"the workflow did not fault: {world.shown}"
    if match.group(1):
        expected = _yaml(step)
        details = world.shown["error"].get("details") or {}
        assert {k: details.get(k) for k in expected} == expected, world.shown["error"]


def _properties(world: World, step: GherkinStep, match: re.Match[str]) -> None:
    output = world.output()
    for dotted in re.findall(r"'([^']+)'", match.group(1)):
        _lookup(output, dotted)


def _value(world: World, step: GherkinStep, match: re.Match[str]) -> None:
    assert _lookup(world.output(), match.group(1)) == _yaml(step)


def _count(world: World, step: GherkinStep, match: re.Match[str]) -> None:
    assert len(_lookup(world.output(), match.group(1))) == int(match.group(2))


async def _first(world: World, step: GherkinStep, match: re.Match[str]) -> None:
    assert (await world.started())[0] == match.group(1), world.tasks


async def _last(world: World, step: GherkinStep, match: re.Match[str]) -> None:
    assert (await world.started())[-1] == match.group(1), world.tasks


async def _before(world: World, step: GherkinStep, match: re.Match[str]) -> None:
    started = await world.started()
    assert started.index(match.group(1)) < started.index(match.group(2)), started


async def _after(world: World, step: GherkinStep, match: re.Match[str]) -> None:
    started = await world.started()
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
