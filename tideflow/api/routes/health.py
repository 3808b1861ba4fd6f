"""Health: ``GET /healthz`` answers 200 when every component is up, else 503 naming
the ones that are down (the database, a stopped or restarting background task).
``GET /readyz`` answers the same, and 503 as well while the server drains (a
SIGTERM or SIGINT was received; ``app.state.draining``): a load balancer
stops sending it requests, while ``/healthz`` still says the process lives.
Neither needs a token.

The components come from the process's :class:`~tideflow.supervise.HealthBoard`:
the supervisors of its services (no query) and the database probe (one
``SELECT 1`` per second at most, however often it is asked). Without a board
(an app around a bare event store) the store is asked to list its buses.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from tideflow.api.routes.events import json_response
from tideflow.api.schemas import Health
from tideflow.api.services import Services, get_services

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}}, summary="Health")
async def healthz(services: Annotated[Services, Depends(get_services)]) -> Response:
    """``{"status": "ok", "components": [...]}``, or 503 with ``"status": "unavailable"``
    and a ``detail`` naming each component that is down and why."""
    return await _report(services, draining=False)


@router.get(
    "/readyz", response_model=Health, responses={503: {"model": Health}}, summary="Readiness"
)
async def readyz(
    request: Request, services: Annotated[Services, Depends(get_services)]
) -> Response:
    """As ``/healthz``, and 503 with ``detail`` starting ``draining`` once the server
    has begun to shut down: ready means every component is up and it takes work."""
    draining = getattr(request.app.state, "draining", None)
    return await _report(services, draining=draining is not None and draining.is_set())


async def _report(services: Services, *, draining: bool) -> Response:
    why = ["draining: the server is shutting down"] if draining else []
    body: dict[str, object] = {}
    if services.health is None:
        await services.events.list_buses()  # StoreError: 503
    else:
        report = await services.health.report()
        body["components"] = [asdict(c) for c in report.components]
        why += [f"{c.name}: {c.error or c.state}" for c in report.down]
    if not why:
        return json_response({"status": "ok", **body})
    return json_response({"status": "unavailable", "detail": "; ".join(why), **body}, status=503)
