"""Walks over a 1.0 model: every task, the ``python:`` functions it calls, the calls
Tideflow does not run."""

from __future__ import annotations

from collections.abc import Iterator

from tideflow.errors import PathPart
from tideflow.workflow.dsl1._build import build_task
from tideflow.workflow.dsl1._structure import MCP_STDIO, mcp_stdio
from tideflow.workflow.dsl1.model import Task, TaskList, Workflow

__all__ = ["MCP_STDIO", "mcp_stdio", "not_run_calls", "pointer_path", "python_calls",
           "script_runs", "tasks"]  # fmt: skip


def _list(tasks_: TaskList) -> Iterator[Task]:
    for task in tasks_.tasks:
        yield task
        for nested in task.lists.values():
            yield from _list(nested)


def tasks(workflow: Workflow) -> Iterator[Task]:
    """Every task of the workflow, nested ones too, then the ``use.functions`` tasks."""
    yield from _list(workflow.do)
    for name, body in (workflow.use.get("functions") or {}).items():
        function = build_task(name, body, f"/use/functions/{name}")
        yield function
        for nested in function.lists.values():
            yield from _list(nested)


def pointer_path(reference: str) -> tuple[PathPart, ...]:
    """``/do/0/greet`` as a problem path ``("do", 0, "greet")``."""
    parts = reference.strip("/").split("/") if reference.strip("/") else []
    return tuple(int(p) if p.isdigit() else p for p in parts)


def python_calls(workflow: Workflow) -> list[tuple[tuple[PathPart, ...], str]]:
    """``(path of the call, operation)`` of every ``call: python:module:function``."""
    return [
        ((*pointer_path(task.reference), "call"), str(task.get("call")))
        for task in tasks(workflow)
        if task.kind == "call" and str(task.get("call", "")).startswith("python:")
    ]


def script_runs(workflow: Workflow) -> list[tuple[PathPart, ...]]:
    """The path of every ``run: script`` (its ``script`` member)."""
    return [
        (*pointer_path(task.reference), "run", "script")
        for task in tasks(workflow)
        if task.kind == "run" and "script" in (task.get("run") or {})
    ]


def not_run_calls(workflow: Workflow) -> list[tuple[tuple[PathPart, ...], str]]:
    """``(path of the call, why)`` of every call Tideflow does not run.

    ``call: mcp`` over ``transport.stdio`` (the path names the transport), and
    functions of a catalog (``name:version@catalog``, not fetched).
    """
    found = []
    for task in tasks(workflow):
        name = str(task.get("call", "")) if task.kind == "call" else ""
        path = (*pointer_path(task.reference), "call")
        if name == "mcp" and mcp_stdio(task.get("with")):
            path, reason = (*path[:-1], "with", "transport", "stdio"), MCP_STDIO
        elif (
            "@" in name
            and not name.startswith("python:")
            and workflow.use_entry("functions", name) is None  # not read from a catalog
        ):
            reason = "functions of a catalog are not supported by Tideflow yet (not fetched)"
        else:
            continue
        found.append((path, reason))
    return found
