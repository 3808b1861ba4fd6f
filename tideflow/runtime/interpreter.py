"""The pure, deterministic Serverless Workflow 0.8 interpreter.

:class:`Interpreter` runs one instance of one workflow. Every effect -- calls,
event waits, sleeps, produced events, sub-flows, deadlines, the clock, ids --
goes through the host's :class:`~tideflow.runtime.effects.Effects`; the
interpreter itself does no I/O, reads no clock and draws no random numbers.
Given the same definition, input and effect results it makes the same effect
requests, with the same step keys, in the same order: that is what lets the
durable host replay a journal. It never raises for workflow faults: a run
returns :class:`Completed`, :class:`Failed`, :class:`Terminated` or
:class:`ContinuedAs`, each with the run's timeline. Only host problems
(:class:`~tideflow.errors.HostError`, :class:`~tideflow.errors.StoreError`)
propagate.

Usage::

    result = await Interpreter(workflow).run({"name": "Ada"}, effects)

See ``docs/interpreter.md`` for the rules chosen where 0.8 is silent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from tideflow import limits
from tideflow.errors import (
    ExpressionError,
    FunctionCallError,
    HostError,
    StepTimeout,
    StoreError,
    TideflowError,
    ValueLimitExceeded,
)
from tideflow.isotime import duration_seconds, format_timestamp, parse_timestamp
from tideflow.runtime import timeouts
from tideflow.runtime._context import Compiled, Run, StateCallback, StepCallback
from tideflow.runtime._states import Exit, run_body
from tideflow.runtime._turns import take_turn
from tideflow.runtime.compensation import StateStep, compensate
from tideflow.runtime.effects import Deadline, Effects, Pace, SleepRequest
from tideflow.runtime.result import (
    Completed,
    ContinuedAs,
    Failed,
    Fault,
    RunResult,
    Terminated,
    WorkflowError,
    error_code,
    within_limits,
)
from tideflow.runtime.state import InstanceState
from tideflow.workflow.data_filters import apply_state_filter
from tideflow.workflow.exprtext import is_expression
from tideflow.workflow.model import AnyState, End, Transition, Workflow

__all__ = ["Interpreter"]

_HANDLED = (Fault, StepTimeout, FunctionCallError, ExpressionError)
WORKFLOW_DEADLINE_KEY = "workflow/timeout:workflow"


class Interpreter:
    """Runs instances of one workflow definition (compiled once, reusable).

    One interpreter runs any number of instances, at once too: what belongs
    to one run -- its effects and its callbacks -- is passed to :meth:`run`.

    Args:
        workflow: The validated model.
        secrets: Values for ``$SECRETS`` (the host reads them; the
            interpreter only exposes them to expressions).
        dialect: ``"sonataflow"`` turns on SonataFlow's leniencies: plain
            string arguments that compile as expressions are evaluated, and
            a function called without ``arguments`` receives the state data.
    """

    def __init__(
        self,
        workflow: Workflow,
        *,
        secrets: Mapping[str, Any] | None = None,
        dialect: str | None = None,
    ) -> None:
        self.workflow = workflow
        self.compiled = Compiled.for_workflow(workflow, dialect)
        self.secrets = dict(secrets or {})
        self.constants = self.compiled.constants
        wet = workflow.timeouts.workflow_exec_timeout
        self._wet = wet
        self._wet_seconds = None if wet is None else duration_seconds(wet.duration)
        self._input = self.compiled.input
        self._output = self.compiled.output

    @property
    def sonataflow(self) -> bool:
        """SonataFlow's leniencies are on (``dialect="sonataflow"``); hosts read this too."""
        return self.compiled.sonataflow

    async def run(
        self,
        input: Any,
        effects: Effects,
        *,
        instance_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        on_step: StepCallback | None = None,
        on_state: StateCallback | None = None,
        pace: Pace | None = None,
    ) -> RunResult:
        """Run one instance to its end and return the outcome (never raises for workflow faults).

        Args:
            input: The workflow input.
            effects: The host's effects for this run.
            instance_id: ``$WORKFLOW.instanceId`` (a fresh id by default).
            headers: ``$WORKFLOW.headers``, the filtered headers of the HTTP request
                that started the instance (``{}`` by default: not started over HTTP).
            on_step: Called with every timeline :class:`Step` of this run as it happens.
            on_state: Called with an :class:`InstanceState` on every state entry
                and at the end (for status APIs); costs a little per transition.
            pace: When loops give the event loop a turn (the host's clock); a count
                of iterations when absent.
        """
        seed = effects.new_id()
        started = effects.now()
        variables = {
            "CONST": self.constants,
            "SECRETS": self.secrets,
            "WORKFLOW": self._workflow_variable(instance_id or seed, format_timestamp(started)),
        }
        variables["WORKFLOW"]["headers"] = dict(headers or {})
        if self.sonataflow:  # SonataFlow reads them as $SECRET.name
            variables["SECRET"] = self.secrets
        run = Run(self.compiled, effects, variables, seed, on_step, on_state, pace)
        run.data = {} if input is None else input
        self._top_level_expressions(run)
        deadline = None
        if self._wet_seconds is not None and self._wet is not None and not self._wet.interrupt:
            deadline = started + timedelta(seconds=self._wet_seconds)
        result = within_limits(await self._guarded(run, deadline))
        self._report(run, instance_id or seed, result)
        return replace(result, timeline=tuple(run.timeline))

    def _workflow_variable(self, instance_id: str, start_time: str) -> dict[str, Any]:
        wf = self.workflow
        return {
            "id": wf.identifier,
            "instanceId": instance_id,
            "name": wf.name,
            "version": wf.version,
            "key": wf.key,
            "startTime": start_time,
        }

    def _top_level_expressions(self, run: Run) -> None:
        # 0.8: top-level strings such as `version: "${ .inputVersion }"` are
        # evaluated against the workflow input.
        variable = run.variables["WORKFLOW"]
        for field in ("name", "version"):
            text = variable[field]
            if isinstance(text, str) and is_expression(text):
                try:
                    variable[field] = run.evaluate(text, run.data)
                except ExpressionError:
                    variable[field] = text

    async def _guarded(self, run: Run, deadline: datetime | None) -> RunResult:
        try:
            self._check_input(run)
            if self._wet_seconds is None or deadline is not None:
                return await self._main(run, deadline)
            limit = Deadline(key=WORKFLOW_DEADLINE_KEY, seconds=self._wet_seconds, kind="workflow")
            return await run.effects.within(limit, lambda: self._main(run, None))
        except StepTimeout as exc:
            if exc.kind != "workflow":
                return Failed(error=run.fault(exc, None).error, data=run.data)
            return await self._timed_out(run)
        except Fault as fault:
            run.step("workflow.failed", "failed", fault.error.state, error=fault.error.to_json())
            return Failed(error=fault.error, data=run.data)
        except (HostError, StoreError):
            raise  # the host's problem, not the workflow's: the host decides
        except Exception as exc:  # a run never raises for workflow faults
            message = str(exc) if isinstance(exc, TideflowError) else f"{type(exc).__name__}: {exc}"
            error = WorkflowError(name="error", code=error_code(exc), message=message)
            run.step("workflow.failed", "failed", None, error=error.to_json())
            return Failed(error=error, data=run.data)

    def _check_input(self, run: Run) -> None:
        try:
            limits.check_value(run.data, "the workflow input")
        except ValueLimitExceeded as exc:
            run.data = None  # no writer must meet it
            raise run.fault(exc, None) from None
        problem = self._input.problem(run.data)
        if problem is None:
            return
        error = WorkflowError(name="validation", code="VALIDATION", message=problem)
        if self._input.fail or not isinstance(run.data, dict):
            raise Fault(error, retryable=False)
        run.step("input.invalid", "input", None, error=error.to_json())

    def _check_output(self, run: Run, output: Any, state: str) -> None:
        # SonataFlow's workflow-output-schema: checked when the workflow ends, with
        # the same failOnValidationErrors rule as the input.
        problem = self._output.problem(output)
        if problem is None:
            return
        error = WorkflowError(name="validation", code="VALIDATION", message=problem)
        if self._output.fail:
            raise Fault(error, retryable=False)
        run.step("output.invalid", "output", state, error=error.to_json())

    async def _main(self, run: Run, deadline: datetime | None) -> RunResult:
        state: AnyState = self.workflow.start_state
        data = run.data
        while True:
            # A loop of states without effects (inject/switch) never suspends:
            # other instances and requests on this event loop get their turns.
            await take_turn(run.pace)
            key = run.enter(state.name)
            if run.on_state is not None:
                self._report_state(run, run.on_state, state.name, data)
            output, exit_ = await self.run_state(run, state, data, key)
            _check_data(run, output, state.name)
            run.data = output
            if not isinstance(exit_, Transition):
                return await self._end(run, exit_ or End(), output, key, state.name)
            if exit_.compensate:
                output = await compensate(run, output, self._stepper(run))
                run.data = output
            if exit_.produce_events:
                await run.produce(exit_.produce_events, output, f"{key}/transition", state.name)
            if deadline is not None and run.effects.now() >= deadline:
                return await self._timed_out(run)
            state = self.workflow.state(exit_.next_state)
            data = output

    async def run_state(self, run: Run, state: AnyState, data: Any, key: str) -> tuple[Any, Exit]:
        """Run one state: input filter, body (with its timeout), output filter, onErrors."""
        run.step("state.entered", key, state.name)
        run.data = data
        sdf = state.state_data_filter
        try:
            if sdf is not None and sdf.input:
                data = apply_state_filter(data, sdf.input, run.variables, run.compiled.lang)
                run.data = data
            data, exit_ = await self._body(run, state, data, key)
            if sdf is not None and sdf.output:
                data = apply_state_filter(data, sdf.output, run.variables, run.compiled.lang)
        except _HANDLED as exc:
            if isinstance(exc, StepTimeout) and exc.kind == "workflow":
                raise
            return self._on_error(run, state, run.fault(exc, state.name), key)
        if state.compensated_by is not None:
            run.compensable.append(state.name)
        run.step("state.left", key, state.name)
        return data, exit_ or state.transition or state.end

    async def _body(self, run: Run, state: AnyState, data: Any, key: str) -> tuple[Any, Exit]:
        top = self.workflow.timeouts
        if state.timeouts.state_exec_timeout is None and top.state_exec_timeout is None:
            return await run_body(run, state, data, key)
        total = timeouts.state_total(state.timeouts, top)
        if total is None:
            return await run_body(run, state, data, key)
        limit = Deadline(key=f"{key}/timeout:state", seconds=total, kind="state")
        return await run.effects.within(limit, lambda: run_body(run, state, data, key))

    def _on_error(self, run: Run, state: AnyState, fault: Fault, key: str) -> tuple[Any, Exit]:
        error = fault.error
        for handler in state.on_errors:
            if any(run.compiled.error_matches(ref, error) for ref in handler.errors):
                run.step("error.handled", key, state.name, error=error.to_json())
                return run.data, handler.transition or handler.end or End()
        run.step("error", key, state.name, error=error.to_json())
        raise fault

    def _stepper(self, run: Run) -> StateStep:
        async def step(state: AnyState, data: Any, key: str) -> tuple[Any, Exit]:
            return await self.run_state(run, state, data, key)

        return step

    async def _end(self, run: Run, end: End, output: Any, key: str, state: str) -> RunResult:
        if end.compensate:
            output = await compensate(run, output, self._stepper(run))
            run.data = output
        if end.produce_events:
            await run.produce(end.produce_events, output, f"{key}/end", state)
        if end.continue_as is not None:
            target = end.continue_as
            try:
                new_input = output if target.data is None else run.payload(target.data, output)
            except ExpressionError as exc:
                raise run.fault(exc, state) from None
            wet = target.workflow_exec_timeout
            return ContinuedAs(
                workflow_id=target.workflow_id,
                version=target.version,
                input=new_input,
                workflow_exec_timeout=None if wet is None else wet.duration,
                output=output,
            )
        self._check_output(run, output, state)
        if end.terminate:
            return Terminated(output=output)
        if self.workflow.keep_active:
            return await self._keep_active(run, output)
        return Completed(output=output)

    async def _keep_active(self, run: Run, output: Any) -> RunResult:
        # keepActive: no active path left, yet the instance lives on until
        # workflowExecTimeout (or forever); the host parks it in a sleep.
        seconds = math.inf
        if self._wet is not None and not self._wet.interrupt and self._wet_seconds is not None:
            started = parse_timestamp(run.variables["WORKFLOW"]["startTime"])
            elapsed = (run.effects.now() - started).total_seconds()
            seconds = max(0.0, self._wet_seconds - elapsed)
        run.step("keep_active", "keepActive", None)
        request = SleepRequest(key="keepActive", seconds=seconds, reason="keepActive")
        await run.effects.sleep(request)
        return Completed(output=output)

    async def _timed_out(self, run: Run) -> RunResult:
        run.step("workflow.timeout", WORKFLOW_DEADLINE_KEY, None)
        output = run.data
        if self.workflow.keep_active:
            return Completed(output=output)
        name = self._wet.run_before if self._wet is not None else None
        try:
            while name is not None:
                state = self.workflow.state(name)
                output, exit_ = await self.run_state(run, state, output, run.enter(state.name))
                name = exit_.next_state if isinstance(exit_, Transition) else None
        except Fault as fault:
            return Failed(error=fault.error, data=output)
        return Terminated(output=output, reason="timeout")

    def _report_state(
        self, run: Run, on_state: StateCallback, current: str | None, data: Any
    ) -> None:
        on_state(
            InstanceState(
                instance_id=run.variables["WORKFLOW"]["instanceId"],
                workflow_id=self.workflow.identifier,
                workflow_version=self.workflow.version,
                current_state=current,
                data=data,
                visits=dict(run.visits),
                compensable=tuple(run.compensable),
                seed=run.seed,
                started_at=run.variables["WORKFLOW"]["startTime"],
            )
        )

    def _report(self, run: Run, instance_id: str, result: RunResult) -> None:
        if run.on_state is None:
            return
        error = result.error.to_json() if isinstance(result, Failed) else None
        output = None if isinstance(result, Failed) else result.output
        run.on_state(
            InstanceState(
                instance_id=instance_id,
                workflow_id=self.workflow.identifier,
                workflow_version=self.workflow.version,
                status=result.status,
                data=run.data,
                output=output,
                error=error,
                visits=dict(run.visits),
                compensable=tuple(run.compensable),
                seed=run.seed,
                started_at=run.variables["WORKFLOW"]["startTime"],
            )
        )


def _check_data(run: Run, data: Any, state: str) -> None:
    """Fail the run (keeping its last data) when a state's output is beyond the limits."""
    try:
        limits.check_value(data, f"the output of state {state!r}")
    except ValueLimitExceeded as exc:
        raise run.fault(exc, state) from None
