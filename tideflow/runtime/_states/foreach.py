"""ForEach state: run the actions once per element of ``inputCollection``.

Rules where 0.8 is loose (Tideflow's choices, see docs/interpreter.md):

* each iteration sees the state data with the element added under
  ``iterationParam`` (default ``item``), so expressions can read both --
  except the collection itself when ``inputCollection`` is a top-level key
  (``${ .items }``) that no expression of the iteration mentions: handing
  every iteration the whole collection again would make large loops
  quadratic (each jq evaluation serialises its input);
* an iteration's result is the merge of its actions' results (after each
  action's ``results`` filter), and later actions of the same iteration see
  the earlier ones' results merged into the iteration data (object results
  only: a scalar result never replaces the iteration data);
* with ``outputCollection`` the results are appended, in collection order, to
  the array at that location (created when missing); without it the state
  data is left unchanged;
* ``mode: parallel`` (default) runs at most ``batchSize`` iterations at a
  time (all when absent), batch after batch; ``sequential`` one at a time.
"""

from __future__ import annotations

import re
from typing import Any

from tideflow import limits
from tideflow.errors import ExpressionError, ValueLimitExceeded
from tideflow.runtime._actions import invoke_action, is_skipped, merge_result
from tideflow.runtime._context import Run
from tideflow.runtime._states.basic import scope as state_scope
from tideflow.runtime._turns import gather_in_turns, take_turn
from tideflow.workflow.data_filters import filter_action_result, get_at, merge, put_at
from tideflow.workflow.model import End, ForEachState, Transition

DEFAULT_ITERATION_PARAM = "item"


_TOP_KEY = re.compile(r"^\$\{\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*\}$|^\.([A-Za-z_][A-Za-z0-9_]*)$")


# `${ . }`, `.` or `${ . | ... }` hand over the whole data: keep the collection then.
_WHOLE_DATA = re.compile(r"\$\{\s*\.\s*[}|]|'\.'")


def _base_data(run: Run, state: ForEachState, data: Any) -> Any:
    """The state data every iteration starts from (see the module docstring)."""
    if not isinstance(data, dict):
        return {}
    if run.compiled.sonataflow:
        return data
    match = _TOP_KEY.match(state.input_collection.strip())
    if match is None:
        return data
    name = match.group(1) or match.group(2)
    mentioned = repr(state.actions) + repr(run.compiled.fn_ops)
    if name in mentioned or name not in data or _WHOLE_DATA.search(mentioned):
        return data
    return {k: v for k, v in data.items() if k != name}


async def _iteration(
    run: Run, state: ForEachState, data: Any, element: Any, key: str, param: str
) -> Any:
    if run.compiled.sonataflow:
        return await _sonataflow_iteration(run, state, data, element, key, param)
    scope = state_scope(run, state)
    item_data = {**data, param: element}
    output: Any = None
    for index, action in enumerate(state.actions):
        result = await invoke_action(run, action, item_data, f"{key}/action:{index}", scope)
        if is_skipped(result) or not action.action_data_filter.use_results:
            continue
        merged = merge_result(run, action, item_data, result, scope)
        if isinstance(merged, dict):  # a scalar result must not replace the iteration's data
            item_data = merged
        try:
            selected = filter_action_result(
                result, action.action_data_filter.results, run.variables, run.compiled.lang
            )
        except ExpressionError as exc:
            raise run.fault(exc, state.name) from None
        if selected is not None:
            output = selected if output is None else merge(output, selected)
    return output


async def _sonataflow_iteration(
    run: Run, state: ForEachState, data: Any, element: Any, key: str, param: str
) -> Any:
    """SonataFlow's iteration (``ForEachStateHandler``): the element is the jq variable
    ``$<iterationParam>``, not part of the data; every action sees the state data and
    its result (after its ``results`` filter) replaces the iteration's output, which
    the next action reads as ``$WORKFLOW.prevActionResult``."""
    scope = state_scope(run, state)
    workflow = run.variables.get("WORKFLOW") or {}
    output: Any = None
    for index, action in enumerate(state.actions):
        here = run.with_variables(
            {param: element, "WORKFLOW": {**workflow, "prevActionResult": output}}
        )
        result = await invoke_action(here, action, data, f"{key}/action:{index}", scope)
        if is_skipped(result) or not action.action_data_filter.use_results:
            continue
        try:
            output = filter_action_result(
                result, action.action_data_filter.results, here.variables, run.compiled.lang
            )
        except ExpressionError as exc:
            raise run.fault(exc, state.name) from None
    return output


def _collection(run: Run, state: ForEachState, data: Any) -> list[Any]:
    try:
        items = run.evaluate(state.input_collection, data)
    except ExpressionError as exc:
        raise run.fault(exc, state.name) from None
    if not isinstance(items, list):
        raise run.expression_fault(
            f"inputCollection {state.input_collection!r} is not an array "
            f"(got {type(items).__name__})",
            state.name,
        )
    most = limits.current().foreach_items
    if len(items) > most:
        too_many = ValueLimitExceeded(
            f"FOREACH_ITEMS_LIMIT: inputCollection {state.input_collection!r} has "
            f"{len(items)} items, more than {most}",
            limit="foreach_items",
        )
        raise run.fault(too_many, state.name)
    return items


def _batch_size(run: Run, state: ForEachState, data: Any, total: int) -> int:
    if state.mode == "sequential":
        return 1
    value = state.batch_size
    if value is None:
        return max(1, total)
    try:
        if isinstance(value, str) and not value.strip().isdigit():
            value = run.evaluate(value, data)
        return max(1, int(value))
    except (ExpressionError, TypeError, ValueError) as exc:
        raise run.expression_fault(f"batchSize {value!r}: {exc}", state.name) from None


async def foreach(
    run: Run, state: ForEachState, data: Any, key: str
) -> tuple[Any, Transition | End | None]:
    """Iterate and collect the results."""
    items = _collection(run, state, data)
    param = state.iteration_param or DEFAULT_ITERATION_PARAM
    size = _batch_size(run, state, data, len(items))
    base = _base_data(run, state, data)
    outputs: list[Any] = []
    for start in range(0, len(items), size):
        batch = items[start : start + size]
        if len(batch) == 1:
            one = await _iteration(run, state, base, batch[0], f"{key}/iter:{start}", param)
            outputs.append(one)
        else:
            coros = [
                _iteration(run, state, base, element, f"{key}/iter:{start + offset}", param)
                for offset, element in enumerate(batch)
            ]
            outputs.extend(await gather_in_turns(coros, run.pace))
        await take_turn(run.pace)  # iterations of expressions only never yield by themselves
    if state.output_collection is None:
        return data, None
    return _collect(run, state, data, outputs), None


def _collect(run: Run, state: ForEachState, data: Any, outputs: list[Any]) -> Any:
    text = state.output_collection or ""
    try:
        path = run.compiled.expr(text).path(data, run.variables)
        existing = get_at(data, path)
        values = [o for o in outputs if o is not None]
        current = list(existing) if isinstance(existing, list) else []
        return put_at(data, text, current + values, run.variables, run.compiled.lang)
    except ExpressionError as exc:
        raise run.fault(exc, state.name) from None
