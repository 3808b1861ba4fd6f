"""``tideflow worker``: Temporal workers only, and the engine flags ``serve`` shares."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from tideflow._cli.common import fail, out_console
from tideflow.errors import TideflowError

EngineOption = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="What runs instances: postgres (default) or temporal (TIDEFLOW_ENGINE).",
    ),
]
AddressOption = Annotated[
    str | None,
    typer.Option(
        "--temporal-address",
        metavar="HOST:PORT",
        help="The Temporal front end (TIDEFLOW_TEMPORAL_ADDRESS).",
    ),
]
NamespaceOption = Annotated[
    str | None,
    typer.Option("--namespace", help="The Temporal namespace (default: default)."),
]
QueueOption = Annotated[
    str | None,
    typer.Option("--task-queue", help="The Temporal task queue (default: tideflow)."),
]

GrantOption = Annotated[
    list[str] | None,
    typer.Option(
        "--grant-secret",
        metavar="PATTERN=NAME,NAME",
        help="Let workflows whose id matches PATTERN ('*': any characters; sink:HOST "
        "for subscription sinks) receive the secrets NAME (repeatable; adds to "
        "TIDEFLOW_SECRET_GRANTS).",
    ),
]


def with_grants(settings: Any, grants: list[str]) -> Any:
    """``settings`` with ``--grant-secret`` added to its grants; exit 2 on a malformed one."""
    from dataclasses import replace

    from tideflow.secrets import parse_grants

    texts = (*settings.secret_grants, *grants)
    try:
        parse_grants(texts)
    except TideflowError as exc:
        raise fail(f"--grant-secret / TIDEFLOW_SECRET_GRANTS: {exc}", code=2) from None
    return replace(settings, secret_grants=texts)


def with_engine(
    settings: Any,
    engine: str | None,
    address: str | None,
    namespace: str | None,
    queue: str | None,
) -> Any:
    """``settings`` with the engine flags; exit 2 on an unknown engine or a missing address."""
    from dataclasses import replace

    from tideflow.settings import ENGINES

    if engine is not None:
        if engine not in ENGINES:
            raise fail(f"--engine {engine}: one of {', '.join(ENGINES)}", code=2)
        settings = replace(settings, engine=engine)
    if address is not None:
        settings = replace(settings, temporal_address=address)
    if namespace is not None:
        settings = replace(settings, temporal_namespace=namespace)
    if queue is not None:
        settings = replace(settings, temporal_task_queue=queue)
    if settings.engine == "temporal" and not settings.temporal_address:
        raise fail("--engine temporal needs --temporal-address HOST:PORT", code=2)
    return settings


def worker(
    engine: EngineOption = None,
    temporal_address: AddressOption = None,
    namespace: NamespaceOption = None,
    task_queue: QueueOption = None,
    workflows: Annotated[
        list[str] | None,
        typer.Option(
            help="Folder where relative documents and python: modules resolve; repeatable."
        ),
    ] = None,
    functions: Annotated[
        str | None,
        typer.Option("--functions", help="Python file whose callables replace functions by name."),
    ] = None,
    grant_secret: GrantOption = None,
) -> None:
    """Run Temporal workers for Tideflow's instances (no API): start more to scale out.

    The database (TIDEFLOW_DATABASE_URL) must be the one the servers use: workers
    read deployed definitions there and record instances' progress. Function calls
    get the secrets granted to their workflow from this process's TIDEFLOW_SECRET_*
    and TIDEFLOW_SECRETS_FILE (give workers the servers' secrets and grants).
    """
    from tideflow.runtime.hosts.local import load_functions_file
    from tideflow.serve import SystemOptions, run_workers
    from tideflow.settings import Settings

    try:
        settings = Settings.from_env()
    except ValueError as exc:
        raise fail(f"invalid TIDEFLOW_* setting: {exc}", exc=exc) from None
    settings = with_engine(settings, engine, temporal_address, namespace, task_queue)
    settings = with_grants(settings, grant_secret or [])
    if settings.engine != "temporal":
        raise fail("tideflow worker runs Temporal workers: give --engine temporal", code=2)
    try:
        overrides = load_functions_file(functions) if functions else {}
    except TideflowError as exc:
        raise fail(str(exc), code=2) from None
    options = SystemOptions(
        workflow_dirs=[Path(folder) for folder in workflows or []], functions=overrides
    )
    out_console.print(f"tideflow worker: temporal {settings.temporal_address}")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_workers(settings, options, stop)

    try:
        asyncio.run(main())
    except TideflowError as exc:
        raise fail(str(exc), exc=exc) from None
