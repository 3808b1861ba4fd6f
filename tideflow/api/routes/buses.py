"""Bus management: create, list, show (with figures) and delete buses."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import Response

from tideflow.api import audit
from tideflow.api.access import requires
from tideflow.api.routes.events import json_response
from tideflow.api.schemas import BusInfoOut, BusList, BusOut, CreateBus, Problem
from tideflow.api.services import Services, get_services
from tideflow.auth.scopes import ADMIN, READ
from tideflow.egress import EgressPolicy
from tideflow.errors import EgressDenied, InvalidArgument, ProtectedResource
from tideflow.eventstore.archive import check_egress, resolve_target
from tideflow.eventstore.store import (
    INTERNAL_BUS_PREFIX,
    ArchivePolicy,
    Retention,
    check_segment_events,
)

router = APIRouter(tags=["buses"])

_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": Problem} for code in (400, 404, 409, 503)
}
BusName = Annotated[str, Path(description="The bus name.")]
Services_ = Annotated[Services, Depends(get_services)]


@router.post(
    "/buses",
    status_code=201,
    response_model=BusOut,
    responses=_ERRORS,
    summary="Create a bus",
    dependencies=[requires(ADMIN)],
)
async def create_bus(body: CreateBus, request: Request, services: Services_) -> Response:
    """Create a bus with an optional retention (``maxAge`` ISO 8601 duration, ``maxEvents``),
    segment size (``segmentEvents``) and archive tier (``archive: {after, to}``)."""
    raw = body.retention.model_dump(exclude_none=True) if body.retention else None
    retention = Retention.from_json(raw)
    if retention is not None and retention.unlimited:
        retention = None
    segment_events = None
    if body.segmentEvents is not None:
        segment_events = check_segment_events(body.segmentEvents)
    archive = await _archive(body, services)
    bus = await services.events.create_bus(
        body.name, retention, segment_events=segment_events, archive=archive
    )
    await audit.record(request, "bus.created", f"/buses/{bus.name}", bus=bus.name)
    response = json_response(bus.to_json(), 201)
    response.headers["location"] = f"/buses/{bus.name}"
    return response


async def _archive(body: CreateBus, services: Services) -> ArchivePolicy | None:
    """The bus's archive policy with ``to`` checked: a local folder under the archive root,
    an object store the egress policy lets the server reach."""
    if body.archive is None:
        return None
    policy = ArchivePolicy.from_json(body.archive.model_dump())
    if policy is None:
        return None
    settings = services.settings
    to = resolve_target(policy.to, settings.archive_folder)
    try:
        await check_egress(to, EgressPolicy.for_server(settings.egress_allow))
    except EgressDenied as exc:
        raise InvalidArgument(f"archive.to: {exc.message}", argument="archive.to") from None
    return replace(policy, to=to)


@router.get(
    "/buses",
    response_model=BusList,
    responses=_ERRORS,
    summary="List buses",
    dependencies=[requires(READ)],
)
async def list_buses(services: Services_) -> Response:
    """Every bus, by name."""
    buses = await services.events.list_buses()
    return json_response({"buses": [bus.to_json() for bus in buses]})


@router.get(
    "/buses/{bus}",
    response_model=BusInfoOut,
    responses=_ERRORS,
    summary="Show a bus",
    dependencies=[requires(READ)],
)
async def show_bus(bus: BusName, services: Services_) -> Response:
    """A bus with its first and last offset, segments, size on disk and recent rate."""
    info = await services.events.get_bus(bus)
    return json_response(info.to_json())


@router.delete(
    "/buses/{bus}",
    status_code=204,
    responses=_ERRORS,
    summary="Delete a bus",
    dependencies=[requires(ADMIN)],
)
async def delete_bus(bus: BusName, request: Request, services: Services_) -> Response:
    """Delete a bus and all its events (409 for ``default`` and the server's ``tideflow.*``)."""
    if bus.startswith(INTERNAL_BUS_PREFIX):
        raise ProtectedResource(f"bus {bus!r} is the server's own: it cannot be deleted")
    await services.events.delete_bus(bus)
    await audit.record(request, "bus.deleted", f"/buses/{bus}", bus=bus)
    return Response(status_code=204)
