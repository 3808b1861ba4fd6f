"""Health: ``GET /healthz`` answers 200 when every component is up, else 503 naming
the ones that are down (the database, a stopped or restarting background task).

The components come from the process's :class:`~tideflow.supervise.HealthBoard`:
the supervisors of its services (no query) and the database probe (one
``SELECT 1`` per second at most, however often it is asked). Without a board
(an app around a bare event store) the store is asked to list its buses.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.responses import Response

from tideflow.api.routes.events import json_response
from tideflow.api.schemas import Health
from tideflow.api.services import Services, get_services

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}}, summary="Health")
async def healthz(services: Annotated[Services, Depends(get_services)]) -> Response:
    """``{"status": "ok", "components": [...]}``, or 503 with ``"status": "unavailable"``
    and a ``detail`` naming each component that is down and why."""
    if services.health is None:
        await services.events.list_buses()  # StoreError: 503
        return json_response({"status": "ok"})
    report = await services.health.report()
    components = [asdict(c) for c in report.components]
    if report.up:
        return json_response({"status": "ok", "components": components})
    detail = "; ".join(f"{c.name}: {c.error or c.state}" for c in report.down)
    body = {"status": "unavailable", "detail": detail, "components": components}
    return json_response(body, status=503)
