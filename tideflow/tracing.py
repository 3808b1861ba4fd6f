"""OpenTelemetry traces of an event's path: the one module that knows OpenTelemetry.

Off by default. ``tideflow serve --otel`` (``TIDEFLOW_OTEL=1``), or an OTLP endpoint in the
standard ``OTEL_EXPORTER_OTLP_ENDPOINT``/``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` variables,
turns it on through :func:`configure`; tests and benchmarks hand their own SDK provider to
:func:`use`. While it is off every function here returns at its first line and no span object
is made: the callers on hot paths ask :func:`enabled` once per request or batch. While it is
on, a request whose trace is not sampled makes no span object either: new traces are
sampled here (:func:`use`), before the SDK is asked for anything.

The spans of one event, each the child of the one before (docs/observability.md)::

    tideflow.ingest                 POST /events (parent: the request's or the event's traceparent)
      tideflow.eventstore.append    append and commit; its context is stored with each event
        tideflow.deliver            a subscription hands the event on (another task, process)
          tideflow.instance.resume  the instance the event woke (or .start: the one it started)
            tideflow.state          each state (0.8) or task (1.0) that runs
              tideflow.function.call  each function call; HTTP calls carry ``traceparent``

An instance started over HTTP has a ``tideflow.instance.start`` span continuing the request's
``traceparent`` (else a new trace). One an event started through the inbox of its first wait
(0.8 start event states) continues in a ``tideflow.instance.resume`` span under its start
span once the inbox answers that wait.

The stored context is a W3C ``traceparent`` string in the event's row
(``tideflow_events.trace_parent``), never in the event itself, which is kept as received.
OpenTelemetry's tracer provider is process-wide by design, so the tracer is held here too.

Attributes are identifiers only (bus, offset, subscription, instance, workflow, version, state,
step key, function name and type): never event data, arguments, URLs' queries or headers.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.trace import Span, Tracer
    from opentelemetry.util.types import AnyValue

    from tideflow.settings import Settings

log = logging.getLogger(__name__)

_tracer: Tracer | None = None
_root_ratio = 1.0
_delivered: contextvars.ContextVar[Mapping[int, Context]] = contextvars.ContextVar(
    "tideflow_delivered"
)
_resumed: contextvars.ContextVar[Mapping[str, Context]] = contextvars.ContextVar(
    "tideflow_resumed"
)
_started: contextvars.ContextVar[tuple[str, Context, bool]] = contextvars.ContextVar(
    "tideflow_started"
)
_requested: contextvars.ContextVar[list[Context]] = contextvars.ContextVar("tideflow_requested")
_first_resumes: dict[str, Context] = {}
"""Instances an event started whose first wait its inbox answers: id -> the start span's
context, which the run the answer resumes continues (taken by :func:`resume_parent`)."""

FIRST_RESUMES_KEPT = 4096
"""At most this many :data:`_first_resumes` (the oldest go: their answer resumed the
instance in another process, or never came)."""

EXPORT_TIMEOUT = 5.0
"""Seconds one export may take (the exporter runs in its own thread, never in the loop)."""


def enabled() -> bool:
    """Whether spans are made (a tracer is configured)."""
    return _tracer is not None


def use(provider: TracerProvider | None, new_traces: float = 1.0) -> None:
    """Make spans with ``provider`` from now on (``None``: tracing off).

    ``new_traces``: the share of new traces (a request without a sampled parent) kept. It
    is decided here, before any span object, id or context is made, so a request not kept
    costs a header lookup and a random number; the provider's sampler then sees only the
    traces kept and the callers' sampled parents (:func:`configure` gives it parent-based
    always-on, the SDK's default).
    """
    global _tracer, _root_ratio
    _tracer = None if provider is None else provider.get_tracer("tideflow")
    _root_ratio = min(1.0, max(0.0, new_traces))
    _first_resumes.clear()


def wanted(settings: Settings, env: Mapping[str, str] | None = None) -> bool:
    """Whether the settings or the standard ``OTEL_*`` variables ask for traces."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return settings.otel or bool(
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def configure(settings: Settings) -> Callable[[], None] | None:
    """Turn tracing on as ``settings`` (and ``OTEL_*``) ask; return what shuts it down.

    Returns ``None`` (tracing stays as it is) when nothing asks for traces, or when the
    ``opentelemetry`` SDK is not installed (``pip install 'tideflow[otel]'``): then a
    warning says so and the server runs without traces.
    """
    if not wanted(settings):
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
    except ImportError:
        log.warning("tracing asked for, but opentelemetry-sdk is not installed: no traces "
                    "(pip install 'tideflow[otel]')")  # fmt: skip
        return None
    exporter = _exporter(settings)
    if exporter is None:
        return None
    # New traces are sampled by use() before any span is made; callers' decisions are kept.
    provider = TracerProvider(
        resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "tideflow")}),
        sampler=ParentBased(ALWAYS_ON),
    )
    # Guarded has the exporter's three methods; subclassing would import the SDK with this module
    provider.add_span_processor(BatchSpanProcessor(cast("SpanExporter", Guarded(exporter))))
    use(provider, sample_ratio(settings))
    log.info("tracing on: %.4g of new traces sampled", sample_ratio(settings))

    def shutdown() -> None:
        use(None)
        provider.shutdown()

    return shutdown


