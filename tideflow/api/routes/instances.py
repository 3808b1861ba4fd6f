"""Workflow instances: start (one or a batch), list, show (or wait for the end), timeline,
cancel, suspend, resume, retry.

An instance runs on the durable runtime (:mod:`tideflow.runtime.hosts.durable`);
these routes start instances through it and read or change them through the
instances gateway. Cancel and suspend take effect at once for an idle
instance and at the next step of a running one; the response shows the
instance as it is when the request is answered.

``GET /instances/{id}?wait=SECONDS`` long-polls: the runtime wakes it when
the instance ends here or when another process's ``done`` notification
arrives (:meth:`~tideflow.runtime.hosts.durable.DurableRuntime.wait_for_completion`),
and it reads the instance again every :data:`RECHECK_SECONDS` in case a
notification was lost. It answers early, with the instance as it is, when
the client goes away or the server shuts down (``app.state.draining``).

Every route here refuses a query parameter it does not take (422 naming it).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from tideflow import jsontext, limits, tracing
from tideflow.api import audit
from tideflow.api.access import requires
from tideflow.api.long_poll import wait_unless_abandoned
from tideflow.api.routes.events import json_response
from tideflow.api.schemas import (
    BatchStarted,
    InstanceCreated,
    InstanceList,
    InstanceOut,
    Problem,
    TimelineOut,
)
from tideflow.api.services import Services, get_services
from tideflow.api.start_headers import kept_headers
from tideflow.auth.scopes import READ, RUN
from tideflow.errors import (
    ConflictError,
    InvalidArgument,
    InvalidParameter,
    StoreError,
    UnknownParameter,
)
from tideflow.runtime.status import InstanceStatus

if TYPE_CHECKING:
    from tideflow.runtime.engine import InstanceEngine
    from tideflow.runtime.gateway import InstanceRow, PostgresInstances


async def known_query_only(request: Request) -> None:
    """Refuse a query parameter the route does not declare.

    Raises:
        UnknownParameter: One is given (the first, alphabetically, is named).
    """
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    known = {p.alias for p in dependant.query_params} if dependant is not None else set()
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise UnknownParameter(
            f"unknown query parameter {unknown[0]!r} (allowed: {allowed})", argument=unknown[0]
        )


router = APIRouter(tags=["instances"], dependencies=[Depends(known_query_only)])

MAX_WAIT_SECONDS: Final = 60.0
"""The longest ``wait`` of a start and of ``GET /instances/{id}`` (one rule: a long poll
holds a connection, as ``GET /buses/{bus}/events?wait=`` does, with the same bound)."""
RECHECK_SECONDS: Final = 5.0
"""How often a long poll reads the instance again, should a notification be lost."""
MAX_BATCH: Final = 100
"""Most inputs in one batch start."""
MAX_LIMIT: Final = 1000
DEFAULT_TIMELINE_LIMIT: Final = 500
"""Timeline entries per page unless ``limit`` says otherwise."""
MAX_TIMELINE_LIMIT: Final = 5000
"""Most timeline entries one page may hold."""
_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": Problem} for code in (400, 404, 409, 422, 503)
}
_INPUT_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": False,
        "description": "The instance's input: a JSON object (empty body: `{}`).",
        "content": {"application/json": {"schema": {"type": "object"}, "example": {"name": "Ada"}}},
    }
}

_BATCH_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "description": f"The instances' inputs, in order: at most {MAX_BATCH} JSON objects.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "inputs": {
                            "type": "array",
                            "items": {"type": "object"},
                            "maxItems": MAX_BATCH,
                        }
                    },
                }
            }
        },
    }
}

InstanceId = Annotated[str, Path(description="The instance id.")]
WorkflowId = Annotated[str, Path(description="The workflow's `id`.")]
Version = Annotated[str | None, Query(description="Run this version instead of the latest.")]
Services_ = Annotated[Services, Depends(get_services)]
Wait = Annotated[
    float | None,
    Query(
        description=f"Wait up to this many seconds (0 to {MAX_WAIT_SECONDS:g}) for the "
        "instance to end (completed, failed, cancelled); the answer is then the whole "
        "instance, ended or not. Out of range: 422 naming `wait`.",
        json_schema_extra={"minimum": 0, "maximum": MAX_WAIT_SECONDS},
    ),
]


def check_wait(wait: float | None) -> None:
    """The one rule for ``wait`` on the instances API: 0 to :data:`MAX_WAIT_SECONDS`.

    Raises:
        InvalidParameter: It is out of range (or not a finite number): 422 naming ``wait``.
    """
    if wait is not None and not 0 <= wait <= MAX_WAIT_SECONDS:
        raise InvalidParameter(
            f"wait must be 0 to {MAX_WAIT_SECONDS:g} seconds, not {wait:g}", argument="wait"
        )


def _instances(services: Services) -> PostgresInstances:
    if services.instances is None:
        raise StoreError("this server has no durable runtime: instances are unavailable")
    instances: PostgresInstances = services.instances
    return instances


def _runtime(services: Services) -> InstanceEngine:
    engine: InstanceEngine | None = services.engine or services.runtime
    if engine is None:
        raise StoreError("this server has no durable runtime: instances cannot start")
    return engine


async def read_input(request: Request) -> Any:
    """The JSON body as the input; an empty body is ``{}``.

    Raises:
        InvalidArgument: The body is not JSON, or not an object.
        ValueLimitExceeded: It is nested too deep or too large.
    """
    body = await request.body()
    if not body.strip():
        return {}
    value = _json(body)
    limits.check_value(value, "the instance input")  # 413 VALUE_DEPTH/BYTES_LIMIT
    if not isinstance(value, dict):
        raise InvalidArgument(
            f"the input must be a JSON object, not {type(value).__name__}", argument="body"
        )
    return value


def _json(body: bytes) -> Any:
    try:
        return jsontext.loads(body)  # integers beyond 64 bits stay exact
    except ValueError as exc:
        raise InvalidArgument(f"the body is not JSON: {exc}", argument="body") from None


async def read_inputs(request: Request) -> list[dict[str, Any]]:
    """The inputs of a batch start: ``{"inputs": [object, ...]}``, at most :data:`MAX_BATCH`.

    Raises:
        InvalidArgument: The body is not such an object (``inputs[i]`` names a bad input).
        ValueLimitExceeded: An input is nested too deep or too large.
    """
    body = _json(await request.body())
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list):
        raise InvalidArgument('the body must be {"inputs": [...]}', argument="inputs")
    if not 1 <= len(inputs) <= MAX_BATCH:
        raise InvalidArgument(
            f"a batch holds 1 to {MAX_BATCH} inputs, not {len(inputs)}", argument="inputs"
        )
    extra = sorted(set(body) - {"inputs"})
    if extra:
        raise InvalidArgument(f"unknown field {extra[0]!r} (only: inputs)", argument=extra[0])
    for index, value in enumerate(inputs):
        if not isinstance(value, dict):
            raise InvalidArgument(
                f"inputs[{index}] must be a JSON object, not {type(value).__name__}",
                argument=f"inputs[{index}]",
            )
        limits.check_value(value, f"inputs[{index}]")  # 413 naming it
    return inputs


@router.post(
    "/workflows/{workflow_id}/instances",
    status_code=201,
    response_model=InstanceCreated | InstanceOut,
    responses=_ERRORS,
    openapi_extra=_INPUT_BODY,
    summary="Start an instance",
    dependencies=[requires(RUN)],
)
async def start_instance(
    request: Request,
    workflow_id: WorkflowId,
    services: Services_,
    version: Version = None,
    wait: Wait = None,
) -> Response:
    """Start an instance of the workflow's latest version with the JSON body as input."""
    return await started(request, services, workflow_id, version, wait)


