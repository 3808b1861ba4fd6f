"""``tideflow workflows`` and ``tideflow instances``: the registry and status API."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tideflow._cli.common import (
    DEFAULT_SERVER,
    ServerOption,
    TokenOption,
    call_api,
    err_console,
    fail,
    print_json,
)
from tideflow._cli.local import read_input
from tideflow.errors import TideflowError
from tideflow.runtime.status import InstanceStatus

# --- workflows, instances: the registry and status API (thin shells over tideflow.api) ---

workflows_app = typer.Typer(help="Deploy and list workflow definitions.", no_args_is_help=True)
instances_app = typer.Typer(help="Start and watch workflow instances.", no_args_is_help=True)
InstanceArg = Annotated[str, typer.Argument(help="The instance id.")]


def _read_definition(path: str) -> tuple[str, str]:
    """The text of a definition file and its media type."""
    from pathlib import Path

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"{path}: {exc.strerror or exc}", code=2) from None
    return text, "application/json" if path.endswith(".json") else "application/yaml"


def _deployer(path: str) -> Any:
    """The API action deploying one file; its errors name the file."""
    text, media = _read_definition(path)

    async def deploy(client: Any) -> Any:
        try:
            return await client.deploy_workflow(text, media)
        except TideflowError as exc:
            detail = exc.message.removeprefix("<request body>: ")
            raise TideflowError(f"{path}: {detail}") from exc

    return deploy


@workflows_app.command("deploy")
def workflows_deploy(
    files: Annotated[
        list[str], typer.Argument(help="Workflow definitions (YAML or JSON).", metavar="FILE...")
    ],
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Deploy definitions; print 'id version' for each."""
    for path in files:
        done = call_api(server, _deployer(path))
        print(f"{done['id']} {done['version']}")
        for warning in done.get("warnings") or []:
            err_console.print(f"{path}: warning: {warning['path']}: {warning['message']}")


@workflows_app.command("list")
def workflows_list(server: ServerOption = DEFAULT_SERVER, token: TokenOption = None) -> None:
    """List workflows: id, latest version, name."""
    for flow in call_api(server, lambda client: client.list_workflows()):
        print(f"{flow['id']}\t{flow['version']}\t{flow.get('name') or ''}")


@instances_app.command("start")
def instances_start(
    workflow_id: Annotated[str, typer.Argument(help="The workflow id.", metavar="ID")],
    input_: Annotated[
        str | None, typer.Option("--input", "-i", help="Input as JSON, or @FILE holding JSON.")
    ] = None,
    wait: Annotated[
        float | None,
        typer.Option(help="Wait up to this many seconds and print the instance."),
    ] = None,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Start an instance; print its id and status (the whole instance with --wait).

    With --wait, the exit status is 1 when the instance failed.
    """
    data = read_input(input_)
    started = call_api(server, lambda client: client.start_instance(workflow_id, data, wait=wait))
    if wait is None:
        print(f"{started['id']} {started['status']}")
        return
    print_json(started)
    if started["status"] == InstanceStatus.FAILED:
        error = started.get("error") or {}
        where = f" in state {error['state']!r}" if error.get("state") else ""
        raise fail(f"instance {started['id']} failed{where}: {error.get('message', '')}")


@instances_app.command("list")
def instances_list(
    status: Annotated[str | None, typer.Option(help="Only instances in this status.")] = None,
    workflow: Annotated[str | None, typer.Option(help="Only this workflow's.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """List instances: id, workflow, version, status, current state."""
    rows = call_api(
        server,
        lambda client: client.list_instances(workflow=workflow, status=status, limit=limit),
    )
    for row in rows:
        state = row.get("currentState") or ""
        print(f"{row['id']}\t{row['workflowId']}\t{row['version']}\t{row['status']}\t{state}")


@instances_app.command("show")
def instances_show(
    instance_id: InstanceArg,
    timeline: Annotated[bool, typer.Option("--timeline", help="Print the timeline too.")] = False,
    wait: Annotated[
        float | None,
        typer.Option(min=0, max=60, help="Wait up to SECONDS for the instance to end first."),
    ] = None,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Print an instance's status as JSON (with its timeline under --timeline)."""

    async def fetch(client: Any) -> Any:
        shown = await client.get_instance(instance_id, wait)
        if timeline:
            shown["timeline"] = await client.timeline(instance_id)
        return shown

    print_json(call_api(server, fetch))


def _instance_action(action: str, instance_id: str, server: str) -> None:
    row = call_api(server, lambda client: client.instance_action(instance_id, action))
    print(f"{row['id']} {row['status']}")


@instances_app.command("cancel")
def instances_cancel(
    instance_id: InstanceArg, server: ServerOption = DEFAULT_SERVER, token: TokenOption = None
) -> None:
    """Cancel an instance (a running one stops at its next step)."""
    _instance_action("cancel", instance_id, server)


@instances_app.command("suspend")
def instances_suspend(
    instance_id: InstanceArg, server: ServerOption = DEFAULT_SERVER, token: TokenOption = None
) -> None:
    """Suspend an instance until resumed."""
    _instance_action("suspend", instance_id, server)


@instances_app.command("resume")
def instances_resume(
    instance_id: InstanceArg, server: ServerOption = DEFAULT_SERVER, token: TokenOption = None
) -> None:
    """Resume a suspended instance."""
    _instance_action("resume", instance_id, server)
