"""The map holds: no import cycle between components, layers import downwards, pure stays pure.

The import graph is built from the AST of every module of the package. Every
``import`` counts wherever it stands: at module level, inside a function
(a lazy import is still a dependency), and under ``if TYPE_CHECKING:`` (a
type-only cycle still ties the two components together). A component is a
subpackage (``workflow``, ``runtime``, ``eventstore``, ``triggers``,
``timer``, ``api``, ``_cli``, ``auth``, …) or a top-level module
(``errors``, ``serve``, ``http_binding``, …); ``tideflow/__init__.py``
itself is the component ``tideflow``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "tideflow"

ABOVE_API = frozenset({"api", "_cli", "cli", "serve"})
"""The web layer and what stands on it: the composition root and the CLI."""
CLI = frozenset({"_cli", "cli"})

IO_LIBRARIES = frozenset(
    {"asyncio", "asyncpg", "httpx", "fastapi", "starlette", "socket", "subprocess", "uvicorn"}
)
PURE_MODULES = (
    "http_binding.py",
    "triggers/filters.py",
    "timer/wheel.py",
)
"""Plain code with no I/O (the workflow package is checked as a whole; the
interpreter, which awaits its effects, in ``test_runtime_exports.py``)."""


@dataclass(frozen=True, slots=True)
class Edge:
    """One import: ``source`` imports ``target`` at ``where`` (``path:line``)."""

    source: str
    target: str
    where: str


def module_name(path: Path) -> str:
    """``tideflow.runtime.gateway`` for ``tideflow/runtime/gateway.py``."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def component(module: str) -> str:
    """``runtime`` for ``tideflow.runtime.hosts.durable``; ``tideflow`` for the package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(
    tree: ast.AST, module: str, is_package: bool, known: Iterable[str]
) -> list[tuple[str, int]]:
    """The tideflow modules ``tree`` imports, anywhere in it, with their lines."""
    names = set(known)
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:  # `from tideflow.api import errors` imports a module
                child = f"{base}.{alias.name}"
                found.append((child if child in names else base, node.lineno))
    return [(name, line) for name, line in found if name.split(".")[0] == "tideflow"]


def import_edges() -> list[Edge]:
    """Every import between two components of the package."""
    known = modules()
    edges = []
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(PACKAGE.parent)
        for target, line in imported(tree, name, path.name == "__init__.py", known):
            source_c, target_c = component(name), component(target)
            if source_c != target_c:
                edges.append(Edge(source_c, target_c, f"{where}:{line} imports {target}"))
    return edges


def find_cycle(edges: Iterable[Edge]) -> list[Edge] | None:
    """One cycle of the graph as its edges in order, or ``None`` if there is none."""
    graph: dict[str, dict[str, Edge]] = {}
    for edge in edges:
        graph.setdefault(edge.source, {}).setdefault(edge.target, edge)
    done: set[str] = set()

    def visit(node: str, path: list[Edge], on_path: Mapping[str, int]) -> list[Edge] | None:
        for target, edge in sorted(graph.get(node, {}).items()):
            if target in on_path:
                return [*path[on_path[target] :], edge]
            if target not in done:
                cycle = visit(target, [*path, edge], {**on_path, target: len(path) + 1})
                if cycle:
                    return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done and (cycle := visit(start, [], {start: 0})):
            return cycle
    return None


def describe(cycle: list[Edge]) -> str:
    """``a -> b -> a`` and where each import is."""
    route = " -> ".join([cycle[0].source, *(edge.target for edge in cycle)])
    return route + "\n" + "\n".join(f"  {edge.where}" for edge in cycle)


def test_no_import_cycle_between_components() -> None:
    cycle = find_cycle(import_edges())
    assert cycle is None, "import cycle: " + describe(cycle or [])


def test_nothing_below_the_web_layer_imports_it_or_the_cli() -> None:
    wrong = [
        edge.where
        for edge in import_edges()
        if (edge.target == "api" and edge.source not in ABOVE_API)
        or (edge.target in CLI and edge.source not in CLI)
    ]
    assert wrong == []


def test_the_cycle_finder_reports_the_path_of_a_cycle() -> None:
    edges = [
        Edge("api", "triggers", "api/x.py:1"),
        Edge("triggers", "eventstore", "triggers/y.py:2"),
        Edge("eventstore", "errors", "eventstore/z.py:3"),
        Edge("triggers", "api", "triggers/delivery.py:4"),
    ]
    cycle = find_cycle(edges)
    assert cycle is not None
    assert describe(cycle).splitlines()[0] == "api -> triggers -> api"
    assert find_cycle(edges[:3]) is None


def test_function_level_and_type_checking_imports_count() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from tideflow.api.services import Services\n"
        "def f():\n    from tideflow.serve import open_system\n"
        "from . import gateway\n"
    )
    known = {"tideflow.api.services", "tideflow.serve", "tideflow.runtime.gateway"}
    found = sorted(imported(tree, "tideflow.runtime.lifecycle", False, known), key=lambda f: f[1])
    assert found == [
        ("tideflow.api.services", 3),
        ("tideflow.serve", 5),
        ("tideflow.runtime.gateway", 6),
    ]


@pytest.mark.parametrize(
    "path",
    [
        *PURE_MODULES,
        *(str(p.relative_to(PACKAGE)) for p in sorted((PACKAGE / "workflow").rglob("*.py"))),
    ],
)
def test_pure_modules_import_no_io_library(path: str) -> None:
    tree = ast.parse((PACKAGE / path).read_text(encoding="utf-8"))
    names = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    names |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name.split(".")[0] for name in names} & IO_LIBRARIES, sorted(names)


ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"
MODULES_BEFORE = 17
"""Modules on the event's path before the seams restructure (commit ``3a210bf``)."""


