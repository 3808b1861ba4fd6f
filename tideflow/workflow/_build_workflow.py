"""Build states, definitions and the whole :class:`~tideflow.workflow.model.Workflow`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tideflow.workflow import _build as b
from tideflow.workflow import model as m
from tideflow.workflow._build import Doc

_EMPTY: Doc = m.EMPTY


def _common(doc: Doc) -> dict[str, Any]:
    return {
        "name": doc["name"],
        "id": doc.get("id"),
        "state_data_filter": b._opt(doc, "stateDataFilter", b.state_data_filter),
        "transition": b._opt(doc, "transition", b.transition),
        "end": b.end(doc.get("end", False)),
        "on_errors": b._many(doc, "onErrors", b.error_handler),
        "compensated_by": doc.get("compensatedBy"),
        "used_for_compensation": bool(doc.get("usedForCompensation", False)),
        "timeouts": b.timeouts(doc.get("timeouts")),
        "metadata": b._meta(doc),
    }


def on_events(doc: Doc) -> m.OnEvents:
    """Build an ``onEvents`` entry of an event state."""
    return m.OnEvents(
        event_refs=b._strs(doc.get("eventRefs")),
        action_mode=doc.get("actionMode", "sequential"),
        actions=b._many(doc, "actions", b.action),
        event_data_filter=b.event_data_filter(doc.get("eventDataFilter") or _EMPTY),
    )


def _event_state(doc: Doc) -> m.EventState:
    return m.EventState(
        type="event",
        exclusive=bool(doc.get("exclusive", True)),
        on_events=b._many(doc, "onEvents", on_events),
        **_common(doc),
    )


def _operation_state(doc: Doc) -> m.OperationState:
    return m.OperationState(
        type="operation",
        action_mode=doc.get("actionMode", "sequential"),
        actions=b._many(doc, "actions", b.action),
        **_common(doc),
    )


def _data_condition(doc: Doc) -> m.DataCondition:
    return m.DataCondition(
        condition=doc["condition"],
        name=doc.get("name"),
        transition=b._opt(doc, "transition", b.transition),
        end=b.end(doc.get("end", False)),
        metadata=b._meta(doc),
    )


def _event_condition(doc: Doc) -> m.EventCondition:
    return m.EventCondition(
        event_ref=doc["eventRef"],
        name=doc.get("name"),
        transition=b._opt(doc, "transition", b.transition),
        end=b.end(doc.get("end", False)),
        event_data_filter=b.event_data_filter(doc.get("eventDataFilter") or _EMPTY),
        metadata=b._meta(doc),
    )


def _switch_state(doc: Doc) -> m.SwitchState:
    default = doc.get("defaultCondition")
    return m.SwitchState(
        type="switch",
        data_conditions=b._many(doc, "dataConditions", _data_condition),
        event_conditions=b._many(doc, "eventConditions", _event_condition),
        default_condition=None
        if default is None  # only under SonataFlow's dialect
        else m.DefaultCondition(
            transition=b._opt(default, "transition", b.transition),
            end=b.end(default.get("end", False)),
        ),
        **_common(doc),
    )


def _sleep_state(doc: Doc) -> m.SleepState:
    return m.SleepState(type="sleep", duration=b._dur(doc.get("duration", "")), **_common(doc))


def _branch(doc: Doc) -> m.Branch:
    return m.Branch(
        name=doc["name"],
        actions=b._many(doc, "actions", b.action),
        timeouts=b.timeouts(doc.get("timeouts")),
    )


def _parallel_state(doc: Doc) -> m.ParallelState:
    return m.ParallelState(
        type="parallel",
        branches=b._many(doc, "branches", _branch),
        completion_type=doc.get("completionType", "allOf"),
        num_completed=doc.get("numCompleted"),
        **_common(doc),
    )


def _inject_state(doc: Doc) -> m.InjectState:
    return m.InjectState(type="inject", data=m.freeze(doc.get("data") or {}), **_common(doc))


def _foreach_state(doc: Doc) -> m.ForEachState:
    return m.ForEachState(
        type="foreach",
        input_collection=doc.get("inputCollection", ""),
        output_collection=doc.get("outputCollection"),
        iteration_param=doc.get("iterationParam"),
        batch_size=doc.get("batchSize"),
        actions=b._many(doc, "actions", b.action),
        mode=doc.get("mode", "parallel"),
        **_common(doc),
    )


def _callback_state(doc: Doc) -> m.CallbackState:
    return m.CallbackState(
        type="callback",
        action=b.action(doc.get("action") or _EMPTY),
        event_ref=doc.get("eventRef", ""),
        event_data_filter=b.event_data_filter(doc.get("eventDataFilter") or _EMPTY),
        **_common(doc),
    )


STATE_BUILDERS: Mapping[str, Callable[[Doc], m.AnyState]] = {
    "event": _event_state,
    "operation": _operation_state,
    "switch": _switch_state,
    "sleep": _sleep_state,
    "parallel": _parallel_state,
    "inject": _inject_state,
    "foreach": _foreach_state,
    "callback": _callback_state,
}


def state(doc: Doc) -> m.AnyState:
    """Build a state of any type."""
    return STATE_BUILDERS[doc["type"]](doc)


# --- top-level definitions --------------------------------------------------


def function_def(doc: Doc) -> m.FunctionDef:
    """Build a function definition."""
    return m.FunctionDef(
        name=doc["name"],
        operation=doc.get("operation", ""),
        type=doc.get("type", "rest"),
        auth_ref=doc.get("authRef"),
        metadata=b._meta(doc),
    )


def event_def(doc: Doc) -> m.EventDef:
    """Build an event definition."""
    return m.EventDef(
        name=doc["name"],
        type=doc.get("type", ""),
        source=doc.get("source"),
        kind=doc.get("kind", "consumed"),
        correlation=tuple(
            m.Correlation(
                context_attribute_name=c["contextAttributeName"],
                context_attribute_value=b._str(c.get("contextAttributeValue")),
            )
            for c in doc.get("correlation") or ()
        ),
        data_only=bool(doc.get("dataOnly", True)),
        metadata=b._meta(doc),
    )


def retry_def(doc: Doc) -> m.RetryDef:
    """Build a retry definition."""
    return m.RetryDef(
        name=doc["name"],
        max_attempts=doc.get("maxAttempts", 1),
        delay=b._dur(doc.get("delay")),
        max_delay=b._dur(doc.get("maxDelay")),
        increment=b._dur(doc.get("increment")),
        multiplier=doc.get("multiplier"),
        jitter=b._dur(doc.get("jitter")),
    )


def error_def(doc: Doc) -> m.ErrorDef:
    """Build an error definition."""
    return m.ErrorDef(
        name=doc["name"], code=b._str(doc.get("code")), description=doc.get("description")
    )


def auth_def(doc: Doc) -> m.AuthDef:
    """Build an auth definition."""
    return m.AuthDef(
        name=doc["name"],
        scheme=doc.get("scheme", "basic"),
        properties=m.freeze(doc.get("properties") or {}),
    )


def _schedule(value: str | Doc) -> m.Schedule:
    if isinstance(value, str):
        return m.Schedule(interval=value)
    cron = value.get("cron")
    if isinstance(cron, str):
        cron = {"expression": cron}
    return m.Schedule(
        interval=value.get("interval"),
        cron=m.Cron(expression=cron["expression"], valid_until=cron.get("validUntil"))
        if cron
        else None,
        timezone=value.get("timezone"),
    )


def start(doc: Doc) -> m.Start:
    """Build the start (defaulting to the first state)."""
    value = doc.get("start")
    if isinstance(value, str):
        return m.Start(state_name=value)
    if isinstance(value, Mapping):
        return m.Start(state_name=value["stateName"], schedule=b._opt(value, "schedule", _schedule))
    return m.Start(state_name=doc["states"][0]["name"])


def _data_input_schema(value: str | Doc) -> m.DataInputSchema:
    if isinstance(value, str):
        return m.DataInputSchema(schema=value)
    return m.DataInputSchema(
        schema=m.freeze(value["schema"]),
        fail_on_validation_errors=bool(value.get("failOnValidationErrors", True)),
    )


OUTPUT_SCHEMA_EXTENSION = "workflow-output-schema"
"""SonataFlow's extension that validates a workflow's output (``outputSchema``)."""


def output_schema_index(doc: Mapping[str, Any]) -> int | None:
    """The index in ``extensions`` of SonataFlow's ``workflow-output-schema``, if any."""
    extensions = doc.get("extensions")
    if not isinstance(extensions, list):
        return None
    for index, extension in enumerate(extensions):
        if isinstance(extension, Mapping) and OUTPUT_SCHEMA_EXTENSION in (
            extension.get("extensionid"),  # SonataFlow's spelling
            extension.get("extensionId"),  # the 0.8 schema's
        ):
            return index
    return None


