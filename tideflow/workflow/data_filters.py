"""Data filters and merging, as Serverless Workflow 0.8 defines them ("Workflow Data").

Pure functions over JSON values: no I/O, and inputs are never mutated. A
result may share unchanged sub-values with its inputs, so treat JSON values
as immutable (copy before changing one in place).

Each function takes the raw filter fields as written in the definition
(expression strings, ``None`` when absent), the data, the variables visible
to expressions (``$CONST``, ``$SECRETS``, ``$WORKFLOW``) and the workflow's
expression language. Expressions are compiled on first use and cached.

Merge rules (spec "Data Merging", with Tideflow's choices where it is silent):

* object into object: key by key, recursively; the incoming value wins;
* array into array: the elements of both, in order, each distinct element once;
* anything else (numbers, strings, booleans, null, and mismatched types such as
  a string result merged into object state data): the incoming value replaces
  the existing one;
* nothing to merge (a filter selected ``null`` or nothing): the state data is
  left unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from tideflow.errors import ExpressionError, LimitExceeded, PathPart
from tideflow.workflow.expressions import compile_expression

__all__ = [
    "apply_state_filter",
    "event_filter_input",
    "filter_action_input",
    "filter_action_result",
    "filter_event_data",
    "get_at",
    "merge",
    "merge_action_result",
    "merge_at",
    "merge_event_data",
    "put_at",
    "set_path",
]

Variables = Mapping[str, Any] | None


def _evaluate(text: str, data: Any, variables: Variables, lang: str) -> Any:
    return compile_expression(text, lang).evaluate(data, variables)


# -- merging -----------------------------------------------------------------


def _identity(value: Any) -> Any:
    """A hashable key under which equal JSON values (and only those) collide."""
    if isinstance(value, bool):
        return ("b", value)
    if value is None or isinstance(value, int | float | str):
        return ("v", value)  # 1 == 1.0 in JSON as in Python
    return ("j", json.dumps(value, sort_keys=True, separators=(",", ":"), default=str))


def _union(target: Sequence[Any], source: Sequence[Any]) -> list[Any]:
    seen: set[Any] = set()
    out: list[Any] = []
    for item in (*target, *source):
        key = _identity(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def merge(target: Any, source: Any) -> Any:
    """Merge ``source`` (event data, action result) into ``target`` (state data).

    Args:
        target: The existing value; ``None`` means there is none yet.
        source: The incoming value.

    Returns:
        Objects merged key by key (recursively, ``source`` wins on conflicts);
        arrays concatenated keeping each distinct element once (``target``'s
        first); otherwise ``source``.
    """
    if isinstance(target, Mapping) and isinstance(source, Mapping):
        out = dict(target)
        for key, value in source.items():
            out[key] = merge(out[key], value) if key in out else value
        return out
    if isinstance(target, list) and isinstance(source, list):
        return _union(target, source)
    return source


# -- locations -----------------------------------------------------------------


def get_at(data: Any, path: Sequence[PathPart]) -> Any:
    """Read the value at ``path``; ``None`` where any step is missing."""
    for step in path:
        if isinstance(step, str) and isinstance(data, Mapping):
            data = data.get(step)
        elif isinstance(step, int) and isinstance(data, list) and -len(data) <= step < len(data):
            data = data[step]
        else:
            return None
    return data


def _describe(path: Sequence[PathPart]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path) or "."


def set_path(data: Any, path: Sequence[PathPart], value: Any) -> Any:
    """Return a copy of ``data`` with ``value`` at ``path``, creating objects and arrays.

    Missing objects are created for key steps and arrays for index steps;
    arrays are padded with ``null`` up to an index past their end (as jq's
    ``setpath`` does).

    Raises:
        ExpressionError: A step goes through a value that is not a container
            of the right kind (a key inside a string, an index inside an object).
    """
    return _set(data, tuple(path), 0, value)


def _set(data: Any, path: tuple[PathPart, ...], depth: int, value: Any) -> Any:
    if depth == len(path):
        return value
    step = path[depth]
    if isinstance(step, str):
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ExpressionError(
                f"cannot set key {step!r} at {_describe(path[:depth])}: "
                f"it holds {type(data).__name__}, not an object"
            )
        out = dict(data)
        out[step] = _set(data.get(step), path, depth + 1, value)
        return out
    if data is None:
        data = []
    if not isinstance(data, list) or (step < 0 and -step > len(data)):
        raise ExpressionError(
            f"cannot set index {step} at {_describe(path[:depth])}: "
            f"it holds {type(data).__name__ if not isinstance(data, list) else 'a shorter array'}"
        )
    items = list(data)
    if step >= len(items):
        items.extend([None] * (step + 1 - len(items)))
    items[step] = _set(items[step], path, depth + 1, value)
    return items


def _location(
    data: Any, to_state_data: str, variables: Variables, lang: str
) -> tuple[PathPart, ...]:
    return compile_expression(to_state_data, lang).path(data, variables)


def _set_at(data: Any, path: tuple[PathPart, ...], value: Any, to_state_data: str) -> Any:
    try:
        return set_path(data, path, value)
    except LimitExceeded:
        raise
    except ExpressionError as exc:
        raise ExpressionError(exc.message, expression=to_state_data) from None


def put_at(
    data: Any, to_state_data: str, value: Any, variables: Variables = None, lang: str = "jq"
) -> Any:
    """Set (not merge) ``value`` at the location a ``toStateData``-like expression names.

    Args:
        data: The state data.
        to_state_data: An expression naming a location, e.g. ``${ .customer.greeting }``
            (jq) or ``$.customer.greeting`` (JSONPath).
        value: The value to place there.
        variables: Expression variables.
        lang: The workflow's expression language.

    Raises:
        ExpressionError: The expression names no location or cannot be reached.
    """
    return _set_at(data, _location(data, to_state_data, variables, lang), value, to_state_data)


def merge_at(
    data: Any,
    to_state_data: str | None,
    value: Any,
    variables: Variables = None,
    lang: str = "jq",
) -> Any:
    """Merge ``value`` into state data at ``toStateData`` (the whole data when absent).

    The location is created when missing. ``None`` means "nothing to merge":
    the data comes back unchanged.

    Raises:
        ExpressionError: ``to_state_data`` names no location or cannot be reached.
    """
    if value is None:
        return data
    if not to_state_data:
        return merge(data, value)
    path = _location(data, to_state_data, variables, lang)
    return _set_at(data, path, merge(get_at(data, path), value), to_state_data)


# -- state data filters --------------------------------------------------------


def apply_state_filter(
    data: Any, expression: str | None, variables: Variables = None, lang: str = "jq"
) -> Any:
    """Apply a state data filter's ``input`` (to state input) or ``output`` (to state output).

    Per the spec, when the filter is absent or "does not select any parts" of
    the data (it yields ``null`` or nothing), the data is not filtered.

    Raises:
        ExpressionError: The expression failed.
    """
    if not expression:
        return data
    result = _evaluate(expression, data, variables, lang)
    return data if result is None else result


# -- action data filters -------------------------------------------------------


def filter_action_input(
    data: Any, from_state_data: str | None, variables: Variables = None, lang: str = "jq"
) -> Any:
    """Select what an action's argument expressions see (``fromStateData``).

    Returns:
        The state data itself when ``from_state_data`` is absent, else the
        expression's value (``None`` if it selects nothing).
    """
    if not from_state_data:
        return data
    return _evaluate(from_state_data, data, variables, lang)


def filter_action_result(
    result: Any, results: str | None, variables: Variables = None, lang: str = "jq"
) -> Any:
    """Apply an action data filter's ``results`` expression to the action's result."""
    if not results or result is None:
        return result
    return _evaluate(results, result, variables, lang)


def merge_action_result(
    state_data: Any,
    result: Any,
    results: str | None = None,
    to_state_data: str | None = None,
    use_results: bool = True,
    variables: Variables = None,
    lang: str = "jq",
) -> Any:
    """Merge an action's result into the state data, per its action data filter.

    Args:
        state_data: The state data before the action.
        result: What the function (or subflow, or result event) returned.
        results: ``actionDataFilter.results``: filters the result.
        to_state_data: ``actionDataFilter.toStateData``: where to merge;
            absent = the whole state data.
        use_results: ``actionDataFilter.useResults``; ``False`` ignores
            ``results`` and ``to_state_data`` and leaves the data unchanged.
        variables: Expression variables.
        lang: The workflow's expression language.

    Returns:
        The new state data.

    Raises:
        ExpressionError: ``results`` or ``to_state_data`` failed.
    """
    if not use_results:
        return state_data
    selected = filter_action_result(result, results, variables, lang)
    return merge_at(state_data, to_state_data, selected, variables, lang)


# -- event data filters --------------------------------------------------------


def event_filter_input(event: Mapping[str, Any], data_only: bool = True) -> Any:
    """What an event data filter sees: the payload, or the whole CloudEvent.

    Args:
        event: The CloudEvent in JSON form (context attributes plus ``data``
            or ``data_base64``).
        data_only: The event definition's ``dataOnly`` (default true).
    """
    if not data_only:
        return dict(event)
    if "data" in event:
        return event["data"]
    return event.get("data_base64")


def filter_event_data(
    event: Mapping[str, Any],
    data: str | None = None,
    data_only: bool = True,
    variables: Variables = None,
    lang: str = "jq",
) -> Any:
    """Apply an event data filter's ``data`` expression (the whole input when absent)."""
    selected = event_filter_input(event, data_only)
    if not data or selected is None:
        return selected
    return _evaluate(data, selected, variables, lang)


