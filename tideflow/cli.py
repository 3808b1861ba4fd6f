"""The ``tideflow`` command line.

Each command is a thin shell over the package: it parses flags, calls one
function, and prints. Errors print one clear line; ``--verbose`` adds detail.
The commands live in ``tideflow._cli``, one module per group; this module
assembles them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tideflow import __version__
from tideflow._cli import (
    cluster,
    connectors,
    demo,
    local,
    registry,
    secrets,
    server,
    subscriptions,
    tokens,
    worker,
)
from tideflow._cli.common import CliState, err_console
from tideflow._cli.help import tidy_help
from tideflow.errors import TideflowError

app = typer.Typer(
    name="tideflow",
    help="Tideflow: Serverless Workflow engine on PostgreSQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
    ca_cert: Annotated[
        Path | None,
        typer.Option(
            "--ca-cert",
            envvar="TIDEFLOW_CA_CERT",
            metavar="PEM",
            help="Trust an https:// server whose certificate this authority (or self-signed "
            "certificate) issued, instead of the system's authorities.",
        ),
    ] = None,
) -> None:
    """Tideflow: Serverless Workflow engine on PostgreSQL."""
    CliState.verbose = verbose
    CliState.ca_cert = ca_cert


app.command()(local.validate)
app.command()(local.run)
app.command()(server.serve)
app.command()(worker.worker)
app.command("demo-services")(demo.demo_services)
app.add_typer(server.events_app, name="events")
app.add_typer(server.buses_app, name="buses")
app.add_typer(server.timers_app, name="timers")
app.add_typer(registry.workflows_app, name="workflows")
app.add_typer(registry.instances_app, name="instances")
app.add_typer(subscriptions.subscriptions_app, name="subscriptions")
app.add_typer(cluster.cluster_app, name="cluster")
app.add_typer(connectors.connectors_app, name="connectors")
app.add_typer(tokens.tokens_app, name="tokens")
app.add_typer(secrets.secrets_app, name="secrets")


def main() -> None:
    """Entry point of the ``tideflow`` script."""
    try:
        tidy_help(typer.main.get_command(app))(prog_name="tideflow")
    except TideflowError as exc:  # a last resort: commands handle their own errors
        err_console.print(f"error: {exc}", markup=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
