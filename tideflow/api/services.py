"""The container of services the routes use, and ways to open it.

Routes never reach for module globals: the app's ``lifespan`` opens a
:class:`Services` container and puts it on ``app.state``; routes get it
through the :func:`get_services` dependency.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from fastapi import Request

from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.eventstore.store import EventStore
from tideflow.settings import Settings


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """Everything the routes need, opened by the app's lifespan.

    Later components (workflows, instances, subscriptions, timers) add their
    own fields here.

    Attributes:
        settings: The configuration.
        events: The event store.
        clock: The clock.
    """

    settings: Settings
    events: EventStore
    clock: Clock = SYSTEM_CLOCK


ServicesOpener = Callable[[Settings], AbstractAsyncContextManager[Services]]
"""Opens the services for the app's lifetime and closes them afterwards."""


async def get_services(request: Request) -> Services:
    """The dependency that gives a route the app's services.

    It is ``async`` on purpose: FastAPI runs plain ``def`` dependencies in a
    thread pool, which costs a thread hand-off on every request.
    """
    services: Services = request.app.state.services
    return services


def with_store(store: EventStore, clock: Clock = SYSTEM_CLOCK) -> ServicesOpener:
    """An opener around an existing store: starts it with the app and stops it after."""

    @asynccontextmanager
    async def open_services(settings: Settings) -> AsyncIterator[Services]:
        await store.start()
        try:
            yield Services(settings=settings, events=store, clock=clock)
        finally:
            await store.stop()

    return open_services
