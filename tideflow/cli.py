"""The ``tideflow`` command line.

Each command is a thin shell over the package: it parses flags, calls one
function, and prints. Errors print one clear line; ``--verbose`` adds detail.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

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


# --- validate: tideflow.workflow -----------------------------------------------


def _validate_one(path: str) -> tuple[list[str], int]:
    """Lines to print for one file, and its exit status (0 ok, 1 invalid, 2 unreadable)."""
    from pathlib import Path

    from tideflow.errors import WorkflowLoadError, WorkflowValidationError, format_path
    from tideflow.runtime.schedules import check_start_schedule
    from tideflow.workflow import load_and_validate, parse_document

    try:
        _, warnings = load_and_validate(Path(path))
        # start.schedule as the timer service reads it (what a deploy checks too)
        document = parse_document(Path(path).read_text(encoding="utf-8"), path)
        warnings = (*warnings, *check_start_schedule(document, path))
    except WorkflowLoadError as exc:
        message = exc.message if exc.message.startswith(path) else f"{path}: {exc.message}"
        return [message], 2
    except WorkflowValidationError as exc:
        lines = []
        for problem in exc.problems:
            tag = "" if problem.severity == "error" else "warning: "
            lines.append(f"{path}: {tag}{format_path(problem.path)}: {problem.message}")
        return lines, 1
    return [f"{path}: ok", *(f"  warning: {w}" for w in warnings)], 0


@app.command()
def validate(
    files: Annotated[
        list[str], typer.Argument(help="Workflow definitions (YAML or JSON).", metavar="FILE...")
    ],
) -> None:
    """Validate workflow definitions: print 'ok' per valid file, one line per problem otherwise.

    Exit status: 0 when all are valid, 1 when any is invalid, 2 when a file
    cannot be read or parsed.
    """
    status = 0
    for path in files:
        lines, code = _validate_one(path)
        for line in lines:
            print(line)
        status = max(status, code)
    raise typer.Exit(status)


# --- run: one instance on the local host (tideflow.runtime.hosts.local) -------


def _read_input(text: str | None) -> Any:
    """``--input``: JSON text, ``@file`` holding JSON, or ``@-`` for standard input."""
    import json
    from pathlib import Path

    if text is None:
        return {}
    source = "--input"
    if text == "@-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        source = text[1:]
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise fail(f"--input {source}: {exc.strerror or exc}", code=2) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"{source}: not JSON: {exc.msg} (line {exc.lineno})", code=2) from None


def _read_events(path: str | None) -> list[dict[str, Any]]:
    """``--events``: one structured CloudEvent (a JSON object) per line."""
    import json
    from pathlib import Path

    if path is None:
        return []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise fail(f"--events {path}: {exc.strerror or exc}", code=2) from None
    events = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            raise fail(f"{path}:{number}: not JSON: {exc.msg}", code=2) from None
        if not isinstance(event, dict) or "type" not in event:
            raise fail(f"{path}:{number}: not a structured CloudEvent (no 'type')", code=2)
        events.append(event)
    return events


def _read_redirects(pairs: list[str]) -> dict[str, str]:
    """``--server FROM=TO`` pairs."""
    out = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source.startswith(("http://", "https://")) or not target:
            raise fail(f"--server {pair!r}: expected FROM=TO with FROM an http(s) URL", code=2)
        out[source] = target
    return out


def _load_for_run(workflow: str, dialect: str | None = None) -> Any:
    """Load and validate ``workflow``; warnings to stderr; problems exit 2."""
    from pathlib import Path

    from tideflow.errors import WorkflowLoadError, WorkflowValidationError
    from tideflow.workflow import load_and_validate

    try:
        model, warnings = load_and_validate(Path(workflow), dialect=dialect)
    except WorkflowLoadError as exc:
        raise fail(exc.message, code=2) from None
    except WorkflowValidationError as exc:
        for problem in exc.problems:
            tag = "" if problem.severity == "error" else "warning: "
            err_console.print(f"{workflow}: {tag}{problem}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    for warning in warnings:
        err_console.print(f"{workflow}: warning: {warning}", markup=False, soft_wrap=True)
    return model


async def _run_local(host: Any, model: Any, data: Any, path: Any) -> Any:
    async with host:
        return await host.run(model, data, path.resolve().parent)


def _describe_failure(result: Any) -> str:
    error = result.error
    where = f" in state {error.state!r}" if error.state else ""
    code = f" (code {error.code})" if error.code and error.code != error.name else ""
    return f"workflow failed{where}: {error.name}{code}: {error.message}"


@app.command()
def run(
    workflow: Annotated[str, typer.Argument(help="The workflow definition (YAML or JSON).")],
    input_: Annotated[
        str | None, typer.Option("--input", "-i", help="Input: JSON, @FILE or @- (stdin).")
    ] = None,
    functions: Annotated[
        str | None,
        typer.Option("--functions", help="Python file whose callables replace functions by name."),
    ] = None,
    events: Annotated[
        str | None,
        typer.Option("--events", help="CloudEvents, one JSON per line, offered in order."),
    ] = None,
    workflows: Annotated[
        list[str] | None, typer.Option("--workflows", help="Folder of sub-workflows (repeatable).")
    ] = None,
    timeline: Annotated[
        bool, typer.Option("--timeline", help="Print the steps and emitted events on stderr.")
    ] = False,
    dialect: Annotated[
        str | None, typer.Option("--dialect", help="'sonataflow': its documented leniencies.")
    ] = None,
    server: Annotated[
        list[str] | None,
        typer.Option("--server", help="FROM=TO: send requests for URLs starting FROM to TO."),
    ] = None,
) -> None:
    """Run one instance in this process and print its output as JSON.

    Exit status: 0 completed (or terminated), 1 failed (the error on stderr),
    2 invalid definition or unusable options.
    """
    import asyncio
    import json
    from pathlib import Path

    from tideflow.runtime.hosts.local import (
        LocalHost,
        LocalOptions,
        TimelinePrinter,
        load_functions_file,
    )
    from tideflow.runtime.result import Failed

    if dialect not in (None, "sonataflow"):
        raise fail(f"--dialect {dialect!r}: the only dialect is 'sonataflow'", code=2)
    model = _load_for_run(workflow, dialect)
    data = _read_input(input_)
    try:
        overrides = load_functions_file(functions) if functions else {}
    except TideflowError as exc:
        raise fail(str(exc), code=2) from None
    printer = TimelinePrinter() if timeline else None
    options = LocalOptions(
        functions=overrides,
        events=_read_events(events),
        workflow_dirs=[Path(d) for d in workflows or []],
        dialect=dialect,
        on_step=printer,
        redirects=_read_redirects(server or []),
    )
    try:
        outcome = asyncio.run(_run_local(LocalHost(options), model, data, Path(workflow)))
    except TideflowError as exc:
        raise fail(str(exc), exc=exc) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as exc:  # a bug: still one line (the traceback with --verbose)
        raise fail(f"internal error: {type(exc).__name__}: {exc}", exc=exc) from None
    if printer is not None:
        for event in outcome.emitted:
            printer.line(f"emitted {json.dumps(event, ensure_ascii=False)}")
    if isinstance(outcome.result, Failed):
        raise fail(_describe_failure(outcome.result))
    print(json.dumps(getattr(outcome.result, "output", None), indent=2, ensure_ascii=False))


# --- serve, events, buses: the HTTP API (thin shells over tideflow.api) ------

events_app = typer.Typer(help="Send and read CloudEvents.", no_args_is_help=True)
buses_app = typer.Typer(help="Manage event buses.", no_args_is_help=True)
timers_app = typer.Typer(help="Inspect durable timers.", no_args_is_help=True)
app.add_typer(events_app, name="events")
app.add_typer(buses_app, name="buses")
app.add_typer(timers_app, name="timers")

ServerOption = Annotated[
    str,
    typer.Option("--server", envvar="TIDEFLOW_SERVER", help="URL of the Tideflow server."),
]
_SERVER = "http://127.0.0.1:8080"


def _call_api(server: str, action: Any) -> Any:
    """Run ``action(client)`` against ``server``; a failure becomes one error line."""
    import asyncio

    from tideflow.api.client import ApiClient

    async def go() -> Any:
        async with ApiClient(server) as client:
            return await action(client)

    try:
        return asyncio.run(go())
    except TideflowError as exc:
        raise fail(str(exc), exc=exc) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _print_json(value: Any) -> None:
    import orjson

    print(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default: 8080).")] = None,
    workflows: Annotated[
        list[str] | None,
        typer.Option(
            "--workflows", help="Deploy every definition in this folder on start (repeatable)."
        ),
    ] = None,
    functions: Annotated[
        str | None,
        typer.Option("--functions", help="Python file whose callables replace functions by name."),
    ] = None,
    server: Annotated[
        list[str] | None,
        typer.Option("--server", help="FROM=TO: send requests for URLs starting FROM to TO."),
    ] = None,
    allow_python: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-python",
            metavar="MODULE",
            help="Let python: functions of deployed definitions import MODULE and its "
            "submodules (repeatable; adds to TIDEFLOW_PYTHON_MODULES).",
        ),
    ] = None,
) -> None:
    """Serve everything in one process: API, event store, subscriptions, timers, runtime.

    Data lives in an embedded PostgreSQL unless TIDEFLOW_DATABASE_URL is set.
    python: functions may import only the --allow-python modules and those in
    the --workflows folders.
    """
    from dataclasses import replace
    from pathlib import Path

    from tideflow.api.compose import SystemOptions
    from tideflow.runtime.hosts.local import load_functions_file

    folders = [Path(folder) for folder in workflows or []]
    for folder in folders:
        if not folder.is_dir():
            raise fail(f"--workflows {folder}: not a folder", code=2)
    try:
        overrides = load_functions_file(functions) if functions else {}
    except TideflowError as exc:
        raise fail(str(exc), code=2) from None
    system = SystemOptions(
        workflow_dirs=folders, functions=overrides, redirects=_read_redirects(server or [])
    )

    from tideflow.api.server import describe_database, run_server
    from tideflow.settings import Settings

    try:
        settings = Settings.from_env()
    except ValueError as exc:
        raise fail(f"invalid TIDEFLOW_* setting: {exc}", exc=exc) from None
    settings = replace(settings, host=host or settings.host, port=port or settings.port)
    settings = _with_python_modules(settings, allow_python or [])
    out_console.print(f"tideflow {__version__}: data in {describe_database(settings)}")
    run_server(settings, system=system)


def _with_python_modules(settings: Any, allowed: list[str]) -> Any:
    """``settings`` with ``--allow-python`` added to its modules; exit 2 on a bad name."""
    from dataclasses import replace

    from tideflow.runtime.functions.policy import PythonPolicy

    modules = (*settings.python_modules, *allowed)
    try:
        policy = PythonPolicy.for_server(modules)
    except TideflowError as exc:
        raise fail(f"--allow-python / TIDEFLOW_PYTHON_MODULES: {exc}", code=2) from None
    return replace(settings, python_modules=policy.modules)


@events_app.command("send")
def events_send(
    type_: Annotated[str, typer.Option("--type", help="The event type.")],
    source: Annotated[str, typer.Option("--source", help="The event source (URI-reference).")],
    bus: Annotated[str, typer.Option("--bus", help="The bus.")] = "default",
    data: Annotated[str | None, typer.Option(help="JSON data, or @file to read it.")] = None,
    ext: Annotated[
        list[str] | None, typer.Option("--ext", help="Extension attribute name=value; repeat.")
    ] = None,
    event_id: Annotated[
        str | None, typer.Option("--id", help="The event id (default: random).")
    ] = None,
    subject: Annotated[str | None, typer.Option(help="The event subject.")] = None,
    server: ServerOption = _SERVER,
) -> None:
    """Send one CloudEvent; print its bus, offset and whether it was a duplicate."""
    from pathlib import Path

    from tideflow.api.client import build_event, parse_extensions
    from tideflow.clock import SYSTEM_CLOCK
    from tideflow.ids import new_id
    from tideflow.isotime import format_timestamp

    try:
        if data is not None and data.startswith("@"):
            data_file = Path(data[1:])
            data = data_file.read_text(encoding="utf-8")
        event = build_event(
            type_,
            source,
            event_id=event_id or new_id(),
            time=format_timestamp(SYSTEM_CLOCK.now()),
            data=data,
            extensions=parse_extensions(ext or []),
            subject=subject,
        )
    except OSError as exc:
        raise fail(f"cannot read {data_file}: {exc.strerror or exc}", exc=exc) from None
    except TideflowError as exc:
        raise fail(str(exc), exc=exc) from None
    ack = _call_api(server, lambda client: client.send_event(bus, event))
    if ack.get("scheduled"):
        print(f"{ack['bus']} scheduled for {ack['deliveryTime']} (timer {ack['timerId']})")
        return
    print(f"{ack['bus']} offset {ack['offset']}" + (" (duplicate)" if ack["duplicate"] else ""))


@events_app.command("tail")
def events_tail(
    bus: Annotated[str, typer.Argument(help="The bus to follow.")],
    from_: Annotated[
        int | None,
        typer.Option("--from", min=1, help="Start at this offset (default: only new events)."),
    ] = None,
    server: ServerOption = _SERVER,
) -> None:
    """Follow a bus: print each event as one JSON line {offset, event}; Ctrl-C stops."""
    import orjson

    async def follow(client: Any) -> None:
        after = from_ - 1 if from_ is not None else (await client.get_bus(bus))["lastOffset"]
        async for record in client.tail(bus, after):
            print(orjson.dumps(record).decode(), flush=True)

    _call_api(server, follow)


@buses_app.command("list")
def buses_list(server: ServerOption = _SERVER) -> None:
    """List the buses: name and retention."""
    for bus in _call_api(server, lambda client: client.list_buses()):
        retention = bus.get("retention") or {}
        limits = " ".join(f"{k}={v}" for k, v in retention.items()) or "keep everything"
        print(f"{bus['name']}\t{limits}")


@buses_app.command("create")
def buses_create(
    name: Annotated[str, typer.Argument(help="The bus name.")],
    max_age: Annotated[
        str | None, typer.Option(help="Drop segments older than this ISO 8601 duration.")
    ] = None,
    max_events: Annotated[int | None, typer.Option(help="Keep about this many events.")] = None,
    server: ServerOption = _SERVER,
) -> None:
    """Create a bus."""
    retention = {k: v for k, v in (("maxAge", max_age), ("maxEvents", max_events)) if v}
    _print_json(_call_api(server, lambda client: client.create_bus(name, retention or None)))


@buses_app.command("show")
def buses_show(
    name: Annotated[str, typer.Argument(help="The bus name.")], server: ServerOption = _SERVER
) -> None:
    """Show a bus: offsets, segments, size on disk, recent rate."""
    _print_json(_call_api(server, lambda client: client.get_bus(name)))


@buses_app.command("delete")
def buses_delete(
    name: Annotated[str, typer.Argument(help="The bus name.")], server: ServerOption = _SERVER
) -> None:
    """Delete a bus and all its events."""
    _call_api(server, lambda client: client.delete_bus(name))
    print(f"deleted bus {name}")


@timers_app.command("list")
def timers_list(
    kind: Annotated[str | None, typer.Option(help="Only timers of this kind.")] = None,
    state: Annotated[str, typer.Option(help="pending, fired, cancelled or all.")] = "pending",
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    server: ServerOption = _SERVER,
) -> None:
    """List timers in due order: due time, state, kind, id."""
    found = _call_api(server, lambda client: client.list_timers(kind, state, limit))
    if as_json:
        _print_json(found)
        return
    for timer in found:
        print(f"{timer['dueAt']}\t{timer['state']}\t{timer['kind']}\t{timer['id']}")


# --- workflows, instances: the registry and status API (thin shells over tideflow.api) ---

workflows_app = typer.Typer(help="Deploy and list workflow definitions.", no_args_is_help=True)
instances_app = typer.Typer(help="Start and watch workflow instances.", no_args_is_help=True)
app.add_typer(workflows_app, name="workflows")
app.add_typer(instances_app, name="instances")
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
    server: ServerOption = _SERVER,
) -> None:
    """Deploy definitions; print 'id version' for each."""
    for path in files:
        done = _call_api(server, _deployer(path))
        print(f"{done['id']} {done['version']}")
        for warning in done.get("warnings") or []:
            err_console.print(f"{path}: warning: {warning['path']}: {warning['message']}")


@workflows_app.command("list")
def workflows_list(server: ServerOption = _SERVER) -> None:
    """List workflows: id, latest version, name."""
    for flow in _call_api(server, lambda client: client.list_workflows()):
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
    server: ServerOption = _SERVER,
) -> None:
    """Start an instance; print its id and status (the whole instance with --wait).

    With --wait, the exit status is 1 when the instance failed.
    """
    data = _read_input(input_)
    started = _call_api(server, lambda client: client.start_instance(workflow_id, data, wait=wait))
    if wait is None:
        print(f"{started['id']} {started['status']}")
        return
    _print_json(started)
    if started["status"] == "failed":
        error = started.get("error") or {}
        where = f" in state {error['state']!r}" if error.get("state") else ""
        raise fail(f"instance {started['id']} failed{where}: {error.get('message', '')}")


@instances_app.command("list")
def instances_list(
    status: Annotated[str | None, typer.Option(help="Only instances in this status.")] = None,
    workflow: Annotated[str | None, typer.Option(help="Only this workflow's.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
    server: ServerOption = _SERVER,
) -> None:
    """List instances: id, workflow, version, status, current state."""
    rows = _call_api(
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
    server: ServerOption = _SERVER,
) -> None:
    """Print an instance's status as JSON (with its timeline under --timeline)."""

    async def fetch(client: Any) -> Any:
        shown = await client.get_instance(instance_id)
        if timeline:
            shown["timeline"] = await client.timeline(instance_id)
        return shown

    _print_json(_call_api(server, fetch))


