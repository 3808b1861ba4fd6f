"""The whole system in one process: what ``tideflow serve`` runs behind the API.

:func:`open_system` opens, in order, the database (embedded PostgreSQL unless
``TIDEFLOW_DATABASE_URL`` is set; migrations applied), the event store, the
lifecycle publisher (bus ``tideflow.lifecycle``), the timer service (delayed
events; the runtime's sleeps, timeouts and retries), the workflow registry
and instances gateways, the durable runtime, and finally deploys the
definitions of ``--workflows`` folders. It closes them in reverse order: the
runtime first, so in-flight steps finish or are left to replay from their
journal, then the timers, the store and the pool.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from tideflow.api.routes.metrics import Metrics
from tideflow.api.routes.workflows import deploy_definition
from tideflow.api.services import Services, ServicesOpener
from tideflow.errors import TideflowError, WorkflowLoadError, WorkflowValidationError
from tideflow.runtime.lifecycle import LifecyclePublisher
from tideflow.settings import Settings

log = logging.getLogger("tideflow.serve")

DEFINITION_SUFFIXES = (".yaml", ".yml", ".json")


@asynccontextmanager
async def open_system(
    settings: Settings, *, workflow_dirs: Sequence[Path] = ()
) -> AsyncIterator[Services]:
    """Open every service (see the module docs); close them all on exit.

    Args:
        settings: The configuration.
        workflow_dirs: Folders whose definitions are deployed on start.
    """
    from tideflow.db import open_database
    from tideflow.eventstore.postgres import PostgresEventStore
    from tideflow.runtime.persistence import PostgresInstances, PostgresRegistry
    from tideflow.timer.delayed import (
        DELAYED_EVENT_KIND,
        DelayingAppender,
        delayed_event_handler,
    )
    from tideflow.timer.service import TimerService

    async with AsyncExitStack() as stack:
        database = await stack.enter_async_context(open_database(settings, max_size=20))
        store = PostgresEventStore(database.pool, segment_size=settings.segment_size)
        await store.start()
        stack.push_async_callback(store.stop)
        metrics = Metrics()
        lifecycle = LifecyclePublisher(store, on_publish=metrics.lifecycle_published)
        await lifecycle.start()
        timers = TimerService(database.pool)
        timers.register(DELAYED_EVENT_KIND, delayed_event_handler(store))
        registry = PostgresRegistry(database.pool)
        runtime = _make_runtime(database.pool, store, timers, lifecycle, metrics, workflow_dirs)
        await timers.start()
        stack.push_async_callback(timers.stop)
        if runtime is not None:
            await runtime.start()
            stack.push_async_callback(runtime.stop)  # stops first: in-flight steps settle
        services = Services(
            settings=settings,
            events=store,
            timers=timers,
            ingest=DelayingAppender(store, timers),
            registry=registry,
            instances=PostgresInstances(database.pool),
            runtime=runtime,
            metrics=metrics,
            lifecycle=lifecycle,
        )
        for folder in workflow_dirs:
            await deploy_folder(registry, folder)
        yield services


def open_system_with(workflow_dirs: Sequence[Path]) -> ServicesOpener:
    """An opener for :func:`~tideflow.api.app.create_app` that deploys ``workflow_dirs``."""

    def opener(settings: Settings) -> AbstractAsyncContextManager[Services]:
        return open_system(settings, workflow_dirs=workflow_dirs)

    return opener


def _make_runtime(
    pool: Any,
    store: Any,
    timers: Any,
    lifecycle: LifecyclePublisher,
    metrics: Metrics,
    workflow_dirs: Sequence[Path],
) -> Any:
    """The durable runtime wired to the timer service, event store, lifecycle and metrics."""
    try:
        from tideflow.runtime.hosts.durable import DurableRuntime
    except ImportError:  # pragma: no cover - only while the durable host is being written
        log.warning("the durable runtime is not available: instances cannot run")
        return None
    return DurableRuntime(pool, timers=timers, events=store, on_lifecycle=lifecycle)


def definition_files(folder: Path) -> list[Path]:
    """The workflow definitions directly in ``folder``, by name.

    Files that are not definitions (an input ``NAME.input.json``, an
    ``apis/`` document) are skipped: only ``.yaml``/``.yml``/``.json`` files
    whose name has no other dot-separated part.
    """
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and path.suffix in DEFINITION_SUFFIXES and "." not in path.stem
    )


async def deploy_folder(registry: Any, folder: Path) -> list[str]:
    """Deploy every definition in ``folder``; log (never raise for) bad ones.

    Local references (``apis/pets.yaml``, ``python:`` modules) resolve
    against the folder: these files are the operator's, not a user's.

    Returns:
        ``id@version`` of each definition deployed.
    """
    deployed = []
    for path in definition_files(folder):
        media = "application/json" if path.suffix == ".json" else "application/yaml"
        try:
            text = path.read_text(encoding="utf-8")
            result = await deploy_definition(
                registry, text, media, base_dir=path.parent, source=str(path)
            )
        except (WorkflowLoadError, WorkflowValidationError) as exc:
            log.error("not deployed: %s", exc.message)
            continue
        except (OSError, TideflowError) as exc:
            log.error("not deployed: %s: %s", path, exc)
            continue
        deployed.append(f"{result.version.workflow_id}@{result.version.version}")
    if deployed:
        log.info("deployed from %s: %s", folder, ", ".join(deployed))
    return deployed
