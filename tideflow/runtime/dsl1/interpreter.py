"""The pure, deterministic Serverless Workflow DSL 1.0 interpreter.

:class:`Interpreter` runs one instance of one 1.0 workflow on the same
:class:`~tideflow.runtime.effects.Effects` as the 0.8 interpreter, so every
host runs both. It does no I/O, reads no clock of its own and draws no random
numbers: given the same definition, input and effect results it makes the
same effect requests with the same step keys in the same order. Step keys
follow the task tree: ``do/0/greet`` style names become ``greet``,
``loop/iter:2/mark``, ``race/branch:1/fast``, ``guard/try:2/fetch``; a task
entered again in the same scope gets ``#2``, ``#3``.

A run returns :class:`~tideflow.runtime.result.Completed` or
:class:`~tideflow.runtime.result.Failed` (never raises for workflow faults).
A failed run's :class:`~tideflow.runtime.result.WorkflowError` carries the
1.0 error (Problem Details) in ``details``; ``name`` is its standard type's
last word (``communication``, ``timeout``, ...) or ``error``, ``code`` its
status, ``state`` the faulted task's JSON Pointer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tideflow import __version__
from tideflow.errors import HostError, StoreError
from tideflow.runtime.dsl1 import _calls, _listen, _tasks
from tideflow.runtime.dsl1._executor import End, Executor, Runner
from tideflow.runtime.dsl1._scope import (
    Run,
    check_schema,
    moment_of,
    reads_task_started_at,
    transform,
)
from tideflow.runtime.dsl1.errors import Raised, error_from_exception
from tideflow.runtime.effects import Deadline, Effects, Pace
from tideflow.runtime.result import (
    Completed,
    Failed,
    RunResult,
    Step,
    WorkflowError,
    within_limits,
)
from tideflow.runtime.state import InstanceState
from tideflow.workflow.dsl1.model import Workflow, thaw

__all__ = ["RUNTIME", "Interpreter"]

RUNNERS: Mapping[str, Runner] = {
    "call": _calls.run_call,
    "do": _tasks.run_do,
    "emit": _tasks.run_emit,
    "for": _tasks.run_for,
    "fork": _tasks.run_fork,
    "listen": _listen.run_listen,
    "raise": _tasks.run_raise,
    "run": _calls.run_run,
    "set": _tasks.run_set,
    "switch": _tasks.run_switch,
    "try": _tasks.run_try,
    "wait": _tasks.run_wait,
}
RUNTIME = {"name": "tideflow", "version": __version__, "metadata": {}}
"""``$runtime``."""
WORKFLOW_DEADLINE_KEY = "workflow/timeout"


class Interpreter:
    """Runs instances of one 1.0 workflow definition.

    One interpreter runs any number of instances; the callbacks of a run are
    passed to :meth:`run` (as for the 0.8 interpreter).

    Args:
        workflow: The validated model.
        secrets: Values for ``$secrets``.
    """

    def __init__(
        self,
        workflow: Workflow,
        *,
        secrets: Mapping[str, Any] | None = None,
    ) -> None:
        self.workflow = workflow
        self.secrets = dict(secrets or {})
        self.constants: Mapping[str, Any] = {}
        """1.0 has no constants; hosts read this as they do for 0.8."""
        self.sonataflow = False
        """1.0 has no dialects; hosts read this as they do for 0.8."""
        self._definition = thaw(workflow.document)  # $workflow.definition, read-only
        self._task_definitions: dict[str, Any] = {}
        self._task_moments = reads_task_started_at(self._definition)

    async def run(
        self,
        input: Any,
        effects: Effects,
        *,
        instance_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        on_step: Callable[[Step], None] | None = None,
        on_state: Callable[[InstanceState], None] | None = None,
        pace: Pace | None = None,
    ) -> RunResult:
        """Run one instance to its end and return the outcome (never raises for workflow faults).

        ``headers`` (the start request's, 0.8's ``$WORKFLOW.headers``) are not read:
        DSL 1.0 has no such variable.

        ``on_step`` is told of every timeline step of this run as it happens;
        ``on_state`` of the task each top-level or nested task starts with its
        input (``current_state`` is the task's name), for status APIs; ``pace``
        decides when loops give the event loop a turn (a count when absent).
        """
        seed = effects.new_id()
        started = effects.now()
        raw = {} if input is None else input
        moment = moment_of(started)
        base = {
            "workflow": {
                "id": instance_id or seed,
                "definition": self._definition,
                "input": raw,
                "startedAt": moment,
            },
            "runtime": RUNTIME,
            "secrets": self.secrets,
        }
        run = Run(self.workflow, effects, seed, base, on_step=on_step,
                  definitions=self._task_definitions,
                  task_moments=self._task_moments)  # fmt: skip
        if pace is not None:
            run.pace = pace
        if on_state is not None:
            run.on_task = _reporter(on_state, self.workflow, instance_id or seed, seed)
        executor = Executor(run, RUNNERS)
        try:
            output = await self._timed(executor, raw)
        except (HostError, StoreError):
            raise
        except Raised as raised:
            return self._failed(run, raised.error)
        except Exception as exc:  # a run never raises for workflow faults
            return self._failed(run, error_from_exception(exc, "/").error)
        run.step("workflow.completed", "workflow", None)
        return within_limits(Completed(output=output, timeline=tuple(run.timeline)))

    async def _timed(self, executor: Executor, raw: Any) -> Any:
        limit = executor.timeout_seconds(self.workflow.timeout, raw, "/")
        if limit is None:
            return await self._main(executor, raw)
        deadline = Deadline(key=WORKFLOW_DEADLINE_KEY, seconds=limit, kind="workflow")
        return await executor.run.effects.within(deadline, lambda: self._main(executor, raw))

    async def _main(self, executor: Executor, raw: Any) -> Any:
        run = executor.run
        variables = run.variables(None, {}, input=raw)
        data = raw
        spec = self.workflow.input
        if spec is not None:
            check_schema(spec, raw, "workflow input", "/")
            if spec.get("from") is not None:
                data = transform(spec["from"], raw, variables, "/")
        try:
            output = await executor.run_list(self.workflow.do, data, "", {})
        except End as end:
            output = end.output
        spec = self.workflow.output
        if spec is not None:
            if spec.get("as") is not None:
                output = transform(spec["as"], output, {**variables, "output": output}, "/")
            check_schema(spec, output, "workflow output", "/")
        return output

    def _failed(self, run: Run, error: Mapping[str, Any]) -> Failed:
        kind = str(error.get("type", ""))
        name = kind.rsplit("/", 1)[-1] if "serverlessworkflow.io" in kind else "error"
        status = error.get("status")
        failure = WorkflowError(
            name=name or "error",
            code=None if status is None else str(status),
            message=str(error.get("detail") or error.get("title") or kind),
            state=str(error.get("instance")) if error.get("instance") is not None else None,
            details=dict(error),
        )
        run.step("workflow.failed", "workflow", None, error=dict(error))
        return Failed(error=failure, data=None, timeline=tuple(run.timeline))


def _reporter(
    on_state: Callable[[InstanceState], None], workflow: Workflow, instance_id: str, seed: str
) -> Callable[[str, Any], None]:
    def report(task: str, data: Any) -> None:
        on_state(
            InstanceState(
                instance_id=instance_id,
                workflow_id=workflow.identifier,
                workflow_version=workflow.version,
                current_state=task,
                data=data,
                seed=seed,
            )
        )

    return report
