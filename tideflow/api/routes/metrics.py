"""Prometheus metrics at ``GET /metrics`` (the figures: :mod:`tideflow.metrics`)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from tideflow.api.access import requires
from tideflow.api.services import Services, get_services
from tideflow.auth.scopes import READ
from tideflow.errors import TideflowError
from tideflow.metrics import Metrics

log = logging.getLogger("tideflow.api")

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
    summary="Prometheus metrics",
    dependencies=[requires(READ)],
)
async def metrics(services: Annotated[Services, Depends(get_services)]) -> Response:
    """Instances by status, step and journal commit latency, events in and out."""
    current = services.metrics
    if current is None:
        current = Metrics()
    try:
        commits = services.runtime.writer.commits if services.runtime is not None else 0
        await current.refresh(services.events, services.instances, commits)
        if services.connectors is not None:
            await services.connectors.report(current)
    except TideflowError as exc:  # a scrape still answers with what this process knows
        log.warning("metrics: could not read the database: %s", exc)
    return Response(current.render(), media_type=CONTENT_TYPE_LATEST)
