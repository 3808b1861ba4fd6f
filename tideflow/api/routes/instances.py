"""Workflow instances: start, list, show, timeline, cancel, suspend, resume.

An instance runs on the durable runtime (:mod:`tideflow.runtime.hosts.durable`);
these routes start instances through it and read or change them through the
instances gateway. Cancel and suspend take effect at once for an idle
instance and at the next step of a running one; the response shows the
instance as it is when the request is answered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from tideflow import jsontext, limits
from tideflow.api import audit
from tideflow.api.access import requires
from tideflow.api.errors import problem
from tideflow.api.routes.events import json_response
from tideflow.api.schemas import InstanceCreated, InstanceList, InstanceOut, Problem, TimelineOut
from tideflow.api.services import Services, get_services
from tideflow.auth.scopes import READ, RUN
from tideflow.errors import ConflictError, InvalidArgument, StoreError
from tideflow.runtime.status import InstanceStatus

if TYPE_CHECKING:
    from tideflow.runtime.gateway import InstanceRow, PostgresInstances
    from tideflow.runtime.hosts.durable import DurableRuntime

router = APIRouter(tags=["instances"])

MAX_WAIT_SECONDS: Final = 300.0
MAX_LIMIT: Final = 1000
DEFAULT_TIMELINE_LIMIT: Final = 500
"""Timeline entries per page unless ``limit`` says otherwise."""
MAX_TIMELINE_LIMIT: Final = 5000
"""Most timeline entries one page may hold."""
_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": Problem} for code in (400, 404, 409, 503)
}
_INPUT_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": False,
        "description": "The instance's input: a JSON object (empty body: `{}`).",
        "content": {"application/json": {"schema": {"type": "object"}, "example": {"name": "Ada"}}},
    }
}

InstanceId = Annotated[str, Path(description="The instance id.")]
Services_ = Annotated[Services, Depends(get_services)]


def _instances(services: Services) -> PostgresInstances:
    if services.instances is None:
        raise StoreError("this server has no durable runtime: instances are unavailable")
    instances: PostgresInstances = services.instances
    return instances


def _runtime(services: Services) -> DurableRuntime:
    if services.runtime is None:
        raise StoreError("this server has no durable runtime: instances cannot start")
    runtime: DurableRuntime = services.runtime
    return runtime


async def read_input(request: Request) -> Any:
    """The JSON body as the input; an empty body is ``{}``.

    Raises:
        InvalidArgument: The body is not JSON, or not an object.
        ValueLimitExceeded: It is nested too deep or too large.
    """
    body = await request.body()
    if not body.strip():
        return {}
    try:
        value = jsontext.loads(body)  # integers beyond 64 bits stay exact
    except ValueError as exc:
        raise InvalidArgument(f"the input is not JSON: {exc}", argument="body") from None
    limits.check_value(value, "the instance input")  # 413 VALUE_DEPTH/BYTES_LIMIT
    if not isinstance(value, dict):
        raise InvalidArgument(
            f"the input must be a JSON object, not {type(value).__name__}", argument="body"
        )
    return value


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
    workflow_id: Annotated[str, Path(description="The workflow's `id`.")],
    services: Services_,
    version: Annotated[
        str | None, Query(description="Run this version instead of the latest.")
    ] = None,
    wait: Annotated[
        float | None,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description="Wait up to this many seconds for the instance to end; the "
            "response is then the whole instance (finished if it ended in time).",
        ),
    ] = None,
) -> Response:
    """Start an instance of the workflow's latest version with the JSON body as input."""
    data = await read_input(request)
    runtime = _runtime(services)
    row = await runtime.start_instance(workflow_id, data, version=version)
    response_body: dict[str, Any] = {"id": row.id, "status": row.status}
    if wait is not None:
        finished = await runtime.wait_for_completion(row.id, wait)
        response_body = finished.to_json()
    response = json_response(response_body, 201)
    response.headers["location"] = f"/instances/{row.id}"
    return response


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
    cursor: Annotated[str | None, Query(description="`next` of the previous page.")] = None,
) -> Response:
    """Instances in the order they were started, a page at a time."""
    rows, after = await _instances(services).list(
        workflow=workflow, status=_status(status), limit=limit, cursor=cursor
    )
    return json_response({"instances": [r.to_json() for r in rows], "next": after})


@router.get(
    "/instances/{instance_id}",
    response_model=InstanceOut,
    responses=_ERRORS,
    summary="Show",
    dependencies=[requires(READ)],
)
async def show_instance(instance_id: InstanceId, services: Services_) -> Response:
    """Status, current state, data, output or error, and timestamps of an instance."""
    row = await _instances(services).get(instance_id)
    return json_response(row.to_json())


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
    unknown = sorted(set(request.query_params) - {"after", "limit"})
    if unknown:
        detail = f"unknown query parameter {unknown[0]!r} (allowed: after, limit)"
        return problem(422, "unknown-parameter", "Unknown query parameter", detail, unknown[0])
    entries, after = await _instances(services).timeline_page(instance_id, after, limit)
    body = {"id": instance_id, "entries": [e.to_json() for e in entries], "next": after}
    return json_response(body)


_DONE: Final = {"cancel": "cancelled", "suspend": "suspended", "resume": "resumed"}


async def _act(request: Request, services: Services, action: str, instance_id: str) -> Response:
    """Cancel, suspend or resume through the runtime (it notifies and wakes), else the
    gateway; audited; the instance as it now is."""
    if services.runtime is not None:
        runtime = services.runtime
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
