"""The structure of the eight 0.8 state types, as :mod:`._schema` specs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tideflow.workflow import _structure as s
from tideflow.workflow._schema import (
    Bool,
    ByType,
    Context,
    Duration,
    Enum,
    Expr,
    ListOf,
    Number,
    Obj,
    Path,
    Ref,
    Rule,
    Spec,
    Str,
    StrMap,
    Template,
)


def _flow(value: Mapping[str, Any], path: Path, ctx: Context) -> None:
    """A state transitions or ends (compensation states may do neither)."""
    has_transition = value.get("transition") is not None
    has_end = value.get("end") not in (None, False)
    if has_transition and has_end:
        ctx.error((*path, "end"), "a state cannot both transition and end; keep one of them")
    elif not has_transition and not has_end and value.get("usedForCompensation") is not True:
        name = value.get("name")
        label = f"state '{name}'" if isinstance(name, str) else "this state"
        ctx.error(path, f"{label} neither transitions nor ends: add 'transition' or 'end: true'")


def _common(title: str, *, compensable: bool = True, on_errors: bool = True) -> dict[str, Spec]:
    fields: dict[str, Spec] = {
        "id": Str(),
        "name": Str(),
        "type": Str(),
        "stateDataFilter": s.STATE_DATA_FILTER,
        "transition": s.TRANSITION,
        "end": s.END,
        "compensatedBy": Ref("state", "compensatedBy"),
        "metadata": StrMap(),
    }
    if compensable:
        fields["usedForCompensation"] = Bool()
    if on_errors:
        fields["onErrors"] = ListOf(s.ON_ERROR)
    return fields


def _state(
    title: str,
    fields: Mapping[str, Spec],
    required: tuple[str, ...],
    *timeouts: str,
    flow: bool = True,
    compensable: bool = True,
    on_errors: bool = True,
    hints: Mapping[str, str] | None = None,
    rules: tuple[Rule, ...] = (),
) -> Obj:
    every = _common(title, compensable=compensable, on_errors=on_errors)
    every.update(fields)
    every["timeouts"] = s.timeouts(title, *timeouts)
    return Obj(
        title,
        every,
        required=("name", *required),
        rules=((_flow,) if flow else ()) + rules,
        hints={**s.TIMEOUT_HINTS, **(hints or {})},
    )


ON_EVENTS = Obj(
    "an onEvents entry",
    {
        "eventRefs": ListOf(Ref("event", "consumed"), min_items=1, unique=True),
        "actionMode": s.ACTION_MODE,
        "actions": s.ACTIONS,
        "eventDataFilter": s.EVENT_DATA_FILTER,
    },
    required=("eventRefs",),
)

EVENT_STATE = _state(
    "an event state",
    {"exclusive": Bool(), "onEvents": ListOf(ON_EVENTS, min_items=1)},
    ("onEvents",),
    "stateExecTimeout",
    "actionExecTimeout",
    "eventTimeout",
    compensable=False,
    hints={"usedForCompensation": "an event state cannot be used for compensation"},
)
OPERATION_STATE = _state(
    "an operation state",
    {"actionMode": s.ACTION_MODE, "actions": s.ACTIONS},
    ("actions",),
    "stateExecTimeout",
    "actionExecTimeout",
)

_FLOW_FIELDS = {"transition": s.TRANSITION, "end": s.END}
DATA_CONDITION = Obj(
    "a data condition",
    {"name": Str(), "condition": Expr(), "metadata": StrMap(), **_FLOW_FIELDS},
    required=("condition",),
    exactly_one=(("transition", "end"),),
)
EVENT_CONDITION = Obj(
    "an event condition",
    {
        "name": Str(),
        "eventRef": Ref("event", "consumed"),
        "eventDataFilter": s.EVENT_DATA_FILTER,
        "metadata": StrMap(),
        **_FLOW_FIELDS,
    },
    required=("eventRef",),
    exactly_one=(("transition", "end"),),
)
DEFAULT_CONDITION = Obj(
    "a default condition", dict(_FLOW_FIELDS), exactly_one=(("transition", "end"),)
)


def _switch_timeouts(value: Mapping[str, Any], path: Path, ctx: Context) -> None:
    timeouts = value.get("timeouts")
    has_event_timeout = isinstance(timeouts, Mapping) and "eventTimeout" in timeouts
    if has_event_timeout and "eventConditions" not in value:
        ctx.error(
            (*path, "timeouts", "eventTimeout"),
            "only an event-based switch state (with eventConditions) has an eventTimeout",
        )


_SWITCH_BASE = _common("a switch state")
del _SWITCH_BASE["transition"], _SWITCH_BASE["end"]
_SWITCH_NO_FLOW = "a switch state moves on through its conditions; use defaultCondition"
SWITCH_STATE = Obj(
    "a switch state",
    {
        **_SWITCH_BASE,
        "dataConditions": ListOf(DATA_CONDITION, min_items=1),
        "eventConditions": ListOf(EVENT_CONDITION, min_items=1),
        "defaultCondition": DEFAULT_CONDITION,
        "timeouts": s.timeouts("a switch state", "stateExecTimeout", "eventTimeout"),
    },
    required=("name", "defaultCondition"),
    dialect_optional=("defaultCondition",),
    exactly_one=(("dataConditions", "eventConditions"),),
    rules=(_switch_timeouts,),
    hints={**s.TIMEOUT_HINTS, "transition": _SWITCH_NO_FLOW, "end": _SWITCH_NO_FLOW},
)
SLEEP_STATE = _state("a sleep state", {"duration": Duration()}, ("duration",), "stateExecTimeout")

BRANCH = Obj(
    "a branch",
    {
        "name": Str(),
        "actions": s.ACTIONS,
        "timeouts": s.timeouts("a branch", "actionExecTimeout", "branchExecTimeout"),
    },
    required=("name", "actions"),
    hints=s.TIMEOUT_HINTS,
)


def _at_least(value: Mapping[str, Any], path: Path, ctx: Context) -> None:
    if value.get("completionType") == "atLeast" and "numCompleted" not in value:
        ctx.error((*path, "numCompleted"), "missing: completionType 'atLeast' needs numCompleted")


PARALLEL_STATE = _state(
    "a parallel state",
    {
        "branches": ListOf(BRANCH, min_items=1),
        "completionType": Enum(("allOf", "atLeast")),
        "numCompleted": Number(minimum=0, or_string=True),
    },
    ("branches",),
    "stateExecTimeout",
    "branchExecTimeout",
    rules=(_at_least,),
)
INJECT_STATE = _state(
    "an inject state",
    {"data": Template(object_only=True)},
    ("data",),
    "stateExecTimeout",
    on_errors=False,
    hints={"onErrors": "an inject state has no error handlers in 0.8"},
)


def _iteration_param(value: Mapping[str, Any], path: Path, ctx: Context) -> None:
    param = value.get("iterationParam")
    if isinstance(param, str) and ("${" in param or not param.strip().isidentifier()):
        ctx.error(
            (*path, "iterationParam"),
            f"must be a variable name such as 'item', not '{param}'",
        )


FOREACH_STATE = _state(
    "a foreach state",
    {
        "inputCollection": Expr(),
        "outputCollection": Expr(),
        "iterationParam": Str(),
        "batchSize": Number(minimum=1, or_string=True),
        "actions": s.ACTIONS,
        "mode": s.ACTION_MODE,
    },
    ("inputCollection", "actions"),
    "stateExecTimeout",
    "actionExecTimeout",
    rules=(_iteration_param,),
)
CALLBACK_STATE = _state(
    "a callback state",
    {
        "action": s.ACTION,
        "eventRef": Ref("event", "consumed"),
        "eventDataFilter": s.EVENT_DATA_FILTER,
    },
    ("action", "eventRef"),
    "stateExecTimeout",
    "actionExecTimeout",
    "eventTimeout",
)

STATE = ByType(
    "a state",
    {
        "event": EVENT_STATE,
        "operation": OPERATION_STATE,
        "switch": SWITCH_STATE,
        "sleep": SLEEP_STATE,
        "parallel": PARALLEL_STATE,
        "inject": INJECT_STATE,
        "foreach": FOREACH_STATE,
        "callback": CALLBACK_STATE,
    },
)