async def started(
    request: Request, services: Services, workflow_id: str, version: str | None, wait: float | None
) -> Response:
    """The answer to a start (the route's work; :mod:`tideflow.api.instance_fastpath`
    calls it too)."""
    check_wait(wait)  # before anything starts
    data = await read_input(request)
    runtime = _runtime(services)
    headers = kept_headers(request.scope["headers"])  # $WORKFLOW.headers, no credentials
    if tracing.enabled():  # the instance's spans continue the request's traceparent
        with tracing.requested(request.headers.get("traceparent")):
            row = await runtime.start_instance(workflow_id, data, version=version, headers=headers)
    else:
        row = await runtime.start_instance(workflow_id, data, version=version, headers=headers)
    response_body: dict[str, Any] = {"id": row.id, "status": row.status}
    if wait is not None:
        waited = await wait_unless_abandoned(request, runtime.wait_for_completion(row.id, wait))
        finished = waited.result() if waited is not None else await _instances(services).get(row.id)
        response_body = finished.to_json()
    response = json_response(response_body, 201)
    response.headers["location"] = f"/instances/{row.id}"
    return response


@router.post(
    "/workflows/{workflow_id}/instances:batch",
    status_code=201,
    response_model=BatchStarted,
    responses={**_ERRORS, 413: {"model": Problem}},
    openapi_extra=_BATCH_BODY,
    summary="Start a batch of instances",
    dependencies=[requires(RUN)],
)
async def start_instances(
    request: Request,
    workflow_id: WorkflowId,
    services: Services_,
    version: Version = None,
) -> Response:
    """Start one instance per input, all in one transaction: all start or none does.

    The answer lists them in the order of the inputs. An invalid input is a 400
    (413 if too large) naming it (``inputs[i]``), and nothing starts.
    """
    inputs = await read_inputs(request)
    headers = kept_headers(request.scope["headers"])  # $WORKFLOW.headers of each
    rows = await _runtime(services).start_instances(
        workflow_id, inputs, version=version, headers=headers
    )
    body = {"instances": [{"id": row.id, "status": row.status} for row in rows]}
    return json_response(body, 201)