def _instance_action(action: str, instance_id: str, server: str) -> None:
    row = _call_api(server, lambda client: client.instance_action(instance_id, action))
    print(f"{row['id']} {row['status']}")


@instances_app.command("cancel")
def instances_cancel(instance_id: InstanceArg, server: ServerOption = _SERVER) -> None:
    """Cancel an instance (a running one stops at its next step)."""
    _instance_action("cancel", instance_id, server)


@instances_app.command("suspend")
def instances_suspend(instance_id: InstanceArg, server: ServerOption = _SERVER) -> None:
    """Suspend an instance until resumed."""
    _instance_action("suspend", instance_id, server)


@instances_app.command("resume")
def instances_resume(instance_id: InstanceArg, server: ServerOption = _SERVER) -> None:
    """Resume a suspended instance."""
    _instance_action("resume", instance_id, server)


# --- subscriptions: thin shells over the subscriptions API ---

subscriptions_app = typer.Typer(
    help="Manage subscriptions (delivery to HTTP sinks).", no_args_is_help=True
)
app.add_typer(subscriptions_app, name="subscriptions")
SubscriptionArg = Annotated[str, typer.Argument(help="The subscription id.")]


def _subscription_body(
    spec: str | None, bus: str | None, sink: str | None, filters: list[str], sql: str | None
) -> dict[str, Any]:
    """The POST body: ``--spec`` (JSON text or @file) overridden by the other options."""
    import json
    from pathlib import Path

    body: dict[str, Any] = {}
    try:
        if spec:
            text = Path(spec[1:]).read_text("utf-8") if spec.startswith("@") else spec
            body = json.loads(text)
        extra = [json.loads(item) for item in filters]
    except (OSError, ValueError) as exc:
        raise fail(f"--spec/--filter: not valid JSON: {exc}", code=2) from None
    if not isinstance(body, dict):
        raise fail("--spec must be a JSON object", code=2)
    body |= {k: v for k, v in (("bus", bus), ("sink", sink)) if v is not None}
    extra += [{"sql": sql}] if sql else []
    if extra:
        body["filters"] = [*body.get("filters", []), *extra]
    return body