def sample_ratio(settings: Settings, env: Mapping[str, str] | None = None) -> float:
    """The share of new traces kept: ``--otel-sample``, else ``OTEL_TRACES_SAMPLER_ARG``, else 1."""
    env = os.environ if env is None else env
    if settings.otel_sample is not None:
        return settings.otel_sample
    try:
        return min(1.0, max(0.0, float(env.get("OTEL_TRACES_SAMPLER_ARG", "1"))))
    except ValueError:
        return 1.0


def _exporter(settings: Settings) -> SpanExporter | None:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        log.warning("tracing asked for, but the OTLP exporter is not installed: no traces "
                    "(pip install 'tideflow[otel]')")  # fmt: skip
        return None
    # The exporter logs every failed batch itself; Guarded says it once instead.
    logging.getLogger("opentelemetry.exporter.otlp.proto.http").setLevel(logging.CRITICAL)
    # endpoint None: OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, else http://localhost:4318/v1/traces
    return OTLPSpanExporter(endpoint=settings.otel_endpoint, timeout=EXPORT_TIMEOUT)


class Guarded:
    """A span exporter that never raises and says once that exporting fails."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.failed = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export through the inner exporter; a failure is logged the first time only."""
        from opentelemetry.sdk.trace.export import SpanExportResult

        try:
            result = self.inner.export(spans)
        except Exception as exc:
            self._once(f"{type(exc).__name__}: {exc}")
            return SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self._once("the collector did not take them")
        return result

    def _once(self, reason: str) -> None:
        if not self.failed:
            self.failed = True
            log.warning("tracing: exporting spans failed (%s); spans are dropped while it "
                        "fails, and further failures are not logged", reason)  # fmt: skip

    def shutdown(self) -> None:
        """Shut the inner exporter down (errors logged, not raised)."""
        try:
            self.inner.shutdown()
        except Exception as exc:
            log.warning("tracing: exporter shutdown failed: %s", exc)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the inner exporter."""
        try:
            return bool(self.inner.force_flush(timeout_millis))
        except Exception:
            return False


# --- context ---------------------------------------------------------------


def _extract(traceparent: object) -> Context | None:
    """The context of a valid W3C ``traceparent`` (``None``: none, or not one)."""
    if not traceparent or not isinstance(traceparent, str):
        return None
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def _parent(*traceparents: object) -> Context | None:
    """The parent of a span that begins a request's trace, or ``None``: make no span.

    The first valid ``traceparent`` is the caller's trace, followed if the caller sampled
    it; without one a new trace begins (an empty context), kept at the configured share.
    """
    for candidate in traceparents:
        if candidate:  # else: nothing to parse (the path of almost every request)
            context = _extract(candidate)
            if context is not None:
                from opentelemetry import trace

                sampled = trace.get_current_span(context).get_span_context().trace_flags.sampled
                return context if sampled else None
    if _root_ratio < 1.0 and random.random() >= _root_ratio:
        return None
    from opentelemetry.context import Context

    return Context()


def traceparent() -> str | None:
    """The current span's context as a W3C ``traceparent`` (``None``: off, no span, or one
    not sampled)."""
    from opentelemetry import trace

    if _tracer is None or not trace.get_current_span().is_recording():
        return None
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent")


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current span's ``traceparent`` to outgoing ``headers`` (unless one is set;
    nothing outside a sampled trace)."""
    if not recording() or any(name.lower() == "traceparent" for name in headers):
        return
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    TraceContextTextMapPropagator().inject(headers)


