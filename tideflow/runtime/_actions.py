"""Running actions: condition, sleeps, invocation with retries, result merging.

Internal. Actions of one list run sequentially (each sees the data the
previous ones produced) or in parallel (all see the same data; results are
merged in definition order once all finished, so the outcome never depends
on which call returned first).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from tideflow.errors import ExpressionError, FunctionCallError, StepTimeout
from tideflow.isotime import duration_seconds
from tideflow.runtime import _invoke
from tideflow.runtime._context import Run
from tideflow.runtime.effects import SleepRequest
from tideflow.runtime.result import Fault, WorkflowError
from tideflow.runtime.retry import AUTO_RETRY_POLICY, RetryPolicy, backoff_seconds, unit_draw
from tideflow.supervise import scoped
from tideflow.workflow.data_filters import (
    filter_action_input,
    filter_action_result,
    merge,
    merge_action_result,
)
from tideflow.workflow.model import Action

_SKIPPED = object()


@dataclass(frozen=True, slots=True)
class Scope:
    """Where actions run: the state's name and the timeouts that apply.

    Attributes:
        state: Name of the state (for errors and the timeline).
        action_timeout: actionExecTimeout in seconds (``None`` = unlimited).
    """

    state: str
    action_timeout: float | None = None


async def run_actions(
    run: Run, actions: tuple[Action, ...], mode: str, data: Any, key: str, scope: Scope
) -> Any:
    """Run ``actions`` and return the state data with their results merged."""
    if mode == "parallel" and len(actions) > 1:
        tasks = [
            invoke_action(run, action, data, f"{key}/action:{i}", scope)
            for i, action in enumerate(actions)
        ]
        results = await gather_all(tasks)
        for action, result in zip(actions, results, strict=True):
            data = merge_result(run, action, data, result, scope)
        return data
    for i, action in enumerate(actions):
        result = await invoke_action(run, action, data, f"{key}/action:{i}", scope)
        data = merge_result(run, action, data, result, scope)
    return data


async def gather_all(coros: list[Any]) -> list[Any]:
    """Await all; on the first failure cancel the others and raise it."""
    async with scoped(coros) as tasks:
        return list(await asyncio.gather(*tasks))


def merge_result(run: Run, action: Action, data: Any, result: Any, scope: Scope) -> Any:
    """Merge one action's result into ``data`` per its action data filter."""
    if result is _SKIPPED:
        return data
    adf = action.action_data_filter
    try:
        if run.compiled.sonataflow and adf.use_results and adf.to_state_data is None:
            return _sonataflow_merge(run, data, result, adf.results)
        return merge_action_result(
            data,
            result,
            adf.results,
            adf.to_state_data,
            adf.use_results,
            run.variables,
            run.compiled.lang,
        )
    except ExpressionError as exc:
        raise run.fault(exc, scope.state) from None


def _sonataflow_merge(run: Run, data: Any, result: Any, results: str | None) -> Any:
    """SonataFlow's ``MergeUtils.merge`` of a result into object state data: a value that
    is not an object goes under ``response`` (0.8 leaves it undefined; strict replaces),
    except into empty data, which it replaces."""
    selected = filter_action_result(result, results, run.variables, run.compiled.lang)
    if selected is None or isinstance(selected, dict) or not isinstance(data, dict) or not data:
        return merge_action_result(data, selected, None, None, True, run.variables)
    return merge(data, {"response": selected})


def is_skipped(result: Any) -> bool:
    """Whether :func:`invoke_action` skipped the action (false condition)."""
    return result is _SKIPPED


async def invoke_action(run: Run, action: Action, data: Any, key: str, scope: Scope) -> Any:
    """Run one action (condition, sleeps, retries) and return its raw result.

    Returns ``_SKIPPED`` when the condition is false, ``None`` for async
    invocations.

    Raises:
        Fault: The action failed (after retries).
    """
    label = action.name or action.id
    try:
        if action.condition is not None and not run.condition(action.condition, data):
            run.step("action.skipped", key, scope.state, action=label)
            return _SKIPPED
        action_data = filter_action_input(
            data, action.action_data_filter.from_state_data, run.variables, run.compiled.lang
        )
    except ExpressionError as exc:
        raise run.fault(exc, scope.state) from None
    sleep = action.sleep if action.event_ref is None else None
    if sleep is not None and sleep.before:
        await _sleep(run, f"{key}/sleep:before", sleep.before, "before")
    result = await _with_retries(run, action, action_data, key, scope)
    if sleep is not None and sleep.after:
        await _sleep(run, f"{key}/sleep:after", sleep.after, "after")
    return result


async def _sleep(run: Run, key: str, duration: str, reason: str) -> None:
    seconds = duration_seconds(duration)
    await run.effects.sleep(SleepRequest(key=key, seconds=seconds, reason=reason))


def _policy(run: Run, action: Action, fault: Fault, state: str) -> RetryPolicy | None:
    """The retry policy for this failure, or ``None`` when it is not retried."""
    compiled = run.compiled
    policy = None
    if action.retry_ref is not None:
        problem = compiled.retry_problems.get(action.retry_ref)
        if problem is not None:
            error = WorkflowError(
                name="validation", code="VALIDATION", message=problem, state=state
            )
            raise Fault(error, retryable=False)
        policy = compiled.retry_policies.get(action.retry_ref)
    if run.workflow.auto_retries:
        if any(compiled.error_matches(ref, fault.error) for ref in action.non_retryable_errors):
            return None
        listed = any(compiled.error_matches(ref, fault.error) for ref in action.retryable_errors)
        if not fault.retryable and not listed:
            return None
        return policy or AUTO_RETRY_POLICY
    if policy is None:
        return None
    if any(compiled.error_matches(ref, fault.error) for ref in action.retryable_errors):
        return policy
    return None


def _is_async(action: Action) -> bool:
    ref = action.function_ref or action.event_ref or action.sub_flow_ref
    return ref is not None and ref.invoke == "async"


async def _with_retries(run: Run, action: Action, data: Any, key: str, scope: Scope) -> Any:
    label = action.name or action.id
    if _is_async(action):
        first = f"{key}/attempt:1"
        run.step("action.started", first, scope.state, action=label, attempt=1, invoke="async")
        await _invoke.invoke(run, action, data, first, scope, 1)
        run.step("action.completed", first, scope.state, action=label, attempt=1, invoke="async")
        return None
    attempt = 1
    while True:
        attempt_key = f"{key}/attempt:{attempt}"
        run.step("action.started", attempt_key, scope.state, action=label, attempt=attempt)
        try:
            result = await _invoke.invoke(run, action, data, attempt_key, scope, attempt)
        except (FunctionCallError, StepTimeout, ExpressionError, Fault) as exc:
            fault = run.fault(exc, scope.state)
            run.step("action.failed", attempt_key, scope.state, error=fault.error.to_json())
            policy = (
                None
                if isinstance(exc, ExpressionError)
                else _policy(run, action, fault, scope.state)
            )
            if policy is None or not policy.allows(attempt):
                raise fault from None
            delay = backoff_seconds(policy, attempt, unit_draw(run.seed, attempt_key))
            run.step("retry", attempt_key, scope.state, delay=delay, next_attempt=attempt + 1)
            backoff = SleepRequest(key=f"{attempt_key}/backoff", seconds=delay, reason="retry")
            await run.effects.sleep(backoff)
            attempt += 1
            continue
        run.step("action.completed", attempt_key, scope.state, action=label, attempt=attempt)
        return result
