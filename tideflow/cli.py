"""The ``tideflow`` command line.

Each command is a thin shell over the package: it parses flags, calls one
function, and prints. Errors print one clear line; ``--verbose`` adds detail.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from tideflow import __version__
from tideflow.errors import TideflowError

app = typer.Typer(
    name="tideflow",
    help="Tideflow: Serverless Workflow engine on PostgreSQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)


class _State:
    verbose = False


def _version_callback(value: bool) -> None:
    if value:
        print(f"tideflow {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show details of errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Tideflow: Serverless Workflow engine on PostgreSQL."""
    _State.verbose = verbose


def fail(message: str, *, code: int = 1, exc: BaseException | None = None) -> typer.Exit:
    """Print one clear error line (and the traceback under ``--verbose``); return an Exit."""
    err_console.print(f"[red]error:[/red] {message}", markup=True, soft_wrap=True)
    if exc is not None and _State.verbose:
        err_console.print_exception()
    return typer.Exit(code)


# --- commands -------------------------------------------------------------
# Each command group lives in its own section below; keep them thin.


def main() -> None:
    """Entry point of the ``tideflow`` script."""
    try:
        app()
    except TideflowError as exc:  # a last resort: commands handle their own errors
        err_console.print(f"error: {exc}", markup=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
