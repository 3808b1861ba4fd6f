"""Spans of the code under test, held in memory: the SDK's in-memory exporter as the
provider of :mod:`tideflow.tracing` for the block (tracing is off again afterwards)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.sdk.trace import TracerProvider
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
