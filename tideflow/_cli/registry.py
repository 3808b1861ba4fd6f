"""``tideflow workflows`` and ``tideflow instances``: the registry and status API."""

from __future__ import annotations

import io
import zipfile
from enum import StrEnum
from pathlib import Path
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

# --- workflows, instances: the registry and status API (thin shells over tideflow.api) ---

workflows_app = typer.Typer(help="Deploy and list workflow definitions.", no_args_is_help=True)
instances_app = typer.Typer(help="Start and watch workflow instances.", no_args_is_help=True)
InstanceArg = Annotated[str, typer.Argument(help="The instance id.")]


class Order(StrEnum):
    """The order of ``instances list``."""

    DESC = "desc"
    ASC = "asc"


def _read_definition(path: str) -> tuple[str, str]:
    """The text of a definition file and its media type."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"{path}: {exc.strerror or exc}", code=2) from None
    return text, "application/json" if path.endswith(".json") else "application/yaml"


def pack_folder(folder: Path) -> bytes:
    """A zip bundle of ``folder``'s files (names relative to it; hidden entries left out).

    Raises:
        typer.Exit: A symbolic link is inside (a bundle holds regular files only).
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if any(part.startswith(".") for part in relative.parts):
                continue
            if path.is_symlink():
                raise fail(f"{path}: a symbolic link; a bundle holds regular files only", code=2)
            if path.is_file():
                archive.write(path, relative.as_posix())
    return buffer.getvalue()


def _deployers(path: str, workflow: str | None) -> list[tuple[str, Any]]:
    """The API actions deploying what ``path`` holds, each with the name its errors carry.

    A definition file is sent as it is; a ``.zip`` as a bundle; a folder as
    a bundle of its files, once per definition at its root.
    """
    target = Path(path)
    if target.is_dir():
        from tideflow.deploy import definition_files  # the server's modules: only when needed

        data = pack_folder(target)
        names = [workflow] if workflow else [p.name for p in definition_files(target)]
        if not names:
            raise fail(f"{path}: no workflow definition (NAME.yaml, NAME.sw.json) in it", code=2)
        return [(f"{path}/{name}", _bundle_deployer(data, name)) for name in names]
    if path.endswith(".zip"):
        try:
            data = target.read_bytes()
        except OSError as exc:
            raise fail(f"{path}: {exc.strerror or exc}", code=2) from None
        return [(path, _bundle_deployer(data, workflow))]
    text, media = _read_definition(path)
    return [(path, lambda client: client.deploy_workflow(text, media))]


def _bundle_deployer(data: bytes, workflow: str | None) -> Any:
    return lambda client: client.deploy_bundle(data, workflow)


def _named(path: str, deploy: Any) -> Any:
    """``deploy`` with its errors naming ``path``."""

    async def named(client: Any) -> Any:
        try:
            return await deploy(client)
        except TideflowError as exc:
            detail = exc.message.removeprefix("<request body>: ")
            raise TideflowError(f"{path}: {detail}") from exc

    return named


