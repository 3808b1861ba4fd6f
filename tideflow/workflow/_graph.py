"""Graph checks: reachability, compensation rules and ``runBefore`` states."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tideflow.workflow._references import Names
from tideflow.workflow._schema import Context, Reference


def _states(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    states = doc.get("states")
    if not isinstance(states, list):
        return []
    return [s if isinstance(s, Mapping) else {} for s in states]


def _is_compensation(state: Mapping[str, Any]) -> bool:
    return state.get("usedForCompensation") is True


def _label(states: Sequence[Mapping[str, Any]], index: int) -> str:
    name = states[index].get("name")
    return f"'{name}'" if isinstance(name, str) else f"states[{index}]"


def check_graph(
    doc: Mapping[str, Any], references: Sequence[Reference], names: Names, ctx: Context
) -> None:
    """Report compensation and runBefore rule violations; warn about unreachable states."""
    states = _states(doc)
    if not states:
        return
    resolved = [
        (r, names.states[r.name])
        for r in references
        if r.kind == "state" and r.name in names.states
    ]
    _check_compensation(states, resolved, ctx)
    _check_run_before(states, resolved, ctx)
    starts = [r for r in references if r.role == "start"]
    if not starts or any(r.name in names.states for r in starts):
        reached = _warn_unreachable(states, resolved, ctx)
        dangling = any(r.kind == "state" and r.name not in names.states for r in references)
        if not dangling:  # a misspelt target may be the way out; its error says enough
            _warn_endless(states, resolved, reached, ctx)


def _check_compensation(
    states: Sequence[Mapping[str, Any]], resolved: Sequence[tuple[Reference, int]], ctx: Context
) -> None:
    for index, state in enumerate(states):
        if _is_compensation(state) and "compensatedBy" in state:
            ctx.error(
                ("states", index, "compensatedBy"),
                "a compensation state cannot itself be compensated",
            )
    for ref, target in resolved:
        origin = ref.origin
        target_state = states[target]
        if ref.role == "compensatedBy":
            if not _is_compensation(target_state):
                ctx.error(
                    ref.path,
                    f"state {_label(states, target)} compensates another state, so it must "
                    "set usedForCompensation: true",
                )
            if target_state.get("type") == "event":
                ctx.error(ref.path, "an event state cannot be used for compensation")
        elif ref.role == "start" and _is_compensation(target_state):
            ctx.error(ref.path, "the start state cannot be a compensation state")
        elif ref.role == "transition" and origin is not None:
            from_comp = _is_compensation(states[origin])
            to_comp = _is_compensation(target_state)
            if to_comp and not from_comp:
                ctx.error(
                    ref.path,
                    f"state {_label(states, target)} is a compensation state; only "
                    "compensatedBy and other compensation states may lead to it",
                )
            elif from_comp and not to_comp:
                ctx.error(
                    ref.path,
                    "a compensation state may only transition to compensation states; "
                    f"{_label(states, target)} is not one",
                )


def _check_run_before(
    states: Sequence[Mapping[str, Any]], resolved: Sequence[tuple[Reference, int]], ctx: Context
) -> None:
    incoming = {t for r, t in resolved if r.role == "transition"}
    for ref, target in resolved:
        if ref.role != "runBefore":
            continue
        if target in incoming:
            ctx.error(
                ref.path,
                f"state {_label(states, target)} runs before termination, so no state may "
                "transition to it",
            )
        if _is_compensation(states[target]):
            ctx.error(ref.path, "a runBefore state cannot be a compensation state")


def _warn_unreachable(
    states: Sequence[Mapping[str, Any]], resolved: Sequence[tuple[Reference, int]], ctx: Context
) -> set[int]:
    """Warn about states not reachable from the start; return the reachable ones."""
    edges: dict[int, set[int]] = {}
    roots: set[int] = set()
    explicit_start = False
    for ref, target in resolved:
        if ref.role in ("start", "runBefore"):
            roots.add(target)
            explicit_start = explicit_start or ref.role == "start"
        elif ref.origin is not None:
            edges.setdefault(ref.origin, set()).add(target)
    if not explicit_start:
        roots.add(0)
    seen = set(roots)
    todo = list(roots)
    while todo:
        for target in edges.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    for index in range(len(states)):
        if index not in seen:
            ctx.warn(
                ("states", index),
                f"state {_label(states, index)} is never reached from the start state",
            )
    return seen


def _ends(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("end") not in (None, False)


def _can_end(state: Mapping[str, Any]) -> bool:
    """Whether the state itself, one of its conditions or error handlers ends the path."""
    branches: list[Any] = [state, state.get("defaultCondition")]
    for key in ("dataConditions", "eventConditions", "onErrors"):
        items = state.get(key)
        if isinstance(items, list):
            branches.extend(items)
    return any(_ends(branch) for branch in branches)


def _warn_endless(
    states: Sequence[Mapping[str, Any]],
    resolved: Sequence[tuple[Reference, int]],
    reached: set[int],
    ctx: Context,
) -> None:
    """Warn about reachable states from which no path leads to an end."""
    incoming: dict[int, set[int]] = {}
    for ref, target in resolved:
        if ref.role == "transition" and ref.origin is not None:
            incoming.setdefault(target, set()).add(ref.origin)
    ending = {i for i, state in enumerate(states) if _can_end(state)}
    todo = list(ending)
    while todo:
        for origin in incoming.get(todo.pop(), ()):
            if origin not in ending:
                ending.add(origin)
                todo.append(origin)
    for index in sorted(reached - ending):
        if not _is_compensation(states[index]):
            ctx.warn(
                ("states", index),
                f"no path from state {_label(states, index)} reaches an end; "
                "the workflow may never finish",
            )