@subscriptions_app.command("create")
def subscriptions_create(
    bus: Annotated[str | None, typer.Option(help="The bus to read.")] = None,
    sink: Annotated[str | None, typer.Option(help="URL the events are POSTed to.")] = None,
    filter_: Annotated[
        list[str] | None,
        typer.Option("--filter", help='A filter object as JSON, e.g. {"prefix":{"type":"com."}}.'),
    ] = None,
    sql: Annotated[str | None, typer.Option(help="A CloudEvents SQL filter.")] = None,
    transform: Annotated[
        str | None, typer.Option(help="A jq expression: the delivered data.")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="latest (default), earliest or an offset.")
    ] = None,
    delivery: Annotated[
        str | None, typer.Option(help='Delivery policy as JSON, e.g. {"retry":5,"ordered":true}.')
    ] = None,
    spec: Annotated[
        str | None, typer.Option(help="The whole subscription as JSON, or @file.json.")
    ] = None,
    server: ServerOption = _SERVER,
) -> None:
    """Create a subscription; print it as JSON."""
    import json

    body = _subscription_body(spec, bus, sink, filter_ or [], sql)
    if transform is not None:
        body["transform"] = transform
    if start is not None:
        body["from"] = int(start) if start.isdigit() else start
    if delivery is not None:
        try:
            body["delivery"] = json.loads(delivery)
        except ValueError as exc:
            raise fail(f"--delivery: not valid JSON: {exc}", code=2) from None
    _print_json(_call_api(server, lambda client: client.create_subscription(body)))


