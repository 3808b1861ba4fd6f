"""``tideflow secrets grant|grants|revoke``: secret grants (thin shells over the admin API).

Only names travel: no command reads or prints a secret's value.
"""

from __future__ import annotations

from typing import Annotated

import typer

from tideflow._cli.common import DEFAULT_SERVER, ServerOption, TokenOption, call_api, print_json

secrets_app = typer.Typer(
    help="Grant secrets to workflows and sinks (needs an admin token).", no_args_is_help=True
)


@secrets_app.command("grant")
def secrets_grant(
    pattern: Annotated[
        str, typer.Argument(help="A workflow id, or sink:HOST; '*' matches any characters.")
    ],
    names: Annotated[list[str], typer.Argument(help="The secrets' names.")],
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Let workflows (or sinks) matching PATTERN receive the secrets NAMES."""
    print_json(call_api(server, lambda client: client.grant_secrets(pattern, names)))


@secrets_app.command("grants")
def secrets_grants(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """List grants: pattern, secrets, origin (settings or api)."""
    found = call_api(server, lambda client: client.list_grants())
    if as_json:
        print_json(found)
        return
    for grant in found:
        print(f"{grant['pattern']}\t{','.join(grant['secrets'])}\t{grant['origin']}")


@secrets_app.command("revoke")
def secrets_revoke(
    pattern: Annotated[str, typer.Argument(help="The pattern of a grant made with grant.")],
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Forget a grant made through the API (those of the server's settings stay)."""
    call_api(server, lambda client: client.revoke_grant(pattern))