@router.get(
    "/instances",
    response_model=InstanceList,
    responses=_ERRORS,
    summary="List",
    dependencies=[requires(READ)],
)
async def list_instances(
    services: Services_,
    workflow: Annotated[str | None, Query(description="Only this workflow's.")] = None,
    status: Annotated[str | None, Query(description="Only instances in this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = 100,
    cursor: Annotated[
        str | None, Query(description="`next` of the previous page (in the same order).")
    ] = None,
    order: Annotated[
        Literal["asc", "desc"],
        Query(description="`desc`: the newest first; `asc`: in the order they started."),
    ] = "desc",
    correlation: Annotated[
        str | None,
        Query(
            description="`KEY:VALUE`: only instances waiting for an event whose correlation "
            "attribute KEY is bound to VALUE (the correlation index of open event waits). "
            "Malformed: 422 naming `correlation`.",
        ),
    ] = None,
) -> Response:
    """Instances, the newest first (``order=asc``: in the order they were started), a
    page at a time; ``correlation=KEY:VALUE`` finds those waiting on a correlation value."""
    rows, after = await _instances(services).list(
        workflow=workflow,
        status=_status(status),
        limit=limit,
        cursor=cursor,
        newest_first=order == "desc",
        correlation=parse_correlation(correlation),
    )
    return json_response({"instances": [r.to_json() for r in rows], "next": after})


@router.get(
    "/instances/{instance_id}",
    response_model=InstanceOut,
    responses=_ERRORS,
    summary="Show",
    dependencies=[requires(READ)],
)
async def show_instance(
    request: Request,
    instance_id: InstanceId,
    services: Services_,
    wait: Wait = None,
) -> Response:
    """Status, current state, data, output or error, and timestamps of an instance."""
    return await shown(request, services, instance_id, wait)


async def shown(
    request: Request, services: Services, instance_id: str, wait: float | None
) -> Response:
    """The answer to a show (the route's work; :mod:`tideflow.api.instance_fastpath`
    calls it too)."""
    check_wait(wait)
    row = await _instances(services).get(instance_id)  # 404 before any wait
    if wait is not None and not row.final and wait > 0:
        row = await _long_poll(request, services, instance_id, wait)
    return json_response(row.to_json())


async def _long_poll(
    request: Request, services: Services, instance_id: str, seconds: float
) -> InstanceRow:
    """The instance once it ends, or as it is after ``seconds``, when the client has
    gone or when the server shuts down (whichever comes first)."""
    waited = await wait_unless_abandoned(
        request, _wait_for_end(_runtime(services), instance_id, seconds)
    )
    if waited is None:  # the client went away or the server is shutting down
        return await _instances(services).get(instance_id)
    return waited.result()  # raises what the wait raised


async def _wait_for_end(runtime: InstanceEngine, instance_id: str, seconds: float) -> InstanceRow:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        slice_ = min(RECHECK_SECONDS, deadline - loop.time())
        row = await runtime.wait_for_completion(instance_id, max(slice_, 0.0))
        if row.final or loop.time() >= deadline:
            return row


@router.get(
    "/instances/{instance_id}/timeline",
    response_model=TimelineOut,
    responses={**_ERRORS, 422: {"model": Problem}},
    summary="Timeline",
    dependencies=[requires(READ)],
)
async def instance_timeline(
    request: Request,
    instance_id: InstanceId,
    services: Services_,
    after: Annotated[
        str | None, Query(description="`next` of the previous page (absent: from the start).")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_TIMELINE_LIMIT, description="Most entries in the page.")
    ] = DEFAULT_TIMELINE_LIMIT,
) -> Response:
    """States entered and left, actions (duration, attempt), events, timers, errors, retries.

    A page at a time, oldest first: ``next`` is the ``after`` of the next page
    (null at the end). An unknown query parameter is a 422 naming it.
    """
    entries, after = await _instances(services).timeline_page(instance_id, after, limit)
    body = {"id": instance_id, "entries": [e.to_json() for e in entries], "next": after}
    return json_response(body)


_DONE: Final = {
    "cancel": "cancelled",
    "suspend": "suspended",
    "resume": "resumed",
    "retry": "retried",
}


async def _act(request: Request, services: Services, action: str, instance_id: str) -> Response:
    """Cancel, suspend or resume through the runtime (it notifies and wakes), else the
    gateway; audited; the instance as it now is."""
    if services.engine is not None or services.runtime is not None:
        runtime = _runtime(services)
        act = {"cancel": runtime.cancel, "suspend": runtime.suspend, "resume": runtime.resume}
        row = await act[action](instance_id)
    else:
        instances = _instances(services)
        gateway = {
            "cancel": instances.request_cancel,
            "suspend": instances.request_suspend,
            "resume": instances.request_resume,
        }
        row = await gateway[action](instance_id)
    await audit.record(
        request,
        f"instance.{_DONE[action]}",
        f"/instances/{instance_id}",
        instanceId=instance_id,
        workflowId=row.workflow_id,
    )
    return json_response(row.to_json())


MAX_CORRELATION_CHARS: Final = 1000
"""The longest ``correlation`` query value."""


def parse_correlation(text: str | None) -> tuple[str, str] | None:
    """``KEY:VALUE`` as ``(key, value)``: split at the first ``:``; both non-empty (the
    value may hold more colons).

    Raises:
        InvalidParameter: Any other shape (a 422 naming ``correlation``).
    """
    if text is None:
        return None
    key, colon, value = text.partition(":")
    if not colon or not key or not value or len(text) > MAX_CORRELATION_CHARS:
        raise InvalidParameter(
            f"correlation must be KEY:VALUE (both non-empty, at most "
            f"{MAX_CORRELATION_CHARS} characters), not {text[:100]!r}",
            argument="correlation",
        )
    return key, value


def _status(text: str | None) -> InstanceStatus | None:
    try:
        return None if text is None else InstanceStatus(text)
    except ValueError:
        shown = ", ".join(InstanceStatus)
        message = f"unknown status {text!r}; one of {shown}"
        raise InvalidArgument(message, argument="status") from None


def _refuse_final(row: InstanceRow, action: str) -> None:
    if row.status.final:
        raise ConflictError(f"instance {row.id!r} has already {row.status}; cannot {action} it")


@router.post(
    "/instances/{instance_id}/cancel",
    response_model=InstanceOut,
    responses=_ERRORS,
    dependencies=[requires(RUN)],
)
async def cancel_instance(
    instance_id: InstanceId, request: Request, services: Services_
) -> Response:
    """Cancel an instance: at once when idle, at its next step when running (409 if ended)."""
    _refuse_final(await _instances(services).get(instance_id), "cancel")
    return await _act(request, services, "cancel", instance_id)


@router.post(
    "/instances/{instance_id}/suspend",
    response_model=InstanceOut,
    responses=_ERRORS,
    dependencies=[requires(RUN)],
)
async def suspend_instance(
    instance_id: InstanceId, request: Request, services: Services_
) -> Response:
    """Suspend an instance until it is resumed (409 if it has ended)."""
    _refuse_final(await _instances(services).get(instance_id), "suspend")
    return await _act(request, services, "suspend", instance_id)


@router.post(
    "/instances/{instance_id}/resume",
    response_model=InstanceOut,
    responses=_ERRORS,
    dependencies=[requires(RUN)],
)
async def resume_instance(
    instance_id: InstanceId, request: Request, services: Services_
) -> Response:
    """Resume a suspended instance; it replays its journal and goes on (409 otherwise)."""
    before = await _instances(services).get(instance_id)
    if before.status != InstanceStatus.SUSPENDED:
        raise ConflictError(f"instance {instance_id!r} is {before.status}, not suspended")
    return await _act(request, services, "resume", instance_id)


@router.post(
    "/instances/{instance_id}/retry",
    response_model=InstanceOut,
    responses=_ERRORS,
    dependencies=[requires(RUN)],
)
async def retry_instance(
    instance_id: InstanceId, request: Request, services: Services_
) -> Response:
    """Run a failed instance again from its failed step (409 unless it failed).

    It replays its journal: every step before the failing one keeps its recorded
    result (nothing is called again); the failed state's steps run again.
    """
    row = await _runtime(services).retry(instance_id)
    await audit.record(
        request,
        "instance.retried",
        f"/instances/{instance_id}",
        instanceId=instance_id,
        workflowId=row.workflow_id,
    )
    return json_response(row.to_json())
