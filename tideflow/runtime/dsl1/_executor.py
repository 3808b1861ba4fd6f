"""Running task lists and tasks: flow directives, data flow, timeouts, errors.

Order per task (``dsl.md`` §Data Flow): ``if`` on the raw input (a skipped
task passes its input on), ``input.from`` (the result is ``$input``), the
task body, ``output.as`` (on the raw output), ``export.as`` (on the
transformed output; its result replaces ``$context``), then the flow
directive.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from tideflow.errors import HostError, StoreError
from tideflow.runtime._turns import take_turn
from tideflow.runtime.dsl1._extensions import applies, definition_variables, extensions_of
from tideflow.runtime.dsl1._scope import Run, check_schema, evaluate_bool, seconds, transform
from tideflow.runtime.dsl1.errors import Raised, error_from_exception
from tideflow.runtime.effects import Deadline
from tideflow.workflow.dsl1.model import Task, TaskList

Scope = Mapping[str, Any]
"""Variables of enclosing tasks (``$item``, ``$index``, ``$error``, ...)."""
Runner = Callable[["Executor", Task, Any, str, Scope], Awaitable[tuple[Any, str | None]]]
"""A task body: (executor, task, input, step key, scope) -> (raw output, flow override)."""


class End(Exception):
    """Internal: ``then: end`` reached; carries the output the workflow ends with."""

    def __init__(self, output: Any) -> None:
        self.output = output
        super().__init__("end")


class Executor:
    """Runs the tasks of one run (see the module docstring)."""

    def __init__(self, run: Run, runners: Mapping[str, Runner], *, extended: bool = True) -> None:
        """Args:
        run: The run's state.
        runners: The body of each task type.
        extended: Whether ``use.extensions`` apply (not inside extension tasks).
        """
        self.run = run
        self.runners = runners
        self.extensions = extensions_of(run.workflow) if extended else ()
        self._plain: Executor | None = None

    async def run_list(self, tasks: TaskList, data: Any, key: str, scope: Scope) -> Any:
        """Run a task list from its first task, following flow directives; return its output."""
        return (await self.run_list_exiting(tasks, data, key, scope))[0]

    async def run_list_exiting(
        self, tasks: TaskList, data: Any, key: str, scope: Scope
    ) -> tuple[Any, bool]:
        """Like :meth:`run_list`, and whether it ended by ``then: exit``."""
        index = 0
        while index < len(tasks):
            task = tasks.tasks[index]
            data, directive = await self.run_task(task, data, key, scope)
            if directive in (None, "continue"):
                index += 1
            elif directive == "exit":
                return data, True
            elif directive == "end":
                raise End(data)
            else:
                index = tasks.position(directive)
                await take_turn(self.run.pace)  # a `then:` loop of expression tasks
        return data, False

    async def run_task(
        self, task: Task, data: Any, scope_key: str, scope: Scope
    ) -> tuple[Any, str | None]:
        """Run one task with its data flow; return its output and its flow directive."""
        run = self.run
        key = run.enter(scope_key, task.name)
        run.task_started(task)
        condition = task.get("if")
        if condition is not None and not evaluate_bool(
            condition, data, run.variables(task, scope, input=data), task.reference
        ):
            run.step("task.skipped", key, task.name, reference=task.reference)
            return data, None
        run.step("task.started", key, task.name, reference=task.reference)
        if run.on_task is not None:
            run.on_task(task.name, data)
        try:
            output, flow = await self._guarded(task, data, key, scope)
        except Raised as raised:
            run.step("task.faulted", key, task.name, error=raised.error)
            raise
        run.step("task.completed", key, task.name, reference=task.reference)
        return output, flow or task.then

    async def _guarded(
        self, task: Task, data: Any, key: str, scope: Scope
    ) -> tuple[Any, str | None]:
        try:
            return await self._flow(task, data, key, scope)
        except (Raised, End, HostError, StoreError):
            raise
        except Exception as exc:  # effects and expressions fail as 1.0 errors
            raise error_from_exception(exc, task.reference) from None

    async def _flow(self, task: Task, data: Any, key: str, scope: Scope) -> tuple[Any, str | None]:
        run = self.run
        spec = task.get("input")
        if spec is not None:
            check_schema(spec, data, "task input", task.reference)
            if spec.get("from") is not None:
                variables = run.variables(task, scope, input=data)
                data = transform(spec["from"], data, variables, task.reference)
        raw, flow = await self._body(task, data, key, scope)
        output = raw
        spec = task.get("output")
        if spec is None and task.get("export") is None:  # the usual case: no variables needed
            return output, flow
        variables = run.variables(task, scope, input=data)
        with_output = {**variables, "output": raw}
        if spec is not None:
            if spec.get("as") is not None:
                output = transform(spec["as"], raw, with_output, task.reference)
            check_schema(spec, output, "task output", task.reference)
        spec = task.get("export")
        if spec is not None and spec.get("as") is not None:
            context = transform(spec["as"], output, {**with_output, "output": output},
                                task.reference)  # fmt: skip
            check_schema(spec, context, "exported context", task.reference)
            run.context = context
        return output, flow

    async def _body(self, task: Task, data: Any, key: str, scope: Scope) -> tuple[Any, str | None]:
        if not self.extensions:
            return await self._timed(task, data, key, scope)
        variables = definition_variables(self.run.variables(task, scope, input=data), task)
        found = [e for e in self.extensions if applies(e, task, data, variables)]
        plain = self._plain or Executor(self.run, self.runners, extended=False)
        self._plain = plain
        stand_in: tuple[Any, str | None] | None = None
        for ext in found:
            if ext.before is not None and stand_in is None:
                at = f"{key}/extension:{ext.name}/before"
                output, exited = await plain.run_list_exiting(ext.before, data, at, scope)
                stand_in = (output, None) if exited else None
        raw, flow = stand_in or await self._timed(task, data, key, scope)
        for ext in found:
            if ext.after is not None:
                at = f"{key}/extension:{ext.name}/after"
                output, exited = await plain.run_list_exiting(ext.after, raw, at, scope)
                raw = output if exited else raw
        return raw, flow

    async def _timed(self, task: Task, data: Any, key: str, scope: Scope) -> tuple[Any, str | None]:
        runner = self.runners[task.kind]
        limit = self.timeout_seconds(task.get("timeout"), data, task.reference)
        if limit is None:
            return await runner(self, task, data, key, scope)
        deadline = Deadline(key=f"{key}/timeout", seconds=limit, kind="task")
        return await self.run.effects.within(deadline, lambda: runner(self, task, data, key, scope))

    def timeout_seconds(self, timeout: Any, data: Any, instance: str) -> float | None:
        """Seconds of a ``timeout`` (inline or the name of a ``use.timeouts`` entry)."""
        if timeout is None:
            return None
        if isinstance(timeout, str):
            timeout = self.run.workflow.use_entry("timeouts", timeout)
        if not isinstance(timeout, Mapping) or "after" not in timeout:
            return None
        return seconds(timeout["after"], data, self.run.variables(None, {}), instance)
