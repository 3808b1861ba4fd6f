"""The structure of a Serverless Workflow 0.8 document, as :mod:`._schema` specs.

Written by hand after the spec's JSON schemas (``schema/workflow.json`` and
friends) so that every message is a sentence of ours with our path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tideflow.workflow._schema import (
    Bool,
    Context,
    Duration,
    Either,
    Enum,
    Expr,
    Lenient,
    ListOf,
    Obj,
    Path,
    Ref,
    Spec,
    Str,
    StrMap,
    Template,
)

STATE_TYPES = ("event", "operation", "switch", "sleep", "parallel", "inject", "foreach", "callback")
FUNCTION_TYPES = ("rest", "asyncapi", "rpc", "graphql", "odata", "expression", "custom")
INVOKE = Enum(("sync", "async"))
ACTION_MODE = Enum(("sequential", "parallel"))
TIMEOUT_KEYS = (
    "workflowExecTimeout",
    "stateExecTimeout",
    "actionExecTimeout",
    "branchExecTimeout",
    "eventTimeout",
)
TIMEOUT_HINTS = {k: f"timeouts belong under 'timeouts' (timeouts.{k})" for k in TIMEOUT_KEYS}

# --- filters ----------------------------------------------------------------

STATE_DATA_FILTER = Obj("a state data filter", {"input": Expr(), "output": Expr()})
ACTION_DATA_FILTER = Obj(
    "an action data filter",
    {"fromStateData": Expr(), "useResults": Bool(), "results": Expr(), "toStateData": Expr()},
)
EVENT_DATA_FILTER = Obj(
    "an event data filter", {"useData": Bool(), "data": Expr(), "toStateData": Expr()}
)

# --- timeouts ---------------------------------------------------------------

WORKFLOW_EXEC_TIMEOUT = Either(
    (
        Duration(),
        Obj(
            "a workflow execution timeout",
            {"duration": Duration(), "interrupt": Bool(), "runBefore": Ref("state", "runBefore")},
            required=("duration",),
        ),
    )
)
STATE_EXEC_TIMEOUT = Either(
    (
        Duration(),
        Obj(
            "a state execution timeout",
            {"single": Duration(), "total": Duration()},
            required=("total",),
        ),
    )
)
_TIMEOUT_SPECS: Mapping[str, Spec] = {
    "workflowExecTimeout": WORKFLOW_EXEC_TIMEOUT,
    "stateExecTimeout": STATE_EXEC_TIMEOUT,
    "actionExecTimeout": Duration(),
    "branchExecTimeout": Duration(),
    "eventTimeout": Duration(),
}


def timeouts(title: str, *keys: str) -> Obj:
    """Timeouts allowing only ``keys`` (each level of the document allows a different set)."""
    allowed = ", ".join(keys)
    hints = {k: f"{title} allows only {allowed}" for k in TIMEOUT_KEYS if k not in keys}
    return Obj(f"the timeouts of {title}", {k: _TIMEOUT_SPECS[k] for k in keys}, hints=hints)


# --- transitions, ends, events produced ---------------------------------------

PRODUCED_EVENT = Obj(
    "a produced event",
    {
        "eventRef": Ref("event", "produced"),
        "data": Either((Expr(), Template(object_only=True))),
        "contextAttributes": StrMap(),
    },
    required=("eventRef",),
)
TRANSITION = Either(
    (
        Ref("state", "transition"),
        Obj(
            "a transition",
            {
                "nextState": Ref("state", "transition"),
                "produceEvents": ListOf(PRODUCED_EVENT),
                "compensate": Bool(),
            },
            required=("nextState",),
        ),
    )
)
CONTINUE_AS = Either(
    (
        Str(),
        Obj(
            "a continueAs",
            {
                "workflowId": Str(),
                "version": Str(),
                "data": Either((Expr(), Template(object_only=True))),
                "workflowExecTimeout": WORKFLOW_EXEC_TIMEOUT,
            },
            required=("workflowId",),
            extra=True,
        ),
    )
)


def _continue_terminates(value: Mapping[str, Any], path: Path, ctx: Context) -> None:
    if "continueAs" in value and value.get("terminate") is False:
        ctx.error((*path, "terminate"), "continueAs implies terminate; remove 'terminate: false'")


END = Either(
    (
        Bool(),
        Obj(
            "an end",
            {
                "terminate": Bool(),
                "produceEvents": ListOf(PRODUCED_EVENT),
                "compensate": Bool(),
                "continueAs": CONTINUE_AS,
            },
            rules=(_continue_terminates,),
        ),
    )
)
ON_ERROR = Obj(
    "an error handler",
    {
        "errorRef": Ref("error", "handled"),
        "errorRefs": ListOf(Ref("error", "handled"), min_items=1, unique=True),
        "transition": TRANSITION,
        "end": END,
    },
    exactly_one=(("errorRef", "errorRefs"), ("transition", "end")),
)

# --- actions ------------------------------------------------------------------

FUNCTION_REF = Either(
    (
        Ref("function", "call"),
        Obj(
            "a function reference",
            {
                "refName": Ref("function", "call"),
                # SonataFlow: one jq expression giving all the arguments
                "arguments": Lenient(
                    Template(object_only=True), Either((Expr(), Template(object_only=True)))
                ),
                "selectionSet": Str(),
                "invoke": INVOKE,
            },
            required=("refName",),
        ),
    )
)
EVENT_REF = Obj(
    "an event reference",
    {
        "triggerEventRef": Ref("event", "produced"),
        "resultEventRef": Ref("event", "consumed"),
        "resultEventTimeout": Duration(),
        "data": Either((Expr(), Template(object_only=True))),
        "contextAttributes": StrMap(),
        "invoke": INVOKE,
    },
    required=("triggerEventRef", "resultEventRef"),
    dialect_optional=("resultEventRef",),  # SonataFlow publishes and never waits
)
SUB_FLOW_REF = Either(
    (
        Str(),
        Obj(
            "a sub-flow reference",
            {
                "workflowId": Str(),
                "version": Str(),
                "onParentComplete": Enum(("continue", "terminate")),
                "invoke": INVOKE,
            },
            required=("workflowId",),
        ),
    )
)
SLEEP = Obj(
    "an action sleep",
    {"before": Duration(), "after": Duration()},
    rules=(
        lambda v, p, c: (
            None
            if "before" in v or "after" in v
            else c.error(p, "an action sleep needs 'before' or 'after'")
        ),
    ),
)
ACTION = Obj(
    "an action",
    {
        "id": Str(),
        "name": Str(),
        "functionRef": FUNCTION_REF,
        "eventRef": EVENT_REF,
        "subFlowRef": SUB_FLOW_REF,
        "sleep": SLEEP,
        "retryRef": Ref("retry", "retry"),
        "nonRetryableErrors": ListOf(Ref("error", "nonRetryable"), min_items=1),
        "retryableErrors": ListOf(Ref("error", "retryable"), min_items=1),
        "actionDataFilter": ACTION_DATA_FILTER,
        "condition": Expr(),
    },
    exactly_one=(("functionRef", "eventRef", "subFlowRef"),),
)
ACTIONS = ListOf(ACTION)