# --- ingestion and the store -------------------------------------------------


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def ingest_parent(
    headers: Iterable[tuple[bytes, bytes]], events: Sequence[Mapping[str, Any]]
) -> Context | None:
    """The parent of an ingestion request's span, or ``None``: the request is not traced
    (tracing off, its caller's trace not sampled, or a new trace not kept).

    The parent: the request's ``traceparent`` header, else -- one event -- the event's
    ``traceparent`` attribute (the CloudEvents distributed-tracing extension), else a
    new trace.
    """
    if _tracer is None:
        return None
    header = _header(headers, b"traceparent")
    return _parent(header, events[0].get("traceparent") if len(events) == 1 else None)


@contextlib.contextmanager
def ingest_span(parent: Context, bus: str, count: int) -> Iterator[Span]:
    """The span of one ingestion request (``parent`` from :func:`ingest_parent`), current
    while its events are appended."""
    assert _tracer is not None, "tracing is off"
    attributes: dict[str, AnyValue] = {"tideflow.bus": bus, "tideflow.events.count": count}
    with _tracer.start_as_current_span(
        "tideflow.ingest", context=parent, attributes=attributes
    ) as span:
        yield span


def recording() -> bool:
    """Whether the current span is one of a sampled trace (tracing on)."""
    if _tracer is None:
        return False
    from opentelemetry import trace

    return trace.get_current_span().is_recording()


@contextlib.contextmanager
def append_span(bus: str, count: int) -> Iterator[Span | None]:
    """The span of one append (group commit included) in the current trace; ``None`` when
    tracing is off, the append belongs to no trace (the server's own events), or to one not
    sampled: then nothing is stored with the events and nothing downstream makes a span."""
    from opentelemetry import trace

    if _tracer is None or not trace.get_current_span().is_recording():
        yield None
        return
    attributes: dict[str, AnyValue] = {"tideflow.bus": bus, "tideflow.events.count": count}
    with _tracer.start_as_current_span("tideflow.eventstore.append", attributes=attributes) as span:
        yield span


def appended(span: Span | None, offsets: Sequence[int]) -> None:
    """Note the offsets an append got on its span."""
    if span is not None and offsets:
        span.set_attribute("tideflow.event.offset", offsets[0])
        span.set_attribute("tideflow.event.offset_last", offsets[-1])


# --- delivery ---------------------------------------------------------------


class _Deliveries(Mapping[int, "Context"]):
    """The delivery spans of one batch, by offset, each made when first asked for (by a
    start or a resume it causes), with the batch's start time: a consumer that does
    nothing with an event (another partition's) makes no span for it."""

    def __init__(self, tracer: Tracer, traces: Mapping[int, str], attributes: dict[str, Any]):
        self._tracer = tracer
        self._traces = traces
        self._attributes = attributes
        self._start = time.time_ns()
        self.spans: dict[int, Span] = {}
        self._contexts: dict[int, Context] = {}

    def __getitem__(self, offset: int) -> Context:
        found = self._contexts.get(offset)
        if found is None:
            from opentelemetry import trace

            span = self._tracer.start_span(
                "tideflow.deliver",
                context=_extract(self._traces[offset]),
                attributes={**self._attributes, "tideflow.event.offset": offset},
                start_time=self._start,
            )
            self.spans[offset] = span
            found = self._contexts[offset] = trace.set_span_in_context(span)
        return found

    def __contains__(self, offset: object) -> bool:
        return offset in self._traces

    def __iter__(self) -> Iterator[int]:
        return iter(self._traces)

    def __len__(self) -> int:
        return len(self._traces)


