"""The bodies of the 1.0 tasks that need no outside service: set, switch, wait, raise, emit,
and the composite ones: do, for, fork, try.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from tideflow.isotime import format_timestamp
from tideflow.runtime._turns import take_turn
from tideflow.runtime.dsl1._executor import Executor, Scope
from tideflow.runtime.dsl1._scope import (
    evaluate,
    evaluate_bool,
    raise_error,
    seconds,
    template,
)
from tideflow.runtime.dsl1.errors import Raised, matches_filter
from tideflow.runtime.effects import EventEmit, SleepRequest
from tideflow.supervise import scoped
from tideflow.workflow.dsl1.model import Task, thaw

Outcome = tuple[Any, str | None]


def _vars(ex: Executor, task: Task, data: Any, scope: Scope, **more: Any) -> dict[str, Any]:
    return ex.run.variables(task, scope, input=data, **more)


async def run_set(ex: Executor, task: Task, data: Any, key: str, scope: Scope) -> Outcome:
    """``set``: the task's output is the evaluated object (or expression)."""
    body = task.get("set")
    variables = _vars(ex, task, data, scope)
    if isinstance(body, str):
        return evaluate(body, data, variables, task.reference), None
    return template(body, data, variables, task.reference), None


async def run_switch(ex: Executor, task: Task, data: Any, key: str, scope: Scope) -> Outcome:
    """``switch``: the first case whose ``when`` holds (or the default) gives the directive."""
    variables = _vars(ex, task, data, scope)
    for case in task.get("switch"):
        label, body = next(iter(case.items()))
        when = body.get("when")
        if when is None or evaluate_bool(when, data, variables, task.reference):
            ex.run.step("switch.matched", key, task.name, case=label)
            return data, body.get("then")
    return data, None


async def run_wait(ex: Executor, task: Task, data: Any, key: str, scope: Scope) -> Outcome:
    """``wait``: sleep through the host, pass the input on."""
    duration = seconds(task.get("wait"), data, _vars(ex, task, data, scope), task.reference)
    await ex.run.effects.sleep(SleepRequest(key=f"{key}/sleep", seconds=duration))
    return data, None


async def run_raise(ex: Executor, task: Task, data: Any, key: str, scope: Scope) -> Outcome:
    """``raise``: fault with the inline error or the ``use.errors`` entry it names."""
    error = task.get("raise")["error"]
    if isinstance(error, str):
        error = ex.run.workflow.use_entry("errors", error)
    evaluated = template(error, data, _vars(ex, task, data, scope), task.reference)
    raise raise_error(evaluated, task.reference)


async def run_emit(ex: Executor, task: Task, data: Any, key: str, scope: Scope) -> Outcome:
    """``emit``: produce the CloudEvent; the task's output is the event."""
    attributes = task.get("emit")["event"]["with"]
    event = template(attributes, data, _vars(ex, task, data, scope), task.reference)
    event.setdefault("id", ex.run.event_id(key))
    event.setdefault("specversion", "1.0")
    event.setdefault("time", format_timestamp(ex.run.effects.now()))
    if "data" in event:
        event.setdefault("datacontenttype", "application/json")
    await ex.run.effects.emit(EventEmit(key=f"{key}/event", event=event))
    ex.run.step("event.produced", key, task.name, type=event.get("type"))
    return event, None


async def run_do(ex: Executor, task: Task, data: Any, key: str, scope: Scope) -> Outcome:
    """``do``: run the sub-tasks in order; the output is the last one's."""
    return await ex.run_list(task.lists["do"], data, key, scope), None


async def run_for(ex: Executor, task: Task, data: Any, key: str, scope: Scope) -> Outcome:
    """``for``: run ``do`` once per item of ``for.in`` (while ``while`` holds)."""
    loop = task.get("for")
    each, at = loop.get("each", "item"), loop.get("at", "index")
    items = evaluate(loop["in"], data, _vars(ex, task, data, scope), task.reference)
    if items is None:
        items = []
    if isinstance(items, Mapping):
        items = list(items.values())
    if not isinstance(items, list):
        items = [items]
    condition = task.get("while")
    output = data
    for index, item in enumerate(items):
        inner = {**scope, each: item, at: index}
        if condition is not None:
            variables = ex.run.variables(task, inner, input=data)
            if not evaluate_bool(condition, output, variables, task.reference):
                break
        output = await ex.run_list(task.lists["do"], output, f"{key}/iter:{index}", inner)
        await take_turn(ex.run.pace)  # iterations of expressions only never yield
    return output, None


