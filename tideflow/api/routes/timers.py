"""Timers: inspect durable timers, list and cancel the delayed events a bus holds."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from tideflow.api.access import requires
from tideflow.api.routes.events import json_response
from tideflow.api.schemas import Problem, ScheduledEvent, ScheduledList, TimerList
from tideflow.api.services import Services, get_services
from tideflow.auth.scopes import PUBLISH, READ, SUBSCRIBE
from tideflow.errors import InvalidArgument, StoreError, TimerNotFound
from tideflow.isotime import format_timestamp
from tideflow.timer.delayed import DELAYED_EVENT_KIND, list_scheduled
from tideflow.timer.records import TimerRecord, TimerState
from tideflow.timer.service import TimerService

router = APIRouter(tags=["timers"])

_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": Problem} for code in (400, 404, 503)
}
BusName = Annotated[str, Path(description="The bus name.")]
TimerId = Annotated[str, Path(description="The timer holding the event.")]
Services_ = Annotated[Services, Depends(get_services)]
Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many.")]


def _timers(services: Services) -> TimerService:
    timers: TimerService | None = getattr(services, "timers", None)
    if timers is None:
        raise StoreError("the timer service is not running in this server")
    return timers


def scheduled_json(timer: TimerRecord) -> dict[str, Any]:
    """A held event as the API shows it."""
    return {
        "timerId": timer.id,
        "deliveryTime": format_timestamp(timer.due_at),
        "event": timer.payload.get("event"),
    }


@router.get(
    "/timers",
    response_model=TimerList,
    responses=_ERRORS,
    summary="List timers",
    dependencies=[requires(READ)],
)
async def list_timers(
    services: Services_,
    kind: Annotated[str | None, Query(description="Only timers of this kind.")] = None,
    state: Annotated[
        str | None, Query(description="pending (default), fired, cancelled or all.")
    ] = "pending",
    limit: Limit = 100,
) -> Response:
    """Timers in due order (``kind`` and ``state`` filter them)."""
    wanted = None if state in (None, "all") else _state(state)
    found = await _timers(services).list_timers(kind=kind, state=wanted, limit=limit)
    return json_response({"timers": [timer.to_json() for timer in found]})


def _state(text: str) -> TimerState:
    try:
        return TimerState(text)
    except ValueError as exc:
        raise InvalidArgument(
            f"state must be pending, fired, cancelled or all, not {text!r}", argument="state"
        ) from exc


@router.get(
    "/buses/{bus}/scheduled",
    response_model=ScheduledList,
    responses=_ERRORS,
    summary="List held events",
    dependencies=[requires(SUBSCRIBE + ":{bus}")],
)
async def list_bus_scheduled(bus: BusName, services: Services_, limit: Limit = 100) -> Response:
    """Events posted with ``deliverytime`` or ``delay`` and not yet delivered, soonest first."""
    await services.events.get_bus(bus)
    held = await list_scheduled(_timers(services), bus, limit)
    return json_response({"bus": bus, "scheduled": [scheduled_json(t) for t in held]})


async def _held(services: Services, bus: str, timer_id: str) -> TimerRecord:
    timer = await _timers(services).get(timer_id)
    if (
        timer is None
        or timer.kind != DELAYED_EVENT_KIND
        or timer.state is not TimerState.PENDING
        or timer.payload.get("bus") != bus
    ):
        raise TimerNotFound(f"no event held for bus {bus!r} by timer {timer_id!r}")
    return timer


@router.get(
    "/buses/{bus}/scheduled/{timer_id}",
    response_model=ScheduledEvent,
    responses=_ERRORS,
    summary="Show a held event",
    dependencies=[requires(SUBSCRIBE + ":{bus}")],
)
async def show_bus_scheduled(bus: BusName, timer_id: TimerId, services: Services_) -> Response:
    """One held event."""
    return json_response(scheduled_json(await _held(services, bus, timer_id)))


@router.delete(
    "/buses/{bus}/scheduled/{timer_id}",
    status_code=204,
    responses=_ERRORS,
    summary="Cancel a held event",
    dependencies=[requires(PUBLISH + ":{bus}")],
)
async def cancel_bus_scheduled(bus: BusName, timer_id: TimerId, services: Services_) -> Response:
    """Cancel a held event: it is never delivered."""
    await _held(services, bus, timer_id)
    if not await _timers(services).cancel(timer_id):
        raise TimerNotFound(f"no event held for bus {bus!r} by timer {timer_id!r}")
    return Response(status_code=204)