@contextlib.contextmanager
def delivering(subscription: str, bus: str, traces: Mapping[int, str]) -> Iterator[None]:
    """Spans of a subscription handing events on, one per stored trace (offset -> traceparent).

    Each continues the trace stored with its event; while the block runs, :func:`resuming`
    and :func:`starting` find them by offset (a span is made for an event the consumer
    starts or resumes an instance with). Nothing happens when ``traces`` is empty.
    """
    if _tracer is None or not traces:
        yield
        return
    deliveries = _Deliveries(
        _tracer, traces, {"tideflow.subscription": subscription, "tideflow.bus": bus}
    )
    token = _delivered.set(deliveries)
    try:
        yield
    finally:
        _delivered.reset(token)
        for span in deliveries.spans.values():
            span.end()


@contextlib.contextmanager
def deliver_span(subscription: str, bus: str, offset: int, parent: str | None) -> Iterator[None]:
    """The current span while one event goes to a sink (whose request carries ``traceparent``)."""
    if _tracer is None or parent is None:
        yield
        return
    attributes: dict[str, AnyValue] = {
        "tideflow.subscription": subscription,
        "tideflow.bus": bus,
        "tideflow.event.offset": offset,
    }
    with _tracer.start_as_current_span(
        "tideflow.deliver", context=_extract(parent), attributes=attributes
    ):
        yield


def delivered() -> bool:
    """Whether events of a sampled trace are being delivered here (:func:`delivering`)."""
    return _tracer is not None and bool(_delivered.get(None))


@contextlib.contextmanager
def resuming(instances: Mapping[str, int]) -> Iterator[None]:
    """While waits are answered: which delivered event (by offset) resumes which instance."""
    delivered = _delivered.get(None)
    if not delivered:
        yield
        return
    found = {iid: delivered[offset] for iid, offset in instances.items() if offset in delivered}
    token = _resumed.set(found)
    try:
        yield
    finally:
        _resumed.reset(token)


def resume_parent(instance_id: str) -> Context | None:
    """The span the run resuming ``instance_id`` now continues, if it is traced: the
    delivery span of the event answering its wait, else (its first resume) the start span
    of an instance an event started through the inbox of its first wait."""
    resumed = _resumed.get(None)
    found = None if resumed is None else resumed.get(instance_id)
    if found is None and _first_resumes:
        found = _first_resumes.pop(instance_id, None)
    return found


@contextlib.contextmanager
def starting(instance_id: str, offset: int, *, inbox: bool) -> Iterator[None]:
    """While the delivered event at ``offset`` starts ``instance_id``: the instance's start
    span continues the event's delivery span (:func:`start_trace`).

    ``inbox``: the event reaches the instance through the inbox of its first wait, so the
    run that answer resumes continues the start span (:func:`resume_parent`).
    """
    delivered = _delivered.get(None)
    context = None if delivered is None else delivered.get(offset)
    if context is None:
        yield
        return
    token = _started.set((instance_id, context, inbox))
    try:
        yield
    finally:
        _started.reset(token)


@contextlib.contextmanager
def requested(traceparent: str | None) -> Iterator[None]:
    """While a request (``POST /workflows/{id}/instances``) starts an instance: its start
    span continues the request's ``traceparent``, else begins a new trace (kept at the
    configured share)."""
    parent = None if _tracer is None else _parent(traceparent)
    if parent is None:
        yield
        return
    token = _requested.set([parent])  # taken once: not by what the instance starts later
    try:
        yield
    finally:
        _requested.reset(token)


# --- instances ----------------------------------------------------------------

_OPENS = frozenset({"state.entered", "task.started"})
_CLOSES = frozenset({"state.left", "task.completed", "task.faulted", "task.skipped"})


