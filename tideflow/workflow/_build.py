"""Build the immutable model from a parsed (and validated) workflow document.

The document's external references (``functions: "defs.json"``, ...) must
already be resolved into inline values; :mod:`tideflow.workflow.loader` does
that. Shorthand forms are normalized and the spec's defaults applied here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from tideflow.workflow import model as m
from tideflow.workflow._defs import normalize_duration

T = TypeVar("T")
Doc = Mapping[str, Any]

_EMPTY_DOC: Doc = m.EMPTY


def _opt(doc: Doc, key: str, build: Callable[[Any], T]) -> T | None:
    value = doc.get(key)
    return None if value is None else build(value)


def _many(doc: Doc, key: str, build: Callable[[Any], T]) -> tuple[T, ...]:
    return tuple(build(item) for item in doc.get(key) or ())


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value or ())


def _meta(doc: Doc) -> Mapping[str, str]:
    return m.freeze(doc.get("metadata") or {})  # type: ignore[no-any-return]


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _dur(value: Any) -> Any:
    """A duration, with ``PT30D`` repaired to ``P30D`` (validation warned about it)."""
    return normalize_duration(value) if isinstance(value, str) else value


# --- filters and refs -----------------------------------------------------


def state_data_filter(doc: Doc) -> m.StateDataFilter:
    """Build a state data filter."""
    return m.StateDataFilter(input=doc.get("input"), output=doc.get("output"))


def action_data_filter(doc: Doc) -> m.ActionDataFilter:
    """Build an action data filter."""
    return m.ActionDataFilter(
        from_state_data=doc.get("fromStateData"),
        use_results=bool(doc.get("useResults", True)),
        results=doc.get("results"),
        to_state_data=doc.get("toStateData"),
    )


def event_data_filter(doc: Doc) -> m.EventDataFilter:
    """Build an event data filter."""
    return m.EventDataFilter(
        use_data=bool(doc.get("useData", True)),
        data=doc.get("data"),
        to_state_data=doc.get("toStateData"),
    )


def function_ref(value: str | Doc) -> m.FunctionRef:
    """Build a function reference (a string is the function's name)."""
    if isinstance(value, str):
        return m.FunctionRef(ref_name=value)
    return m.FunctionRef(
        ref_name=value["refName"],
        arguments=_arguments(value.get("arguments")),
        selection_set=value.get("selectionSet"),
        invoke=value.get("invoke", "sync"),
    )


def _arguments(value: Any) -> Any:
    return value if isinstance(value, str) else m.freeze(value or {})


def event_ref(doc: Doc) -> m.EventRef:
    """Build an event reference of an action."""
    return m.EventRef(
        trigger_event_ref=doc["triggerEventRef"],
        result_event_ref=doc.get("resultEventRef"),
        result_event_timeout=_dur(doc.get("resultEventTimeout")),
        data=m.freeze(doc.get("data")),
        context_attributes=m.freeze(doc.get("contextAttributes") or {}),
        invoke=doc.get("invoke", "sync"),
    )


def sub_flow_ref(value: str | Doc) -> m.SubFlowRef:
    """Build a sub-flow reference (a string is the workflow id)."""
    if isinstance(value, str):
        return m.SubFlowRef(workflow_id=value)
    return m.SubFlowRef(
        workflow_id=value["workflowId"],
        version=_str(value.get("version")),
        invoke=value.get("invoke", "sync"),
        on_parent_complete=value.get("onParentComplete", "terminate"),
    )


def action(doc: Doc) -> m.Action:
    """Build an action."""
    sleep = doc.get("sleep")
    return m.Action(
        id=doc.get("id"),
        name=doc.get("name"),
        function_ref=_opt(doc, "functionRef", function_ref),
        event_ref=_opt(doc, "eventRef", event_ref),
        sub_flow_ref=_opt(doc, "subFlowRef", sub_flow_ref),
        sleep=m.Sleep(before=_dur(sleep.get("before")), after=_dur(sleep.get("after")))
        if sleep
        else None,
        retry_ref=doc.get("retryRef"),
        non_retryable_errors=_strs(doc.get("nonRetryableErrors")),
        retryable_errors=_strs(doc.get("retryableErrors")),
        action_data_filter=action_data_filter(doc.get("actionDataFilter") or _EMPTY_DOC),
        condition=doc.get("condition"),
    )


# --- transitions, ends, timeouts -------------------------------------------


def produced_event(doc: Doc) -> m.ProducedEvent:
    """Build an event produced on a transition or an end."""
    return m.ProducedEvent(
        event_ref=doc["eventRef"],
        data=m.freeze(doc.get("data")),
        context_attributes=m.freeze(doc.get("contextAttributes") or {}),
    )


def transition(value: str | Doc) -> m.Transition:
    """Build a transition (a string is the next state's name)."""
    if isinstance(value, str):
        return m.Transition(next_state=value)
    return m.Transition(
        next_state=value["nextState"],
        produce_events=_many(value, "produceEvents", produced_event),
        compensate=bool(value.get("compensate", False)),
    )


def continue_as(value: str | Doc) -> m.ContinueAs:
    """Build a continue-as (a string is the workflow id)."""
    if isinstance(value, str):
        return m.ContinueAs(workflow_id=value)
    return m.ContinueAs(
        workflow_id=value["workflowId"],
        version=_str(value.get("version")),
        data=m.freeze(value.get("data")),
        workflow_exec_timeout=_opt(value, "workflowExecTimeout", workflow_exec_timeout),
    )


def end(value: bool | Doc) -> m.End | None:
    """Build an end (``true`` is a plain end, ``false`` none)."""
    if value is True:
        return m.End()
    if not isinstance(value, Mapping):
        return None
    return m.End(
        terminate=bool(value.get("terminate", False)),
        produce_events=_many(value, "produceEvents", produced_event),
        compensate=bool(value.get("compensate", False)),
        continue_as=_opt(value, "continueAs", continue_as),
    )


def workflow_exec_timeout(value: str | Doc) -> m.WorkflowExecTimeout:
    """Build a workflow execution timeout (a string is its duration)."""
    if isinstance(value, str):
        return m.WorkflowExecTimeout(duration=_dur(value))
    return m.WorkflowExecTimeout(
        duration=_dur(value["duration"]),
        interrupt=bool(value.get("interrupt", True)),
        run_before=value.get("runBefore"),
    )


def state_exec_timeout(value: str | Doc) -> m.StateExecTimeout:
    """Build a state execution timeout (a string is its total)."""
    if isinstance(value, str):
        return m.StateExecTimeout(total=_dur(value))
    return m.StateExecTimeout(total=_dur(value["total"]), single=_dur(value.get("single")))


def timeouts(doc: Doc | None) -> m.Timeouts:
    """Build timeouts of the workflow, a state or a branch."""
    if not doc:
        return m.NO_TIMEOUTS
    return m.Timeouts(
        workflow_exec_timeout=_opt(doc, "workflowExecTimeout", workflow_exec_timeout),
        state_exec_timeout=_opt(doc, "stateExecTimeout", state_exec_timeout),
        action_exec_timeout=_dur(doc.get("actionExecTimeout")),
        branch_exec_timeout=_dur(doc.get("branchExecTimeout")),
        event_timeout=_dur(doc.get("eventTimeout")),
    )


def error_handler(doc: Doc) -> m.ErrorHandler:
    """Build one ``onErrors`` entry."""
    return m.ErrorHandler(
        error_ref=doc.get("errorRef"),
        error_refs=_strs(doc.get("errorRefs")),
        transition=_opt(doc, "transition", transition),
        end=end(doc.get("end", False)),
    )
