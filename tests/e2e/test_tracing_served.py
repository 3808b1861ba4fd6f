"""One event's trace through a real server (issue 18's tracing): POST /events with a
``traceparent`` resumes a waiting instance, which calls a REST function on a real HTTP
server on 127.0.0.1. The SDK's in-memory exporter must hold ONE trace whose spans chain
ingestion -> append -> delivery -> resume -> state -> call, and the REST server must have
seen that trace (and the call's span as its parent). The same for an event that starts an
instance (ingestion -> delivery -> start -> state -> call), and for an instance started
by a request carrying a ``traceparent``.

The server is uvicorn on 127.0.0.1 in this process (``serve_app``), so the spans it makes
reach the in-memory exporter; the REST server runs in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
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
OTHER_TRACE = "0af7651916cd43dd8448eb211c80319c"

CALL = """\
  - name: Call
    type: operation
    actions:
      - functionRef: ping
    end: true
"""
"""The state all three workflows end with: it calls the REST function ``ping``."""

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
""" + CALL

STARTED = """\
id: started
version: "1"
specVersion: "0.8"
start: Begin
events:
  - name: begin
    type: com.example.begin
    source: /tests
functions:
  - name: ping
    operation: {base}/openapi.json#ping
states:
  - name: Begin  # a start event state: the event starts the instance
    type: event
    onEvents:
      - eventRefs: [begin]
    transition: Call
""" + CALL

BEGIN = {"specversion": "1.0", "source": "/tests", "type": "com.example.begin"}

DIRECT = """\
id: direct
version: "1"
specVersion: "0.8"
start: Call
functions:
  - name: ping
    operation: {base}/openapi.json#ping
states:
""" + CALL

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


@dataclass
class Rest:
    """The REST function's server: its base URL and the ``traceparent`` of each call."""

    base: str
    seen: list[str | None]


@pytest.fixture
def rest() -> Iterator[Rest]:
    seen: list[str | None] = []
    with serve_in_thread(rest_server(seen), "the REST function") as base:
        yield Rest(base, seen)


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


async def finished_spans(spans: InMemorySpanExporter, *last: str) -> list[ReadableSpan]:
    """The finished spans once each of ``last`` is among them (the delivery span ends when
    its batch is done, which may be after the instance it resumed completed; a run's
    first span when the run is over, just after the instance's end is answered)."""
    for _ in range(200):  # up to 10 s
        finished = [s for s in spans.get_finished_spans() if s.context is not None]
        if set(last) <= {s.name for s in finished}:
            return finished
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {last} spans: {[s.name for s in finished]}")


async def ours(spans: InMemorySpanExporter, *last: str) -> list[ReadableSpan]:
    """The finished spans of the caller's trace (:data:`TRACE_ID`), as :func:`finished_spans`."""
    return [s for s in await finished_spans(spans, *last) if f"{trace_id(s):032x}" == TRACE_ID]


async def deploy(http: httpx.AsyncClient, source: str, rest: Rest) -> None:
    deployed = await http.post(
        "/workflows",
        content=source.format(base=rest.base),
        headers={"content-type": "application/yaml"},
    )
    assert deployed.status_code == 201, deployed.text


async def post_traced(http: httpx.AsyncClient, event: dict[str, Any]) -> int:
    """POST ``event`` in the caller's trace; its offset."""
    posted = await http.post(
        "/events",
        json=event,
        headers={
            "content-type": "application/cloudevents+json",
            "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01",
        },
    )
    assert posted.status_code == 202, posted.text
    return int(posted.json()["events"][0]["offset"])


async def only_instance(http: httpx.AsyncClient, workflow: str) -> str:
    """The id of the one instance of ``workflow`` once it exists."""
    for _ in range(600):  # up to 30 s
        listed = (await http.get("/instances", params={"workflow": workflow})).json()
        if listed["instances"]:
            (instance,) = listed["instances"]
            return str(instance["id"])
        await asyncio.sleep(0.05)
    raise AssertionError(f"no instance of {workflow} started")


def names_instance(span: ReadableSpan, instance: str, workflow: str) -> None:
    """The run's span names its instance and workflow (version 1) as attributes."""
    found = attrs(span)
    assert found["tideflow.instance.id"] == instance
    assert (found["tideflow.workflow.id"], found["tideflow.workflow.version"]) == (workflow, "1")


def child_of(call: ReadableSpan) -> str:
    """The ``traceparent`` a request made in ``call`` carries."""
    return f"00-{TRACE_ID}-{span_id(call):016x}-01"


def one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