async def run_fork(ex: Executor, task: Task, data: Any, key: str, scope: Scope) -> Outcome:
    """``fork``: branches run concurrently; all outputs in order, or the first (``compete``)."""
    branches = task.lists["branches"].tasks

    async def branch(index: int, sub: Task) -> Any:
        output, _ = await ex.run_task(sub, data, f"{key}/branch:{index}", scope)
        return output

    async with scoped(branch(i, b) for i, b in enumerate(branches)) as runs:
        if not task.get("fork").get("compete", False):
            return list(await asyncio.gather(*runs)), None
        done, _ = await asyncio.wait(runs, return_when=asyncio.FIRST_COMPLETED)
        winner = next(r for r in runs if r in done)  # declaration order breaks ties
        return winner.result(), None


async def run_try(ex: Executor, task: Task, data: Any, key: str, scope: Scope) -> Outcome:
    """``try``/``catch``: handle matching errors, retrying by the policy, then ``catch.do``."""
    catch = task.get("catch") or {}
    attempt = 1
    while True:
        try:
            return await ex.run_list(task.lists["try"], data, f"{key}/try:{attempt}", scope), None
        except Raised as raised:
            error = raised.error
            name = catch.get("as", "error")
            inner = {**scope, name: error}
            if not _caught(ex, task, catch, error, data, inner):
                raise
            ex.run.step("error.caught", key, task.name, error=error, attempt=attempt)
            delay = _retry_delay(ex, task, catch, error, data, inner, attempt, key)
            if delay is None:
                break
            ex.run.step("retry", key, task.name, attempt=attempt + 1, delay=delay,
                        reference=task.reference)  # fmt: skip
            request = SleepRequest(key=f"{key}/attempt:{attempt}/backoff", seconds=delay,
                                   reason="retry")  # fmt: skip
            await ex.run.effects.sleep(request)
            attempt += 1
    handler = task.lists.get("catch")
    if handler is None:
        return data, None
    return await ex.run_list(handler, data, f"{key}/catch", inner), None


def _caught(ex: Executor, task: Task, catch: Any, error: Any, data: Any, inner: Scope) -> bool:
    errors = catch.get("errors") or {}
    if not matches_filter(error, thaw(errors.get("with"))):
        return False
    variables = ex.run.variables(task, inner, input=data)
    when, except_when = catch.get("when"), catch.get("exceptWhen")
    if when is not None and not evaluate_bool(when, data, variables, task.reference):
        return False
    return except_when is None or not evaluate_bool(except_when, data, variables, task.reference)


def _retry_delay(
    ex: Executor, task: Task, catch: Any, error: Any, data: Any, inner: Scope, attempt: int,
    key: str,
) -> float | None:  # fmt: skip
    """Seconds to wait before the next attempt, or ``None`` when the policy says stop."""
    policy = catch.get("retry")
    if isinstance(policy, str):
        policy = ex.run.workflow.use_entry("retries", policy)
    if not isinstance(policy, Mapping):
        return None
    variables = ex.run.variables(task, inner, input=data)
    when, except_when = policy.get("when"), policy.get("exceptWhen")
    if when is not None and not evaluate_bool(when, data, variables, task.reference):
        return None
    if except_when is not None and evaluate_bool(except_when, data, variables, task.reference):
        return None
    limit = (policy.get("limit") or {}).get("attempt") or {}
    count = limit.get("count")
    if count is not None and attempt > int(count):
        return None
    return _backoff(ex, policy, data, variables, task.reference, attempt, key)


def _backoff(
    ex: Executor, policy: Any, data: Any, variables: Any, instance: str, attempt: int, key: str
) -> float:
    base = seconds(policy["delay"], data, variables, instance) if "delay" in policy else 0.0
    backoff = policy.get("backoff") or {}
    if "linear" in backoff:
        increment = backoff["linear"].get("increment")
        step = seconds(increment, data, variables, instance) if increment is not None else base
        delay = base + step * (attempt - 1)
    elif "exponential" in backoff:
        factor = float(backoff["exponential"].get("factor", 2))
        delay = base * factor ** (attempt - 1)
    else:
        delay = base
    jitter = policy.get("jitter")
    if jitter is not None:
        low = seconds(jitter["from"], data, variables, instance)
        high = seconds(jitter["to"], data, variables, instance)
        delay += low + (high - low) * ex.run.fraction(f"{key}/jitter:{attempt}")
    return delay