def event_path() -> tuple[list[str], int]:
    """The modules ``docs/architecture.md`` lists on the way from ``POST /events`` to a
    resumed instance, and the count it states."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## The path of an event", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\d+\. `([\w/]+\.py)`", section, flags=re.MULTILINE)
    stated = re.search(r"\*\*(\d+) modules, against (\d+) before", section)
    assert stated is not None, "the count of modules on the path is not stated"
    assert int(stated[2]) == MODULES_BEFORE
    return listed, int(stated[1])


def test_the_event_path_lists_real_modules_and_is_shorter_than_before() -> None:
    listed, stated = event_path()
    assert [m for m in listed if not (PACKAGE / m).is_file()] == []
    assert len(set(listed)) == len(listed) == stated
    assert stated < MODULES_BEFORE


TASK_MAKERS = frozenset({"create_task", "ensure_future"})
TASKS_OWNED_IN = "supervise.py"
"""The only module that makes tasks (:func:`~tideflow.supervise.scoped`,
:func:`~tideflow.supervise.first_done`, :class:`~tideflow.supervise.TaskSet`,
:class:`~tideflow.supervise.Supervisor`); a service's ``TaskGroup`` owns its own."""


def bare_tasks(tree: ast.AST) -> list[int]:
    """Lines that make a task nobody owns: ``asyncio.create_task``/``ensure_future``,
    the same names imported from asyncio, or a loop's ``create_task``."""
    imported_names = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "asyncio"
        for alias in node.names
        if alias.name in TASK_MAKERS
    }
    loops = {"asyncio.get_running_loop()", "asyncio.get_event_loop()"}
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in imported_names:
            lines.append(node.lineno)
        elif isinstance(func, ast.Attribute) and func.attr in TASK_MAKERS:
            owner = ast.unparse(func.value)
            if owner in {"asyncio", "loop"} or owner in loops:
                lines.append(node.lineno)
    return sorted(lines)


def test_tasks_are_made_only_by_the_supervise_module() -> None:
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).as_posix() != TASKS_OWNED_IN
        for line in bare_tasks(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert found == []


def test_the_task_finder_sees_every_spelling_and_spares_task_groups() -> None:
    tree = ast.parse(
        "import asyncio\nfrom asyncio import ensure_future as ef\n"
        "asyncio.create_task(f())\n"
        "asyncio.ensure_future(f())\n"
        "ef(f())\n"
        "asyncio.get_running_loop().create_task(f())\n"
        "loop.create_task(f())\n"
        "group.create_task(f())\n"
    )
    assert bare_tasks(tree) == [3, 4, 5, 6, 7]
