"""Walks over a 1.0 model: every task, and the ``python:`` functions it calls."""

from __future__ import annotations

from collections.abc import Iterator

from tideflow.errors import PathPart
from tideflow.workflow.dsl1._build import build_task
from tideflow.workflow.dsl1.model import Task, TaskList, Workflow

__all__ = ["pointer_path", "python_calls", "tasks"]


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
