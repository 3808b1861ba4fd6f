"""The container of services the routes use, and ways to open it.

Routes never reach for module globals: the app's ``lifespan`` opens a
:class:`Services` container and puts it on ``app.state``; routes get it
through the :func:`get_services` dependency.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.eventstore.store import EventStore
from tideflow.settings import Settings

if TYPE_CHECKING:
    from tideflow.auth.audit import AuditTrail
    from tideflow.auth.verifier import TokenStore, TokenVerifier
    from tideflow.cluster.membership import Cluster
    from tideflow.connectors.service import ConnectorService
    from tideflow.console.session import SessionStore
    from tideflow.eventstore.store import Appender
    from tideflow.metrics import Metrics
    from tideflow.runtime.engine import InstanceEngine
    from tideflow.runtime.functions.policy import PythonPolicy
    from tideflow.runtime.gateway import PostgresInstances, PostgresRegistry
    from tideflow.runtime.hosts.durable import DurableRuntime
    from tideflow.runtime.lifecycle import LifecyclePublisher
    from tideflow.runtime.start_schedules import WorkflowSchedules
    from tideflow.secrets import SecretAccess
    from tideflow.supervise import HealthBoard
    from tideflow.timer.service import TimerService
    from tideflow.triggers.dispatcher import Dispatcher


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """Everything the routes need, opened by the app's lifespan.

    Later components (workflows, instances, subscriptions, timers) add their
    own fields here.

    Attributes:
        settings: The configuration.
        events: The event store.
        clock: The clock.
        timers: The timer service (delayed events, schedules).
        ingest: What ingestion appends through, when not ``events``.
        registry: The workflow registry (``None``: no durable runtime).
        instances: The instances gateway (``None``: no durable runtime).
        runtime: The durable runtime that runs instances (``None`` under ``--engine temporal``).
        engine: What the instances API starts and stops instances with: the durable
            runtime, or the Temporal engine (``None``: ``runtime``).
        metrics: The Prometheus metrics of this process.
        lifecycle: Publishes lifecycle events to the bus ``tideflow.lifecycle``.
        dispatcher: Runs the subscriptions (``None``: no subscriptions API).
        schedules: Registers ``start.schedule`` of deployed workflows with the timers.
        python_policy: Which modules ``python:`` functions of deployed definitions
            may import (``None``: only ``settings.python_modules``).
        health: The supervisors and probes ``/healthz`` reports (``None``: it asks
            the event store).
        tokens: The API tokens (``None``: no token is valid; only
            ``--insecure-local`` lets requests in).
        verifier: Checks presented tokens (``None``: one over ``tokens`` is made).
        audit: Appends who changed what to the bus ``tideflow.audit`` (``None``: no trail).
        connectors: Sources and sinks (``None``: no connectors API).
        secrets: The operator's secrets and their grants (``None``: deploys are
            not checked against grants, and ``/secrets/grants`` answers 404).
        cluster: This process's membership and leases (``None``: ``/cluster`` answers 503).
        console_sessions: Where the web console keeps its sessions (``None``: in this
            process's memory).
    """

    settings: Settings
    events: EventStore
    clock: Clock = SYSTEM_CLOCK
    timers: TimerService | None = None
    ingest: Appender | None = None
    registry: PostgresRegistry | None = None
    instances: PostgresInstances | None = None
    runtime: DurableRuntime | None = None
    engine: InstanceEngine | None = None
    metrics: Metrics | None = None
    lifecycle: LifecyclePublisher | None = None
    dispatcher: Dispatcher | None = None
    schedules: WorkflowSchedules | None = None
    python_policy: PythonPolicy | None = None
    health: HealthBoard | None = None
    tokens: TokenStore | None = None
    verifier: TokenVerifier | None = None
    audit: AuditTrail | None = None
    connectors: ConnectorService | None = None
    secrets: SecretAccess | None = None
    cluster: Cluster | None = None
    console_sessions: SessionStore | None = None


ServicesOpener = Callable[[Settings], AbstractAsyncContextManager[Services]]
"""Opens the services for the app's lifetime and closes them afterwards."""


async def get_services(request: Request) -> Services:
    """The dependency that gives a route the app's services.

    It is ``async`` on purpose: FastAPI runs plain ``def`` dependencies in a
    thread pool, which costs a thread hand-off on every request.
    """
    services: Services = request.app.state.services
    return services


def with_store(
    store: EventStore, clock: Clock = SYSTEM_CLOCK, *, tokens: TokenStore | None = None
) -> ServicesOpener:
    """An opener around an existing store: starts it with the app and stops it after.

    ``tokens`` are the API tokens it accepts (none without them).
    """

    @asynccontextmanager
    async def open_services(settings: Settings) -> AsyncIterator[Services]:
        await store.start()
        try:
            yield Services(settings=settings, events=store, clock=clock, tokens=tokens)
        finally:
            await store.stop()

    return open_services
