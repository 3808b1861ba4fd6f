"""``use.extensions``: task lists run before and after the tasks they extend.

An extension applies to the tasks of its ``extend`` type (``all`` for every
task, ``composite`` for ``do`` and ``fork``) whose input satisfies ``when``
(evaluated with ``$task`` bound to the extended task's definition, as the
specification's examples use it). ``before`` runs with the task's input and
``after`` with its output, each without changing them -- unless the list
ends with ``then: exit``: ``before`` then stands in for the task (its output
is the task's; the ``before`` of later extensions do not run, their ``after``
do), ``after`` replaces the task's output. Extension tasks are
not extended themselves. A ``when`` that cannot be evaluated on a task (it
is written against every task of a type, whatever its shape: the spec's own
mock example applies ``startswith`` to an endpoint that may be an object)
does not apply to that task.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tideflow.errors import ExpressionError
from tideflow.workflow.dsl1._build import task_list
from tideflow.workflow.dsl1.model import Task, TaskList, Workflow, thaw
from tideflow.workflow.expressions import compile_expression

COMPOSITE = ("do", "fork")


@dataclass(frozen=True, slots=True)
class Extension:
    """One entry of ``use.extensions``."""

    name: str
    extend: str
    when: str | None
    before: TaskList | None
    after: TaskList | None

    def applies_to(self, task: Task) -> bool:
        """Whether the extension's ``extend`` names the task's type."""
        if self.extend == "all":
            return True
        return task.kind in COMPOSITE if self.extend == "composite" else task.kind == self.extend


def extensions_of(workflow: Workflow) -> tuple[Extension, ...]:
    """The workflow's extensions, their task lists built once."""
    found = []
    for index, item in enumerate(workflow.use.get("extensions") or ()):
        name, body = next(iter(item.items()))
        where = f"/use/extensions/{index}/{name}"
        lists = {
            part: task_list(thaw(body[part]), f"{where}/{part}") if part in body else None
            for part in ("before", "after")
        }
        found.append(Extension(name, str(body["extend"]), body.get("when"), **lists))
    return tuple(found)


def applies(extension: Extension, task: Task, data: Any, variables: Mapping[str, Any]) -> bool:
    """Whether ``extension`` extends ``task`` run with input ``data``."""
    if not extension.applies_to(task):
        return False
    if extension.when is None:
        return True
    try:
        return compile_expression(extension.when).evaluate(data, variables) not in (False, None)
    except ExpressionError:
        return False


def definition_variables(variables: Mapping[str, Any], task: Task) -> dict[str, Any]:
    """``variables`` with ``$task`` bound to the task's definition (for ``when``)."""
    return {**variables, "task": thaw(task.spec)}