def _output_schema(doc: Doc) -> m.DataInputSchema | None:
    """SonataFlow's output schema (validated by the loader: a URI or ``{schema, ...}``)."""
    index = output_schema_index(doc)
    spec = None if index is None else doc["extensions"][index].get("outputSchema")
    return _data_input_schema(spec) if isinstance(spec, str | Mapping) else None


BUNDLE_FILES = "$tideflowFiles"
"""Where a stored version keeps the function documents its bundle brought."""


def _files(value: Any) -> Mapping[str, str]:
    """The bundle's function documents (only text values by text keys are kept)."""
    if not isinstance(value, Mapping):
        return m.EMPTY
    files: Mapping[str, str] = m.freeze(
        {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}
    )
    return files


def workflow(doc: Doc) -> m.Workflow:
    """Build a whole workflow from a document whose external references are resolved."""
    return m.Workflow(
        id=b._str(doc.get("id")),
        key=b._str(doc.get("key")),
        name=doc.get("name"),
        description=doc.get("description"),
        version=b._str(doc.get("version")),
        annotations=b._strs(doc.get("annotations")),
        data_input_schema=b._opt(doc, "dataInputSchema", _data_input_schema),
        data_output_schema=_output_schema(doc),
        secrets=b._strs(doc.get("secrets")),
        constants=m.freeze(doc.get("constants") or {}),
        start=start(doc),
        spec_version=str(doc.get("specVersion", "0.8")),
        expression_lang=doc.get("expressionLang", "jq"),
        timeouts=b.timeouts(doc.get("timeouts")),
        errors=b._many(doc, "errors", error_def),
        keep_active=bool(doc.get("keepActive", False)),
        metadata=b._meta(doc),
        auth=b._many(doc, "auth", auth_def),
        events=b._many(doc, "events", event_def),
        functions=b._many(doc, "functions", function_def),
        auto_retries=bool(doc.get("autoRetries", False)),
        retries=b._many(doc, "retries", retry_def),
        files=_files(doc.get(BUNDLE_FILES)),
        states=b._many(doc, "states", state),
    )
