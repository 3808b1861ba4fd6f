"""tideflow.tracing without a server: off costs nothing, parents are found, exports never raise.

The whole path through a real server is tests/e2e/test_tracing_served.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager as ContextManager
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import Span

from tests.support.otel import attrs, in_memory_spans, parent_of, span_id, trace_id
from tideflow import tracing
from tideflow.settings import Settings
from tideflow.testing import InMemoryEventStore

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
HEADER = f"00-{TRACE}-00f067aa0ba902b7-01"
EVENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
EVENT = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with in_memory_spans() as exporter:
        yield exporter


async def test_off_makes_no_span_and_stores_no_trace() -> None:
    assert not tracing.enabled()
    assert tracing.traceparent() is None
    headers: dict[str, str] = {}
    tracing.inject(headers)
    assert headers == {}
    with tracing.append_span("default", 1) as span:
        assert span is None
    assert tracing.instance_trace("i", "w", "1", None) is None
    store = InMemoryEventStore()
    await store.create_bus("default")
    await store.append("default", [EVENT])
    (stored,) = await store.read("default")
    assert stored.trace is None


def ingest(
    headers: list[tuple[bytes, bytes]], events: list[dict[str, Any]]
) -> ContextManager[Span]:
    """The ingestion span of a request (as the ingestion path opens it)."""
    parent = tracing.ingest_parent(headers, events)
    assert parent is not None
    return tracing.ingest_span(parent, "default", len(events))


def test_ingestion_continues_the_header_else_the_events_attribute(
    spans: InMemorySpanExporter,
) -> None:
    with ingest([(b"traceparent", HEADER.encode())], [EVENT]):
        pass
    with_attribute = {**EVENT, "traceparent": f"00-{EVENT_TRACE}-b7ad6b7169203331-01"}
    with ingest([], [with_attribute]):
        pass
    with ingest([(b"traceparent", b"garbage")], [EVENT]):
        pass
    header, attribute, fresh = spans.get_finished_spans()
    assert f"{trace_id(header):032x}" == TRACE
    assert f"{trace_id(attribute):032x}" == EVENT_TRACE
    assert fresh.parent is None  # an unreadable traceparent starts a new trace
    assert f"{trace_id(fresh):032x}" not in (TRACE, EVENT_TRACE)


async def test_an_append_in_a_trace_stores_its_span_as_the_events_parent(
    spans: InMemorySpanExporter,
) -> None:
    store = InMemoryEventStore()
    await store.create_bus("default")
    with tracing.append_span("default", 1) as outside:
        assert outside is None  # no trace to belong to: the server's own events
    with (
        ingest([(b"traceparent", HEADER.encode())], [EVENT]),
        tracing.append_span("default", 1) as span,
    ):
        assert tracing.recording()
        assert span is not None
        stored_trace = tracing.traceparent()
        await store.append("default", [EVENT])
    (stored,) = await store.read("default")
    assert stored.trace == stored_trace
    assert stored_trace is not None
    assert stored_trace.startswith(f"00-{TRACE}-")


async def test_an_unsampled_trace_stores_nothing_with_its_events() -> None:
    provider = TracerProvider(sampler=ALWAYS_OFF)
    tracing.use(provider)
    try:
        store = InMemoryEventStore()
        await store.create_bus("default")
        with (
            ingest([(b"traceparent", HEADER.encode())], [EVENT]),
            tracing.append_span("default", 1) as span,
        ):
            assert not tracing.recording()
            assert span is None
            await store.append("default", [EVENT])
    finally:
        tracing.use(None)
    (stored,) = await store.read("default")
    assert stored.trace is None


def test_an_instances_spans_nest_by_step_key(spans: InMemorySpanExporter) -> None:
    with tracing.delivering("sub", "default", {7: HEADER}):
        with tracing.resuming({"i1": 7, "i2": 8}):
            parent = tracing.resume_parent("i1")
            assert tracing.resume_parent("i2") is None  # its event was not traced
        assert tracing.resume_parent("i1") is None  # only while the waits are answered
    run = tracing.instance_trace("i1", "wf", "1", parent)
    assert run is not None
    run.step("state.entered", "Outer", "Outer")
    run.step("task.started", "Outer/do/0/Inner", "Inner")
    headers: dict[str, str] = {}
    with run.call("Outer/do/0/Inner/call/attempt:1", "ping", "rest"):
        tracing.inject(headers)
    run.step("task.completed", "Outer/do/0/Inner", "Inner")
    run.end()  # closes Outer, left open, and the resume
    by_name = {s.name: s for s in spans.get_finished_spans() if s.name != "tideflow.state"}
    states = {attrs(s)["tideflow.state"]: s for s in spans.get_finished_spans()
              if s.name == "tideflow.state"}  # fmt: skip
    call = by_name["tideflow.function.call"]
    assert parent_of(call) == span_id(states["Inner"])
    assert parent_of(states["Inner"]) == span_id(states["Outer"])
    assert parent_of(states["Outer"]) == span_id(by_name["tideflow.instance.resume"])
    assert parent_of(by_name["tideflow.instance.resume"]) == span_id(by_name["tideflow.deliver"])
    assert {trace_id(s) for s in spans.get_finished_spans()} == {int(TRACE, 16)}
    assert headers["traceparent"] == f"00-{TRACE}-{span_id(call):016x}-01"


def test_a_trace_not_sampled_makes_no_span_object() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    unsampled = f"00-{TRACE}-00f067aa0ba902b7-00"
    try:
        tracing.use(provider, new_traces=1.0)
        fresh = tracing.ingest_parent([], [EVENT])  # kept: a new trace, no parent
        assert fresh is not None
        assert not trace.get_current_span(fresh).get_span_context().is_valid
        tracing.use(provider, new_traces=0.0)  # no new trace kept
        assert tracing.ingest_parent([], [EVENT]) is None
        assert tracing.ingest_parent([(b"traceparent", unsampled.encode())], [EVENT]) is None
        assert tracing.ingest_parent([], [{**EVENT, "traceparent": unsampled}]) is None
        with tracing.requested(None):
            assert tracing.start_trace("i0", "wf", "1") is None
        with tracing.requested(unsampled):
            assert tracing.start_trace("i1", "wf", "1") is None
        # a caller's sampled trace is followed whatever the share of new ones
        parent = tracing.ingest_parent([(b"traceparent", HEADER.encode())], [EVENT])
        assert parent is not None
        with tracing.ingest_span(parent, "default", 1):
            assert tracing.recording()
    finally:
        tracing.use(None)
        provider.shutdown()
    (only,) = exporter.get_finished_spans()
    assert f"{trace_id(only):032x}" == TRACE


def test_an_event_that_starts_an_instance_is_the_parent_of_its_runs(
    spans: InMemorySpanExporter,
) -> None:
    with tracing.delivering("sub", "default", {7: HEADER}):
        with tracing.starting("i1", 7, inbox=True):
            assert tracing.start_trace("other", "wf", "1") is None  # started by no event
            started = tracing.start_trace("i1", "wf", "1")
        with tracing.starting("i2", 8, inbox=True):  # its event was not traced
            assert tracing.start_trace("i2", "wf", "1") is None
        with tracing.starting("i3", 7, inbox=False):
            other = tracing.start_trace("i3", "wf", "1")
    assert started is not None
    assert other is not None
    started.step("state.entered", "Begin", "Begin")
    started.end()  # parked: its first wait is answered by the inbox
    other.end()
    parent = tracing.resume_parent("i1")  # the inbox's answer resumes it
    assert parent is not None
    assert tracing.resume_parent("i1") is None  # only its first resume
    assert tracing.resume_parent("i3") is None  # its events were its input: no inbox
    resumed = tracing.instance_trace("i1", "wf", "1", parent)
    assert resumed is not None
    resumed.step("state.entered", "Call", "Call")
    resumed.end()
    finished = spans.get_finished_spans()
    starts = {attrs(s)["tideflow.instance.id"]: s for s in finished
              if s.name == "tideflow.instance.start"}  # fmt: skip
    assert set(starts) == {"i1", "i3"}
    found = {(s.name, attrs(s).get("tideflow.state")): s for s in finished}
    resume = found["tideflow.instance.resume", None]
    assert parent_of(starts["i1"]) == span_id(found["tideflow.deliver", None])
    assert parent_of(found["tideflow.state", "Begin"]) == span_id(starts["i1"])
    assert parent_of(resume) == span_id(starts["i1"])
    assert parent_of(found["tideflow.state", "Call"]) == span_id(resume)
    assert {trace_id(s) for s in finished} == {int(TRACE, 16)}


def test_a_request_that_starts_an_instance_is_the_parent_of_its_start(
    spans: InMemorySpanExporter,
) -> None:
    with tracing.requested(HEADER):
        started = tracing.start_trace("i1", "wf", "1")
        assert tracing.start_trace("child", "wf", "1") is None  # taken once
    assert tracing.start_trace("later", "wf", "1") is None
    assert started is not None
    started.end()
    assert tracing.resume_parent("i1") is None  # no inbox: a later resume is its own
    (start,) = spans.get_finished_spans()
    assert (start.name, f"{trace_id(start):032x}") == ("tideflow.instance.start", TRACE)
    assert parent_of(start) == int("00f067aa0ba902b7", 16)


def test_inject_keeps_a_traceparent_the_caller_set(spans: InMemorySpanExporter) -> None:
    with trace.get_tracer("t").start_as_current_span("x"):
        headers = {"TraceParent": "mine"}
        tracing.inject(headers)
    assert headers == {"TraceParent": "mine"}


class Failing:
    def __init__(self, how: str) -> None:
        self.how = how
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        if self.how == "raise":
            raise ConnectionRefusedError("collector down")
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        raise RuntimeError("already gone")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        raise RuntimeError("already gone")


@pytest.mark.parametrize("how", ["raise", "fail"])
def test_an_exporter_failure_is_logged_once_never_raised(
    how: str, caplog: pytest.LogCaptureFixture
) -> None:
    inner = Failing(how)
    guarded = tracing.Guarded(inner)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="tideflow.tracing"):
        assert guarded.export([]) is SpanExportResult.FAILURE
        assert guarded.export([]) is SpanExportResult.FAILURE
        assert guarded.force_flush() is False
        guarded.shutdown()
    assert inner.calls == 2
    failures = [r for r in caplog.records if "exporting spans failed" in r.getMessage()]
    assert len(failures) == 1


def test_settings_and_the_standard_variables_turn_it_on() -> None:
    assert not tracing.wanted(Settings(), {})
    assert tracing.wanted(Settings(otel=True), {})
    assert tracing.wanted(Settings(), {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert not tracing.wanted(Settings(otel=True), {"OTEL_SDK_DISABLED": "true"})
    settings = Settings.from_env(
        {"TIDEFLOW_OTEL": "1", "TIDEFLOW_OTEL_SAMPLE": "0.01", "TIDEFLOW_OTEL_ENDPOINT": "http://c"}
    )
    assert (settings.otel, settings.otel_sample, settings.otel_endpoint) == (True, 0.01, "http://c")
    assert tracing.sample_ratio(settings, {}) == 0.01
    assert tracing.sample_ratio(Settings(), {"OTEL_TRACES_SAMPLER_ARG": "0.25"}) == 0.25
    assert tracing.sample_ratio(Settings(), {}) == 1.0
    with pytest.raises(ValueError, match=r"TIDEFLOW_OTEL_SAMPLE=2\.0: a share of traces"):
        Settings.from_env({"TIDEFLOW_OTEL_SAMPLE": "2"})
    assert tracing.configure(Settings()) is None  # nothing asked: stays off
    assert not tracing.enabled()

