"""What every command module shares: consoles, the one-line error, the API call."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from tideflow.errors import TideflowError

err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)


class CliState:
    """Flags of the root command that every command reads."""

    verbose = False
    token: str | None = None
    ca_cert: Path | None = None


def fail(message: str, *, code: int = 1, exc: BaseException | None = None) -> typer.Exit:
    """Print one clear error line (and the traceback under ``--verbose``); return an Exit."""
    err_console.print(f"[red]error:[/red] {message}", markup=True, soft_wrap=True)
    if exc is not None and CliState.verbose:
        err_console.print_exception()
    return typer.Exit(code)


ServerOption = Annotated[
    str,
    typer.Option("--server", envvar="TIDEFLOW_SERVER", help="URL of the Tideflow server."),
]
DEFAULT_SERVER = "http://127.0.0.1:8080"


def _remember_token(value: str | None) -> str | None:
    if value:
        CliState.token = value
    return value


TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="TIDEFLOW_TOKEN",
        callback=_remember_token,
        show_default=False,
        help="API token (default: the first admin token saved in TIDEFLOW_HOME, "
        "for a server on this machine).",
    ),
]


def token_for(server: str) -> str | None:
    """The token to send to ``server``: ``--token``/``TIDEFLOW_TOKEN``, else the
    first admin token saved in ``TIDEFLOW_HOME`` when the server is on this machine."""
    if CliState.token:
        return CliState.token
    from urllib.parse import urlsplit

    from tideflow.auth.first_token import read_token_file
    from tideflow.auth.hygiene import is_loopback
    from tideflow.settings import Settings

    host = urlsplit(server).hostname or ""
    if not is_loopback(host):
        return None
    return read_token_file(Settings.from_env().home)


def call_api(server: str, action: Any) -> Any:
    """Run ``action(client)`` against ``server``; a failure becomes one error line."""
    import asyncio

    from tideflow.client import ApiClient

    async def go() -> Any:
        async with ApiClient(server, token=token_for(server), ca_cert=CliState.ca_cert) as client:
            return await action(client)

    try:
        return asyncio.run(go())
    except TideflowError as exc:
        raise fail(str(exc), exc=exc) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        # Ctrl-C. asyncio.run cancels its task and raises KeyboardInterrupt, but a SIGINT
        # that lands while it starts up (CPython 3.11 zeroes its interrupt count after
        # installing its handler) leaves the bare CancelledError; nothing else cancels it
        raise typer.Exit(130) from None


def print_json(value: Any) -> None:
    import orjson

    print(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())