def merge_event_data(
    state_data: Any,
    event: Mapping[str, Any],
    data: str | None = None,
    to_state_data: str | None = None,
    use_data: bool = True,
    data_only: bool = True,
    variables: Variables = None,
    lang: str = "jq",
) -> Any:
    """Merge a consumed event into the state data, per its event data filter.

    Args:
        state_data: The state data before the event.
        event: The CloudEvent in JSON form (attributes plus ``data``).
        data: ``eventDataFilter.data``: filters the payload (``data_only``)
            or the whole CloudEvent (``data_only=False``).
        to_state_data: ``eventDataFilter.toStateData``: where to merge;
            absent = the whole state data.
        use_data: ``eventDataFilter.useData``; ``False`` ignores ``data`` and
            ``to_state_data`` and leaves the data unchanged.
        data_only: The event definition's ``dataOnly``. With no ``data``
            expression and ``data_only=False`` the whole CloudEvent is merged.
        variables: Expression variables.
        lang: The workflow's expression language.

    Returns:
        The new state data.

    Raises:
        ExpressionError: ``data`` or ``to_state_data`` failed.
    """
    if not use_data:
        return state_data
    selected = filter_event_data(event, data, data_only, variables, lang)
    return merge_at(state_data, to_state_data, selected, variables, lang)