@workflows_app.command("deploy")
def workflows_deploy(
    files: Annotated[
        list[str],
        typer.Argument(
            help="Workflow definitions (YAML or JSON), bundles (.zip) or folders.",
            metavar="PATH...",
        ),
    ],
    workflow: Annotated[
        str | None,
        typer.Option(help="The definition inside a bundle or folder (else each at its root)."),
    ] = None,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Deploy definitions; print 'id version' for each.

    A folder or a .zip is deployed as a bundle: each definition with the
    files beside it, which its relative references (schemas, functions and
    events files) resolve to -- and nothing else.
    """
    for path in files:
        for name, deploy in _deployers(path, workflow):
            done = call_api(server, _named(name, deploy))
            print(f"{done['id']} {done['version']}")
            for warning in done.get("warnings") or []:
                err_console.print(f"{name}: warning: {warning['path']}: {warning['message']}")


@workflows_app.command("list")
def workflows_list(server: ServerOption = DEFAULT_SERVER, token: TokenOption = None) -> None:
    """List workflows: id, latest version, name."""
    for flow in call_api(server, lambda client: client.list_workflows()):
        print(f"{flow['id']}\t{flow['version']}\t{flow.get('name') or ''}")


WAIT_RAN_OUT = 3
"""Exit status of ``instances start --wait`` when the instance had not ended in time."""
_POLL_SECONDS = 60.0  # the server's longest GET /instances/{id}?wait


@instances_app.command("start")
def instances_start(
    workflow_id: Annotated[str, typer.Argument(help="The workflow id.", metavar="ID")],
    input_: Annotated[
        str | None, typer.Option("--input", "-i", help="Input as JSON, or @FILE holding JSON.")
    ] = None,
    wait: Annotated[
        float | None,
        typer.Option(
            min=0,
            metavar="SECONDS",
            help="Wait up to SECONDS for the instance to end and print it as JSON.",
        ),
    ] = None,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Start an instance; print its id and status (the whole instance with --wait).

    With --wait, 'started ID' goes to stderr first (it stays there on Ctrl-C: the
    instance keeps running), then the instance as JSON. The exit status is 1 when
    the instance failed, 3 when it had not ended when the wait ran out.
    """
    data = read_input(input_)
    started = call_api(server, lambda client: client.start_instance(workflow_id, data))
    if wait is None:
        print(f"{started['id']} {started['status']}")
        return
    # tideflow.runtime (the interpreter, jq, the workflow model): only for --wait
    from tideflow.runtime.status import InstanceStatus

    instance_id = started["id"]
    try:
        err_console.print(f"started {instance_id}", markup=False)
        shown = call_api(server, lambda client: _wait_for_end(client, instance_id, wait))
    except (KeyboardInterrupt, typer.Exit) as stopped:
        if isinstance(stopped, KeyboardInterrupt) or stopped.exit_code == 130:
            err_console.print(
                f"interrupted: instance {instance_id} keeps running "
                f"(tideflow instances show {instance_id})",
                markup=False,
            )
            raise typer.Exit(130) from None
        raise
    print_json(shown)
    if shown["status"] == InstanceStatus.FAILED:
        error = shown.get("error") or {}
        where = f" in state {error['state']!r}" if error.get("state") else ""
        raise fail(f"instance {instance_id} failed{where}: {error.get('message', '')}")
    if not InstanceStatus(shown["status"]).final:
        raise fail(
            f"instance {instance_id} is still {shown['status']} after {wait:g} s "
            f"(the wait ran out; tideflow instances show {instance_id} --wait 60)",
            code=WAIT_RAN_OUT,
        )


async def _wait_for_end(client: Any, instance_id: str, seconds: float) -> Any:
    """The instance once it has ended, or as it is after ``seconds``."""
    import time

    from tideflow.runtime.status import InstanceStatus

    deadline = time.monotonic() + seconds
    while True:
        left = max(0.0, deadline - time.monotonic())
        shown = await client.get_instance(instance_id, min(left, _POLL_SECONDS))
        if InstanceStatus(shown["status"]).final or left <= _POLL_SECONDS:
            return shown


@instances_app.command("list")
def instances_list(
    status: Annotated[str | None, typer.Option(help="Only instances in this status.")] = None,
    workflow: Annotated[str | None, typer.Option(help="Only this workflow's.")] = None,
    correlation: Annotated[
        str | None,
        typer.Option(
            metavar="KEY:VALUE",
            help="Only instances waiting for an event whose correlation attribute KEY is VALUE.",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=1000, help="At most this many (a page under --all).")
    ] = 100,
    order: Annotated[
        Order, typer.Option(help="desc: the newest first; asc: in the order they started.")
    ] = Order.DESC,
    all_: Annotated[
        bool, typer.Option("--all", help="Every instance, fetched a page at a time.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the instances as a JSON array.")
    ] = False,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """List instances, the newest first: id, workflow, version, status, current state.

    Says so on stderr when there are none, or when more exist than --limit (--all
    fetches them all).
    """

    async def fetch(client: Any) -> tuple[list[Any], bool]:
        rows: list[Any] = []
        cursor = None
        while True:
            page = await client.instances_page(
                workflow=workflow,
                status=status,
                correlation=correlation,
                limit=limit,
                order=order.value,
                cursor=cursor,
            )
            rows.extend(page["instances"])
            cursor = page["next"]
            if cursor is None or not all_:
                return rows, cursor is not None

    rows, more = call_api(server, fetch)
    if as_json:
        print_json(rows)
    elif rows:
        print("ID\tWORKFLOW\tVERSION\tSTATUS\tSTATE")
        for row in rows:
            state = row.get("currentState") or ""
            print(f"{row['id']}\t{row['workflowId']}\t{row['version']}\t{row['status']}\t{state}")
    if not rows:
        filtered = workflow or status or correlation
        err_console.print("no instances" + (" match" if filtered else ""))
    elif more:
        err_console.print(
            f"more instances exist than these {len(rows)}: --all lists them all", markup=False
        )


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


@instances_app.command("retry")
def instances_retry(
    instance_id: InstanceArg, server: ServerOption = DEFAULT_SERVER, token: TokenOption = None
) -> None:
    """Run a failed instance again from its failed step (earlier steps are not run again)."""
    _instance_action("retry", instance_id, server)
