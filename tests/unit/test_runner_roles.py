"""The durable runner's seams stay narrow: small role Protocols, each consumer on the roles it uses.

What a consumer uses is read off its code (every ``self.host.X`` of the
runner, every ``self._host.X`` of the effects); what it depends on is the
composite Protocol it is typed with. A new call that no declared role offers,
a role declared but no longer used, or a role that grows into a grab bag
fails here.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from tideflow.runtime.hosts import _runner_services as services
from tideflow.runtime.hosts._instance_runner import InstanceRunner
from tideflow.runtime.hosts._journaled_effects import DurableEffects
from tideflow.runtime.hosts.durable import DurableRuntime

HOSTS = Path(services.__file__).parent
ROLES = (
    services.Timing,
    services.RunJournal,
    services.ContestedSteps,
    services.DefinitionSource,
    services.Invoker,
    services.EventSink,
    services.Subflows,
    services.Notices,
)
MAX_MEMBERS = 3


def members(role: type) -> set[str]:
    """The names a role Protocol declares itself (not those of the roles it combines)."""
    return {
        name
        for name, value in vars(role).items()
        if not name.startswith("_") and (callable(value) or isinstance(value, property))
    }


def roles_of(composite: type) -> list[type]:
    """The role Protocols a composite Protocol combines."""
    return [base for base in composite.__mro__[1:] if base in ROLES]


def used(path: Path, owner: str) -> set[str]:
    """Every attribute read on ``<owner>`` (``self.host`` / ``self._host``) in a module."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "self"
            and node.value.attr == owner
        ):
            found.add(node.attr)
    return found


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.__name__)
def test_each_role_is_small(role: type) -> None:
    assert 1 <= len(members(role)) <= MAX_MEMBERS, sorted(members(role))


def test_the_roles_do_not_overlap() -> None:
    seen: dict[str, str] = {}
    for role in ROLES:
        for name in members(role):
            assert name not in seen, f"{name} is in {seen.get(name)} and {role.__name__}"
            seen[name] = role.__name__


@pytest.mark.parametrize(
    ("consumer", "module", "owner", "composite"),
    [
        (InstanceRunner, "_instance_runner.py", "host", services.RunnerServices),
        (DurableEffects, "_journaled_effects.py", "_host", services.EffectsServices),
    ],
    ids=["runner", "effects"],
)
def test_a_consumer_depends_on_exactly_the_roles_it_uses(
    consumer: type, module: str, owner: str, composite: type
) -> None:
    declared = inspect.signature(consumer).parameters["host"].annotation
    assert declared in (composite.__name__, composite)
    calls = used(HOSTS / module, owner)
    offered = set().union(*(members(role) for role in roles_of(composite)))
    assert calls, "no use of the host found: the test reads the wrong attribute"
    assert calls <= offered, f"used but in no declared role: {sorted(calls - offered)}"
    for role in roles_of(composite):
        assert members(role) & calls, f"{role.__name__} is declared but never used"


def test_the_runner_does_not_reach_the_effects_roles() -> None:
    runner_roles = set(roles_of(services.RunnerServices))
    for role in (services.Invoker, services.EventSink, services.ContestedSteps):
        assert role not in runner_roles


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.__name__)
def test_the_durable_runtime_plays_every_role(role: type) -> None:
    for name in members(role):
        assert hasattr(DurableRuntime, name) or name in _instance_attributes(), name


def _instance_attributes() -> set[str]:
    """Roles' properties that the runtime sets in ``__init__`` rather than declares."""
    source = inspect.getsource(DurableRuntime.__init__)
    return {
        node.attr
        for node in ast.walk(ast.parse(inspect.cleandoc("\n" + source)))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
        and isinstance(node.ctx, ast.Store)
    }