@subscriptions_app.command("list")
def subscriptions_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    server: ServerOption = _SERVER,
) -> None:
    """List subscriptions: id, state, bus, committed offset, lag, sink."""
    found = _call_api(server, lambda client: client.list_subscriptions())
    if as_json:
        _print_json(found)
        return
    for sub in found:
        target = sub.get("sink") or "(internal)"
        print(
            f"{sub['id']}\t{sub['state']}\t{sub['bus']}\t"
            f"offset={sub['committedOffset']}\tlag={sub['lag']}\t{target}"
        )


@subscriptions_app.command("show")
def subscriptions_show(subscription_id: SubscriptionArg, server: ServerOption = _SERVER) -> None:
    """Show a subscription: state, committed offset, lag, delivered/failed/dead-lettered."""
    _print_json(_call_api(server, lambda client: client.get_subscription(subscription_id)))


@subscriptions_app.command("delete")
def subscriptions_delete(subscription_id: SubscriptionArg, server: ServerOption = _SERVER) -> None:
    """Delete a subscription."""
    _call_api(server, lambda client: client.delete_subscription(subscription_id))
    print(f"deleted subscription {subscription_id}")


def _subscription_action(
    action: str, subscription_id: str, server: str, body: dict[str, Any] | None = None
) -> None:
    sub = _call_api(
        server, lambda client: client.subscription_action(subscription_id, action, body)
    )
    print(f"{sub['id']} {sub['state']} offset={sub['committedOffset']} lag={sub['lag']}")


