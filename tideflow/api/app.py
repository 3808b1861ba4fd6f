"""The FastAPI application: :func:`create_app` and the services its routes use.

Routes never reach for module globals: the ``lifespan`` opens a
:class:`Services` container (the database pool, the event store, …) and puts
it on ``app.state``; routes get it through :func:`get_services`. Tests hand
in their own opener, e.g. one around ``InMemoryEventStore``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from tideflow import __version__, console
from tideflow.api import docs, errors
from tideflow.api.access import AccessGate, AccessPolicy, document_security
from tideflow.api.body_limit import BodyLimit, Limit, limit_for
from tideflow.api.fastpath import IngestFastPath, Scope
from tideflow.api.instance_fastpath import InstanceFastPath
from tideflow.api.routes import (
    buses,
    cluster,
    connectors,
    events,
    health,
    instances,
    metrics,
    secrets,
    subscriptions,
    timers,
    tokens,
    workflows,
)
from tideflow.api.schemas import Problem
from tideflow.api.services import Services, ServicesOpener
from tideflow.errors import ConfigurationError
from tideflow.eventstore.store import Appender
from tideflow.settings import Settings

log = logging.getLogger("tideflow.api")


def create_app(
    settings: Settings,
    open_services: ServicesOpener | None = None,
    *,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """Build the HTTP API.

    Args:
        settings: The configuration.
        open_services: How to open the services: :func:`tideflow.serve.open_system`
            for the whole system on PostgreSQL. ``None`` builds an app that
            cannot start, for its OpenAPI document only.
        routers: More routers to include (workflows, instances, …).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if open_services is None:
            raise ConfigurationError("this app has no services: pass open_services")
        async with open_services(settings) as services:
            app.state.services = services
            app.state.access = AccessPolicy.for_services(services)
            if settings.insecure_local:
                log.warning("--insecure-local: no API token is needed on %s", settings.host)
            yield

    app = FastAPI(
        title="Tideflow",
        version=__version__,
        description="Serverless Workflow engine on PostgreSQL: workflows, instances, "
        "CloudEvents ingestion and buses.",
        lifespan=lifespan,
        docs_url=None,  # docs.install: Swagger UI from the package, not a CDN
        redoc_url=None,
    )
    app.state.draining = asyncio.Event()  # set as the server shuts down: long polls answer
    errors.install(app)
    app.add_middleware(InstanceFastPath)  # behind the body limit: it caps the input
    app.add_middleware(BodyLimit, resolve=_resolve_body_limit)  # behind the fast path
    app.add_middleware(IngestFastPath, resolve=_resolve_ingest)
    app.add_middleware(AccessGate, resolve=_resolve_access)  # added last: runs first
    builtin = (health.router, metrics.router, events.router, buses.router, timers.router)
    domain = (
        workflows.router,
        instances.router,
        subscriptions.router,
        connectors.router,
        cluster.router,
        tokens.router,
        secrets.router,
    )
    for router in (*builtin, *domain, *routers):
        app.include_router(router)
    docs.install(app)
    console.install(app)
    _document_access_and_problems(app)
    return app


def _document_access_and_problems(app: FastAPI) -> None:
    """The OpenAPI document declares the bearer token, the gate's answers and the problem
    bodies as they are sent (built once, then cached by FastAPI)."""
    build = app.openapi
    models: tuple[type[Problem], ...] = (Problem, *Problem.__subclasses__())
    problems = frozenset(model.__name__ for model in models)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = errors.document_problems(document_security(build()), problems)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way


def _resolve_ingest(scope: Scope) -> tuple[Appender, int]:
    services: Services = scope["app"].state.services
    return services.ingest or services.events, services.settings.max_request_bytes


def _resolve_body_limit(scope: Scope) -> Limit:
    services: Services = scope["app"].state.services
    return limit_for(scope, services.settings)


def _resolve_access(scope: Scope) -> AccessPolicy:
    policy: AccessPolicy = scope["app"].state.access
    return policy
