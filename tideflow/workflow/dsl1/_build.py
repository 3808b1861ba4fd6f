"""Build the :mod:`tideflow.workflow.dsl1.model` from a validated 1.0 document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tideflow.workflow.dsl1._structure import task_kind
from tideflow.workflow.dsl1.model import Task, TaskList, Workflow, freeze

# Where a task keeps nested task lists: (model key, path of the list in the task).
_NESTED: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "do": (("do", ("do",)),),
    "for": (("do", ("do",)),),
    "fork": (("branches", ("fork", "branches")),),
    "try": (("try", ("try",)), ("catch", ("catch", "do"))),
    "listen": (("foreach", ("foreach", "do")),),
}


def task_list(items: Any, reference: str) -> TaskList:
    """The :class:`TaskList` of a list of ``{name: task}`` written at ``reference``."""
    tasks = []
    for index, item in enumerate(items or ()):
        name, body = next(iter(item.items()))
        tasks.append(build_task(str(name), body, f"{reference}/{index}/{name}"))
    return TaskList(tasks=tuple(tasks))


def build_task(name: str, body: Mapping[str, Any], reference: str) -> Task:
    """One task and its nested task lists."""
    kind = task_kind(body) or "do"
    lists = {}
    for key, where in _NESTED.get(kind, ()):
        found: Any = body
        for part in where:
            found = found.get(part) if isinstance(found, Mapping) else None
        if isinstance(found, list):
            lists[key] = task_list(found, f"{reference}/{'/'.join(where)}")
    return Task(name=name, kind=kind, reference=reference, spec=freeze(body), lists=freeze(lists))


def build_workflow(doc: Mapping[str, Any]) -> Workflow:
    """The model of a validated document."""
    document = doc["document"]
    evaluate = doc.get("evaluate") or {}
    return Workflow(
        dsl=str(document["dsl"]),
        namespace=document["namespace"],
        name=document["name"],
        version=str(document["version"]),
        title=document.get("title"),
        summary=document.get("summary"),
        do=task_list(doc["do"], "/do"),
        use=freeze(doc.get("use") or {}),
        input=freeze(doc.get("input")),
        output=freeze(doc.get("output")),
        timeout=freeze(doc.get("timeout")),
        schedule=freeze(doc.get("schedule")),
        evaluate_mode=str(evaluate.get("mode", "strict")),
        document=freeze(doc),
    )
