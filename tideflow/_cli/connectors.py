"""``tideflow connectors``: thin shells over the connectors API."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tideflow._cli.common import (
    DEFAULT_SERVER,
    ServerOption,
    TokenOption,
    call_api,
    fail,
    print_json,
)

connectors_app = typer.Typer(
    help="Manage connectors (sources into buses, sinks out of them).", no_args_is_help=True
)
NameArg = Annotated[str, typer.Argument(help="The connector's name.")]


def _read_spec(spec: str) -> Any:
    """``spec``: JSON text, or ``@file`` holding JSON or YAML."""
    import json
    from pathlib import Path

    import yaml

    try:
        if spec.startswith("@"):
            return yaml.safe_load(Path(spec[1:]).read_text("utf-8"))
        return json.loads(spec)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise fail(f"--spec: not readable JSON or YAML: {exc}", code=2) from None


@connectors_app.command("create")
def connectors_create(
    spec: Annotated[
        str,
        typer.Option(help="The connector as JSON, or @file (JSON or YAML): {name, kind, ...}."),
    ],
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Create a connector; print its status as JSON."""
    body = _read_spec(spec)
    if not isinstance(body, dict):
        raise fail("--spec must hold one connector object", code=2)
    print_json(call_api(server, lambda client: client.create_connector(body)))


@connectors_app.command("list")
def connectors_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """List connectors: name, kind, type, bus, state, running, events, lag, last error."""
    found = call_api(server, lambda client: client.list_connectors())
    if as_json:
        print_json(found)
        return
    for c in found:
        print(
            f"{c['name']}\t{c['kind']}\t{c['type']}\t{c['bus']}\t{c['state']}\t"
            f"{c['running']['state']}\tevents={c['events']}\tlag={c['lag']}\t"
            f"{c['lastError'] or ''}"
        )


@connectors_app.command("show")
def connectors_show(
    name: NameArg, server: ServerOption = DEFAULT_SERVER, token: TokenOption = None
) -> None:
    """Show a connector: state, connection, scaling decisions, lag, counts, last error."""
    print_json(call_api(server, lambda client: client.get_connector(name)))


@connectors_app.command("delete")
def connectors_delete(
    name: NameArg, server: ServerOption = DEFAULT_SERVER, token: TokenOption = None
) -> None:
    """Delete a connector."""
    call_api(server, lambda client: client.delete_connector(name))
    print(f"deleted connector {name}")


@connectors_app.command("pause")
def connectors_pause(
    name: NameArg, server: ServerOption = DEFAULT_SERVER, token: TokenOption = None
) -> None:
    """Pause a connector (its position is kept)."""
    found = call_api(server, lambda client: client.connector_action(name, "pause"))
    print(f"{found['name']} {found['state']}")


@connectors_app.command("resume")
def connectors_resume(
    name: NameArg, server: ServerOption = DEFAULT_SERVER, token: TokenOption = None
) -> None:
    """Resume a connector from its position."""
    found = call_api(server, lambda client: client.connector_action(name, "resume"))
    print(f"{found['name']} {found['state']}")
