"""The FastAPI application: :func:`create_app` and the services its routes use.

Routes never reach for module globals: the ``lifespan`` opens a
:class:`Services` container (the database pool, the event store, …) and puts
it on ``app.state``; routes get it through :func:`get_services`. Tests hand
in their own opener, e.g. one around ``InMemoryEventStore``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from tideflow import __version__
from tideflow.api import errors
from tideflow.api.fastpath import Appender, IngestFastPath, Scope
from tideflow.api.routes import (
    buses,
    events,
    health,
    instances,
    metrics,
    subscriptions,
    timers,
    workflows,
)
from tideflow.api.services import Services, ServicesOpener
from tideflow.settings import Settings

log = logging.getLogger("tideflow.api")


@asynccontextmanager
async def open_postgres_services(settings: Settings) -> AsyncIterator[Services]:
    """The production services on PostgreSQL (embedded unless configured).

    Composes, in start order: the pool, the event store, the lifecycle
    publisher, the timer service, the workflow registry and instances
    gateways, and the durable runtime; they stop in reverse order.
    """
    from tideflow.api.compose import open_system  # lazily: test apps need no asyncpg

    async with open_system(settings) as services:
        yield services


def create_app(
    settings: Settings,
    open_services: ServicesOpener | None = None,
    *,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """Build the HTTP API.

    Args:
        settings: The configuration.
        open_services: How to open the services; PostgreSQL by default.
        routers: More routers to include (workflows, instances, …).
    """
    opener = open_services or open_postgres_services

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with opener(settings) as services:
            app.state.services = services
            yield

    app = FastAPI(
        title="Tideflow",
        version=__version__,
        description="Serverless Workflow engine on PostgreSQL: workflows, instances, "
        "CloudEvents ingestion and buses.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(IngestFastPath, resolve=_resolve_ingest)
    builtin = (health.router, metrics.router, events.router, buses.router, timers.router)
    for router in (*builtin, workflows.router, instances.router, subscriptions.router, *routers):
        app.include_router(router)
    return app


def _resolve_ingest(scope: Scope) -> tuple[Appender, int]:
    services: Services = scope["app"].state.services
    return services.ingest or services.events, services.settings.max_request_bytes
