"""Spans of the code under test, held in memory: the SDK's in-memory exporter as the
provider of :mod:`tideflow.tracing` for the block (tracing is off again afterwards)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tideflow import tracing


@contextmanager
def in_memory_spans() -> Iterator[InMemorySpanExporter]:
    """Trace everything (no sampling) into the exporter yielded, until the block ends."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    try:
        yield exporter
    finally:
        tracing.use(None)
        provider.shutdown()


def span_id(span: ReadableSpan) -> int:
    """The span's id."""
    assert span.context is not None
    return int(span.context.span_id)


def trace_id(span: ReadableSpan) -> int:
    """The span's trace id."""
    assert span.context is not None
    return int(span.context.trace_id)


def parent_of(span: ReadableSpan) -> int | None:
    """The id of the span's parent (``None``: a root span)."""
    return None if span.parent is None else int(span.parent.span_id)


def attrs(span: ReadableSpan) -> dict[str, Any]:
    """The span's attributes."""
    return dict(span.attributes or {})