class InstanceTrace:
    """The spans of one traced run of an instance: its start or resume, its states, their
    calls.

    Made only while tracing is on (:func:`instance_trace`, :func:`start_trace`); the runner
    feeds it its steps.
    """

    def __init__(
        self, tracer: Tracer, parent: Context, attributes: Mapping[str, Any], name: str
    ) -> None:
        from opentelemetry import trace

        self._tracer = tracer
        self._set_span = trace.set_span_in_context
        self._resume = tracer.start_span(name, context=parent, attributes=dict(attributes))
        self.context = trace.set_span_in_context(self._resume)
        """The context of the start (or resume) span."""
        self._attributes = {"tideflow.instance.id": attributes["tideflow.instance.id"]}
        self._states: dict[str, Span] = {}

    @property
    def recording(self) -> bool:
        """Whether its trace is sampled (else its spans are dropped)."""
        return self._resume.is_recording()

    def step(self, kind: str, key: str, state: str | None) -> None:
        """A timeline step: a state (or task) begins or ends."""
        if kind in _OPENS:
            attributes = {**self._attributes, "tideflow.state": state or "", "tideflow.step": key}
            self._states[key] = self._tracer.start_span(
                "tideflow.state", context=self._parent_of(key), attributes=attributes
            )
        elif kind in _CLOSES:
            span = self._states.pop(key, None)
            if span is not None:
                span.end()

    def _parent_of(self, key: str) -> Context:
        """The innermost open state whose key prefixes ``key`` (else the resume)."""
        best = ""
        for open_key in self._states:
            if len(open_key) > len(best) and key.startswith(open_key + "/"):
                best = open_key
        return self._set_span(self._states[best]) if best else self.context

    @contextlib.contextmanager
    def call(self, key: str, name: str, kind: str) -> Iterator[None]:
        """The current span of one function call (HTTP requests made in it carry it)."""
        attributes: dict[str, AnyValue] = {
            **self._attributes,
            "tideflow.step": key,
            "tideflow.function.name": name,
            "tideflow.function.type": kind,
        }
        with self._tracer.start_as_current_span(
            "tideflow.function.call", context=self._parent_of(key), attributes=attributes
        ):
            yield

    def end(self) -> None:
        """End every span still open (the run ended or parked)."""
        for span in reversed(list(self._states.values())):
            span.end()
        self._states.clear()
        self._resume.end()


def _attributes(instance_id: str, workflow_id: str, version: str) -> dict[str, Any]:
    return {
        "tideflow.instance.id": instance_id,
        "tideflow.workflow.id": workflow_id,
        "tideflow.workflow.version": version,
    }


def instance_trace(
    instance_id: str, workflow_id: str, version: str, parent: Context | None
) -> InstanceTrace | None:
    """Spans for a run resumed from ``parent`` (:func:`resume_parent`; ``None``: untraced)."""
    if _tracer is None or parent is None:
        return None
    run = InstanceTrace(
        _tracer,
        parent,
        _attributes(instance_id, workflow_id, version),
        "tideflow.instance.resume",
    )
    if run.recording:
        return run
    run.end()
    return None


def start_trace(instance_id: str, workflow_id: str, version: str) -> InstanceTrace | None:
    """Spans for the first run of an instance just created, if what created it is traced:
    the event delivered in :func:`starting`, or the request in :func:`requested`."""
    if _tracer is None:
        return None
    started = _started.get(None)
    requested = _requested.get(None)
    inbox = False
    if started is not None and started[0] == instance_id:
        _, parent, inbox = started
    elif requested:
        parent = requested.pop()
    else:
        return None
    run = InstanceTrace(
        _tracer, parent, _attributes(instance_id, workflow_id, version), "tideflow.instance.start"
    )
    if not run.recording:
        run.end()
        return None
    if inbox:
        _first_resumes[instance_id] = run.context
        if len(_first_resumes) > FIRST_RESUMES_KEPT:
            del _first_resumes[next(iter(_first_resumes))]
    return run


def call_span(trace: InstanceTrace | None, key: str, name: str, kind: str) -> Any:
    """:meth:`InstanceTrace.call`, or a no-op when the run is not traced."""
    return contextlib.nullcontext() if trace is None else trace.call(key, name, kind)
