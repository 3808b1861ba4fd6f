"""Liveness: ``GET /healthz`` answers 200 when the event store answers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.responses import Response

from tideflow.api.routes.events import json_response
from tideflow.api.schemas import Health, Problem
from tideflow.api.services import Services, get_services

router = APIRouter(tags=["health"])


@router.get(
    "/healthz", response_model=Health, responses={503: {"model": Problem}}, summary="Health"
)
async def healthz(services: Annotated[Services, Depends(get_services)]) -> Response:
    """``{"status": "ok"}`` once the store can list its buses; 503 (StoreError) if not."""
    await services.events.list_buses()
    return json_response({"status": "ok"})
