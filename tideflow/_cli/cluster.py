"""``tideflow cluster status``: the processes sharing a database and what each owns."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tideflow._cli.common import DEFAULT_SERVER, ServerOption, TokenOption, call_api, print_json

cluster_app = typer.Typer(
    help="The processes sharing the database (needs an admin token).", no_args_is_help=True
)


@cluster_app.command("status")
def cluster_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Each live process (its address and last heartbeat) with the units it owns and their
    lag; then the units nobody owns right now."""
    found = call_api(server, lambda client: client.get_cluster())
    if as_json:
        print_json(found)
        return
    for line in status_lines(found):
        print(line)


def status_lines(found: dict[str, Any]) -> list[str]:
    """The text form of ``GET /cluster``: a line per process, an indented line per unit."""
    lines = []
    for node in found["nodes"]:
        here = " (this server)" if node["self"] else ""
        units = node["units"]
        lines.append(
            f"{node['id']}{here}\t{node['address'] or '-'}\theartbeat {node['heartbeatAt']}"
            f"\t{len(units)} units"
        )
        lines += [f"  {u['unit']}\tlag {_lag(u['lag'])}\ttoken {u['token']}" for u in units]
    if found["unowned"]:
        lines.append("unowned")
        lines += [f"  {u['unit']}\tlag {_lag(u['lag'])}" for u in found["unowned"]]
    return lines


def _lag(lag: int | None) -> str:
    return "-" if lag is None else str(lag)
