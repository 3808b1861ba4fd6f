"""What crosses Temporal's wire for the Temporal host: workflow and activity inputs, names.

Plain dataclasses of JSON values, carried as JSON, so a history recorded today
replays tomorrow: a field may be added with a default, never renamed or removed
(``tests/golden/temporal`` holds recorded histories that a test replays).

Tideflow's clients and workers carry them with :func:`with_values`: the JSON
Temporal's default converter writes, read and written without its generic
type walk (:class:`_ValuesDecoder`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio.converter import (
    AdvancedJSONEncoder,
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
)

from tideflow.runtime.status import InstanceStatus

WORKFLOW_TYPE = "tideflow.instance"
"""The one Temporal workflow type: every Tideflow instance runs as one of these."""
ACT_DEFINITION = "tideflow.definition"
ACT_CALL = "tideflow.call"
ACT_PUBLISH = "tideflow.publish"
ACT_RECORD = "tideflow.record"
ACT_BEGIN = "tideflow.begin"
"""``tideflow.definition`` and the run's first ``tideflow.record`` in one local activity (its
input an :class:`InstanceStart` with the instance id filled in)."""

SIGNAL_EVENT = "tideflow.event"
SIGNAL_EVENTS = "tideflow.events"
"""Several events at once, in order (a delivery's result, a signal-with-start)."""
SIGNAL_SUSPEND = "tideflow.suspend"
"""An update, as is :data:`SIGNAL_RESUME`."""
SIGNAL_RESUME = "tideflow.resume"
QUERY_PROGRESS = "tideflow.progress"

FAILURE_TYPE = "TideflowInstanceFailed"
"""The ``ApplicationError`` type of a failed instance (its details: the error and timeline)."""
CALL_FAILURE_TYPE = "TideflowFunctionCallError"
"""The ``ApplicationError`` type of a failed function call (its details: the error entry)."""


@dataclass(frozen=True, kw_only=True)
class InstanceStart:
    """The input of a ``tideflow.instance`` workflow run.

    Attributes:
        workflow_id: The deployed workflow's id.
        version: Its version, or ``None`` for the latest (resolved at the run's start).
        input: The run's input.
        instance_id: The Tideflow instance's id (the Temporal workflow id).
        run_no: 1, then 2, 3, ... for each ``continueAs`` (a Temporal continue-as-new).
        parent_id: The parent instance of a sub-flow.
        mirrored: The starter created the instance's mirrored row -- running, this
            version, this input -- just before it started the workflow (``TemporalRuntime``),
            so the run's first record (``tideflow.begin``) has nothing to write there.
        definition: The resolved definition of ``version``, given by a starter that has
            created the mirrored row (``mirrored``) and reported the run ``started``: the
            run then has nothing to read or write at its start and begins without a local
            activity (``tideflow.begin`` otherwise). Recorded in the history as the input,
            where ``tideflow.begin``'s result would be, so replays compile the same.
    """

    workflow_id: str
    version: str | None = None
    input: Any = None
    instance_id: str = ""
    run_no: int = 1
    parent_id: str | None = None
    mirrored: bool = False
    definition: StoredDefinition | None = None


@dataclass(frozen=True, kw_only=True)
class DefinitionRef:
    """Which definition a run executes (the ``tideflow.definition`` activity's input)."""

    workflow_id: str
    version: str | None = None


@dataclass(frozen=True, kw_only=True)
class StoredDefinition:
    """A deployed definition as the workflow compiles it (recorded once in the history).

    Attributes:
        workflow_id: Its id.
        version: The stored version.
        document: The resolved document (external documents inlined).
        dialect: The interpreter dialect it was deployed with.
    """

    workflow_id: str
    version: str
    document: dict[str, Any]
    dialect: str | None = None


@dataclass(frozen=True, kw_only=True)
class CallRequest:
    """One function call (the ``tideflow.call`` activity's input).

    Attributes mirror :class:`tideflow.runtime.functions.Invocation`; ``auth`` is the
    evaluated auth definition as ``{name, scheme, properties}``.
    """

    name: str
    operation: str
    type: str
    arguments: Any = None
    selection_set: str | None = None
    auth: dict[str, Any] | None = None
    idempotency_key: str | None = None
    timeout: float | None = None
    subject: str | None = None
    """The workflow id whose secret grants unseal the call's sealed secrets (set only for a
    workflow that declares secrets: :mod:`tideflow.secrets.sealed`)."""
    seal_key: str | None = None
    """The run's seal key: only seals of this key are unsealed (``None``: none)."""


@dataclass(frozen=True, kw_only=True)
class Published:
    """Produced CloudEvents of one instance (the ``tideflow.publish`` activity's input)."""

    instance_id: str
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Progress:
    """How far an instance got (the ``tideflow.record`` activity's input, for the mirror).

    Attributes:
        instance_id: The instance.
        run_no: Its run.
        workflow_id: The run's workflow.
        version: Its version.
        status: ``running``, ``waiting``, ``suspended``, or the final ``completed``,
            ``failed``, ``cancelled``.
        state: The state it is in.
        steps: Timeline entries since the last record (``Step.to_json()``).
        create: Create the mirrored row first unless it exists (sub-flows).
        input: The input of a created row.
        parent_id: The parent of a created row.
        output: The final output.
        error: The final error (``WorkflowError.to_json()``).
        data: The state data a failed run ended with.
        wait: An event wait the run begins (a ``tideflow_event_waits`` row: ``key``,
            ``all``, ``events``, ``types``), indexed so the trigger side finds it.
        waited: The key of an event wait the run ended (answered or timed out).
    """

    instance_id: str
    run_no: int
    workflow_id: str
    version: str
    status: str
    state: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    create: bool = False
    input: Any = None
    parent_id: str | None = None
    output: Any = None
    error: dict[str, Any] | None = None
    data: Any = None
    wait: dict[str, Any] | None = None
    waited: str | None = None

    @property
    def final(self) -> bool:
        """The instance ended."""
        return InstanceStatus(self.status).final


_VALUES: tuple[type, ...] = (
    InstanceStart,
    DefinitionRef,
    StoredDefinition,
    CallRequest,
    Published,
    Progress,
)
"""The dataclasses above: every workflow and activity input and result of the host."""
_FIELDS = {cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in _VALUES}
"""Each of :data:`_VALUES`'s field names, in order."""


def _decoder(cls: type) -> Callable[[Any], Any]:
    """Build ``cls`` from its JSON object: its fields' hints read once, here; a field whose
    hint is one of :data:`_VALUES` (or ``None`` beside it) built in turn, every other
    field's JSON value taken as it is (they are JSON values: ``Any``, ``str``, lists and
    objects of JSON). Keys that are not fields are left out, as Temporal's converter does,
    so a history written by a later version with one more field still reads."""
    names = frozenset(_FIELDS[cls])
    nested: dict[str, type] = {}
    for name, hint in typing.get_type_hints(cls).items():
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        inner = [option for option in options if option in _VALUES]
        if inner:
            nested[name] = inner[0]

    def decode(value: Any) -> Any:
        if not isinstance(value, dict):
            raise TypeError(f"{cls.__name__} is a JSON object, not {type(value).__name__}")
        given = {key: item for key, item in value.items() if key in names}
        for name, inner in nested.items():
            if given.get(name) is not None:
                given[name] = _DECODERS[inner](given[name])
        return cls(**given)

    return decode


_DECODERS: dict[type, Callable[[Any], Any]] = {cls: _decoder(cls) for cls in _VALUES}


class _ValuesDecoder(JSONTypeConverter):
    """Reads :data:`_VALUES` (Temporal's own reading evaluates the dataclass's type hints at
    every payload: about a tenth of a worker's CPU in a seq3 run, ``bench/RESULTS.md``)."""

    def to_typed_value(self, hint: type, value: Any) -> Any:
        decode = _DECODERS.get(hint)
        return JSONTypeConverter.Unhandled if decode is None else decode(value)


class _ValuesEncoder(AdvancedJSONEncoder):
    """Writes :data:`_VALUES` field by field (Temporal's ``asdict`` deep-copies every value
    first); the same JSON (the converter sorts keys)."""

    def default(self, o: Any) -> Any:
        names = _FIELDS.get(type(o))
        if names is None:
            return super().default(o)
        return {name: getattr(o, name) for name in names}


class _PayloadConverter(CompositePayloadConverter):
    """Temporal's default payload converters, its JSON one with :class:`_ValuesEncoder` and
    :class:`_ValuesDecoder`."""

    def __init__(self) -> None:
        json_values = JSONPlainPayloadConverter(
            encoder=_ValuesEncoder, custom_type_converters=[_ValuesDecoder()]
        )
        super().__init__(
            *(
                json_values if isinstance(converter, JSONPlainPayloadConverter) else converter
                for converter in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


def with_values(converter: DataConverter) -> DataConverter:
    """``converter`` (its codec, its failure converter) with the payload converter of the
    host's values (see the module docs); one that has it already is returned as it is."""
    if converter.payload_converter_class is _PayloadConverter:
        return converter
    return dataclasses.replace(converter, payload_converter_class=_PayloadConverter)
