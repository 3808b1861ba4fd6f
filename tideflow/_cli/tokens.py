"""``tideflow tokens create|list|revoke``: API tokens (thin shells over the admin API)."""

from __future__ import annotations

from typing import Annotated

import typer

from tideflow._cli.common import (
    DEFAULT_SERVER,
    ServerOption,
    TokenOption,
    call_api,
    err_console,
    print_json,
)

tokens_app = typer.Typer(help="Manage API tokens (needs an admin token).", no_args_is_help=True)


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="What the token is for.")],
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            help="admin, deploy, run, read, publish:<bus> or subscribe:<bus> ('*' in a bus "
            "name matches anything); repeat for more.",
        ),
    ],
    rate: Annotated[
        str | None,
        typer.Option(
            "--rate",
            metavar="N/s",
            help="Its own rate limit: N/s, N/m or N/h (default: the server's --rate-limit).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Make a token and print it: it is shown this once, keep it."""
    made = call_api(server, lambda client: client.create_token(name, scope, rate))
    if as_json:
        print_json(made)
        return
    print(made["token"])
    err_console.print(
        f"token {made['id']} ({', '.join(made['scopes'])}): shown once, keep it safe",
        markup=False,
    )


@tokens_app.command("list")
def tokens_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """List tokens: id, name, scopes, created, revoked (never the token itself)."""
    found = call_api(server, lambda client: client.list_tokens())
    if as_json:
        print_json(found)
        return
    for item in found:
        revoked = f"revoked {item['revokedAt']}" if item["revokedAt"] else "active"
        scopes = ",".join(item["scopes"])
        print(f"{item['id']}\t{item['name']}\t{scopes}\t{item['createdAt']}\t{revoked}")


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (see tokens list).")],
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Revoke a token: refused from now on (within seconds on other servers)."""
    call_api(server, lambda client: client.revoke_token(token_id))
    print(f"revoked token {token_id}")