async def test_one_trace_from_ingestion_to_the_function_call(
    spans: InMemorySpanExporter, served: httpx.AsyncClient, rest: Rest
) -> None:
    http = served
    await deploy(http, WORKFLOW, rest)
    started = await http.post("/workflows/traced/instances", json={})
    assert started.status_code == 201, started.text
    instance = started.json()["id"]
    await status_of(http, instance, "waiting")
    offset = await post_traced(
        http, {"specversion": "1.0", "id": "e1", "source": "/tests", "type": "com.example.go"}
    )
    await status_of(http, instance, "completed")

    spans_of_trace = await ours(spans, "tideflow.deliver")
    # ONE trace: every span the event caused is in the caller's trace
    assert {s.name for s in spans_of_trace} >= {
        "tideflow.ingest",
        "tideflow.eventstore.append",
        "tideflow.deliver",
        "tideflow.instance.resume",
        "tideflow.state",
        "tideflow.function.call",
    }, [s.name for s in spans.get_finished_spans()]
    ingest = one(spans_of_trace, "tideflow.ingest")
    append = one(spans_of_trace, "tideflow.eventstore.append")
    deliver = one(spans_of_trace, "tideflow.deliver")
    resume = one(spans_of_trace, "tideflow.instance.resume")
    call = one(spans_of_trace, "tideflow.function.call")
    states = [s for s in spans_of_trace if s.name == "tideflow.state"]
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
    names_instance(resume, instance, "traced")
    assert attrs(call)["tideflow.function.name"] == "ping"
    # the REST server saw the same trace, the call's span as its parent
    assert rest.seen == [child_of(call)]


async def test_an_event_that_starts_an_instance_continues_its_trace(
    spans: InMemorySpanExporter, served: httpx.AsyncClient, rest: Rest
) -> None:
    await deploy(served, STARTED, rest)
    await post_traced(served, {**BEGIN, "id": "b1"})
    instance = await only_instance(served, "started")
    await status_of(served, instance, "completed")

    spans_of_trace = await ours(spans, "tideflow.deliver", "tideflow.instance.resume")
    ingest = one(spans_of_trace, "tideflow.ingest")
    deliver = one(spans_of_trace, "tideflow.deliver")
    start = one(spans_of_trace, "tideflow.instance.start")
    resume = one(spans_of_trace, "tideflow.instance.resume")
    call = one(spans_of_trace, "tideflow.function.call")
    states = {attrs(s)["tideflow.state"]: s for s in spans_of_trace if s.name == "tideflow.state"}
    assert set(states) == {"Begin", "Call"}, [s.name for s in spans.get_finished_spans()]
    assert parent_of(ingest) == int(CALLER_SPAN, 16)
    assert parent_of(one(spans_of_trace, "tideflow.eventstore.append")) == span_id(ingest)
    # the delivery starts the instance; the inbox answering its start state resumes it
    assert parent_of(start) == span_id(deliver)
    assert parent_of(states["Begin"]) == span_id(start)
    assert parent_of(resume) == span_id(start)
    assert parent_of(states["Call"]) == span_id(resume)
    assert parent_of(call) == span_id(states["Call"])
    names_instance(start, instance, "started")
    names_instance(resume, instance, "started")
    assert rest.seen == [child_of(call)]


async def test_a_request_that_starts_an_instance_continues_its_trace(
    spans: InMemorySpanExporter, served: httpx.AsyncClient, rest: Rest
) -> None:
    await deploy(served, DIRECT, rest)
    instances = []
    # the caller sampled its trace; then one it did not
    for caller in (f"00-{TRACE_ID}-{CALLER_SPAN}-01", f"00-{OTHER_TRACE}-{CALLER_SPAN}-00"):
        started = await served.post(
            "/workflows/direct/instances",
            params={"wait": 30},
            json={},
            headers={"traceparent": caller},
        )
        assert started.status_code == 201, started.text
        assert started.json()["status"] == "completed", started.text
        instances.append(started.json()["id"])

    spans_of_trace = await ours(spans, "tideflow.instance.start")
    start = one(spans_of_trace, "tideflow.instance.start")
    state = one(spans_of_trace, "tideflow.state")
    call = one(spans_of_trace, "tideflow.function.call")
    assert parent_of(start) == int(CALLER_SPAN, 16)
    names_instance(start, instances[0], "direct")
    assert parent_of(state) == span_id(start)
    assert parent_of(call) == span_id(state)
    assert len(spans_of_trace) == len(spans.get_finished_spans())  # nothing of another trace
    # the unsampled start made no span: its call carried no traceparent of one
    assert rest.seen == [child_of(call), None]