@subscriptions_app.command("pause")
def subscriptions_pause(subscription_id: SubscriptionArg, server: ServerOption = _SERVER) -> None:
    """Pause delivery (events in flight are delivered again after resume)."""
    _subscription_action("pause", subscription_id, server)


@subscriptions_app.command("resume")
def subscriptions_resume(subscription_id: SubscriptionArg, server: ServerOption = _SERVER) -> None:
    """Resume delivery from the committed offset."""
    _subscription_action("resume", subscription_id, server)


@subscriptions_app.command("reset")
def subscriptions_reset(
    subscription_id: SubscriptionArg,
    offset: Annotated[int | None, typer.Option(min=0, help="Deliver next the event at it.")] = None,
    time: Annotated[
        str | None, typer.Option(help="Deliver next the first event stored at or after it.")
    ] = None,
    server: ServerOption = _SERVER,
) -> None:
    """Replay (or skip): move the subscription to an offset or a time (RFC 3339)."""
    if (offset is None) == (time is None):
        raise fail("give exactly one of --offset or --time", code=2)
    body: dict[str, Any] = {"offset": offset} if offset is not None else {"time": time}
    _subscription_action("reset", subscription_id, server, body)


def main() -> None:
    """Entry point of the ``tideflow`` script."""
    try:
        app()
    except TideflowError as exc:  # a last resort: commands handle their own errors
        err_console.print(f"error: {exc}", markup=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
