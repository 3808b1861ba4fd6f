"""One event's trace through a real server (issue 18's tracing): POST /events with a
``traceparent`` resumes a waiting instance, which calls a REST function on a real HTTP
server on 127.0.0.1. The SDK's in-memory exporter must hold ONE trace whose spans chain
ingestion -> append -> delivery -> resume -> state -> call, and the REST server must have
seen that trace (and the call's span as its parent).

The server is uvicorn on 127.0.0.1 in this process (``serve_app``), so the spans it makes
reach the in-memory exporter; the REST server runs in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.auth import home_auth
from tests.support.otel import attrs, in_memory_spans, parent_of, span_id, trace_id
from tests.support.services import serve_in_thread
from tideflow.api.app import create_app
from tideflow.api.testserver import serve_app
from tideflow.serve import open_system
from tideflow.settings import Settings

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"

WORKFLOW = """\
id: traced
version: "1"
specVersion: "0.8"
start: Begin
events:
  - name: go
    type: com.example.go
    source: /tests
functions:
  - name: ping
    operation: {base}/openapi.json#ping
states:
  - name: Begin  # not an event state: the event resumes the instance, starts none
    type: inject
    data: {{}}
    transition: Wait
  - name: Wait
    type: event
    onEvents:
      - eventRefs: [go]
    transition: Call
  - name: Call
    type: operation
    actions:
      - functionRef: ping
    end: true
"""

OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "ping", "version": "1"},
    "paths": {
        "/ping": {"post": {"operationId": "ping", "responses": {"200": {"description": "ok"}}}}
    },
}


def rest_server(seen: list[str | None]) -> Starlette:
    """The REST function's server: records the ``traceparent`` of every call."""

    async def doc(_: Request) -> JSONResponse:
        return JSONResponse(OPENAPI)

    async def ping(request: Request) -> JSONResponse:
        seen.append(request.headers.get("traceparent"))
        return JSONResponse({"pong": True})

    return Starlette(routes=[Route("/openapi.json", doc), Route("/ping", ping, methods=["POST"])])


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with in_memory_spans() as exporter:
        yield exporter


@pytest.fixture
async def served(pg_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=pg_url, home=tmp_path, egress_allow=("127.0.0.1",))
    async with (
        serve_app(create_app(settings, open_system)) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers=home_auth(tmp_path)) as http,
    ):
        yield http


async def status_of(http: httpx.AsyncClient, instance: str, wanted: str) -> dict[str, Any]:
    for _ in range(600):  # up to 30 s
        body: dict[str, Any] = (await http.get(f"/instances/{instance}")).json()
        if body["status"] == wanted:
            return body
        assert body["status"] in ("running", "waiting"), body
        await asyncio.sleep(0.05)
    raise AssertionError(f"instance {instance} never became {wanted}: {body}")


async def finished_spans(spans: InMemorySpanExporter, last: str) -> list[ReadableSpan]:
    """The finished spans once ``last`` is among them (the delivery span ends when its
    batch is done, which may be after the instance it resumed completed)."""
    for _ in range(200):  # up to 10 s
        finished = [s for s in spans.get_finished_spans() if s.context is not None]
        if any(s.name == last for s in finished):
            return finished
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {last} span: {[s.name for s in finished]}")


def one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


async def test_one_trace_from_ingestion_to_the_function_call(
    spans: InMemorySpanExporter, served: httpx.AsyncClient
) -> None:
    http = served
    seen: list[str | None] = []
    with serve_in_thread(rest_server(seen), "the REST function") as base:
        deployed = await http.post(
            "/workflows",
            content=WORKFLOW.format(base=base),
            headers={"content-type": "application/yaml"},
        )
        assert deployed.status_code == 201, deployed.text
        started = await http.post("/workflows/traced/instances", json={})
        assert started.status_code == 201, started.text
        instance = started.json()["id"]
        await status_of(http, instance, "waiting")
        posted = await http.post(
            "/events",
            json={"specversion": "1.0", "id": "e1", "source": "/tests", "type": "com.example.go"},
            headers={
                "content-type": "application/cloudevents+json",
                "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01",
            },
        )
        assert posted.status_code == 202, posted.text
        offset = posted.json()["events"][0]["offset"]
        await status_of(http, instance, "completed")

    finished = await finished_spans(spans, "tideflow.deliver")
    ours = [s for s in finished if f"{trace_id(s):032x}" == TRACE_ID]
    # ONE trace: every span the event caused is in the caller's trace
    assert {s.name for s in ours} >= {
        "tideflow.ingest",
        "tideflow.eventstore.append",
        "tideflow.deliver",
        "tideflow.instance.resume",
        "tideflow.state",
        "tideflow.function.call",
    }, [s.name for s in finished]
    ingest = one(ours, "tideflow.ingest")
    append = one(ours, "tideflow.eventstore.append")
    deliver = one(ours, "tideflow.deliver")
    resume = one(ours, "tideflow.instance.resume")
    call = one(ours, "tideflow.function.call")
    states = [s for s in ours if s.name == "tideflow.state"]
    assert [attrs(s)["tideflow.state"] for s in states] == ["Call"]
    (state,) = states
    # the chain, each span the child of the one before
    assert parent_of(ingest) == int(CALLER_SPAN, 16)
    assert parent_of(append) == span_id(ingest)
    assert parent_of(deliver) == span_id(append)
    assert parent_of(resume) == span_id(deliver)
    assert parent_of(state) == span_id(resume)
    assert parent_of(call) == span_id(state)
    # identifiers as attributes
    assert attrs(append)["tideflow.event.offset"] == offset
    assert attrs(deliver)["tideflow.event.offset"] == offset
    assert attrs(deliver)["tideflow.bus"] == "default"
    assert attrs(resume)["tideflow.instance.id"] == instance
    assert attrs(resume)["tideflow.workflow.id"] == "traced"
    assert attrs(resume)["tideflow.workflow.version"] == "1"
    assert attrs(call)["tideflow.function.name"] == "ping"
    # the REST server saw the same trace, the call's span as its parent
    assert seen == [f"00-{TRACE_ID}-{span_id(call):016x}-01"]
