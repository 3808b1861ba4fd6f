"""``tideflow validate`` and ``tideflow run``: commands that need no server."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated, Any

import typer

from tideflow._cli.common import (
    err_console,
    fail,
)
from tideflow.errors import TideflowError

# --- validate: tideflow.workflow -----------------------------------------------


async def _validate_one(path: str, dialect: str | None = None) -> tuple[list[str], int]:
    """Lines to print for one file, and its exit status (0 ok, 1 invalid, 2 unreadable)."""
    from pathlib import Path

    from tideflow.errors import WorkflowLoadError, WorkflowValidationError, format_path
    from tideflow.references import resolve_definition
    from tideflow.runtime.start_schedules import check_start_schedule
    from tideflow.workflow import parse_document
    from tideflow.workflow.dsl1 import is_dsl1, normalize
    from tideflow.workflow.loader import load_any, source_text

    notes: list[str] = []
    try:
        text, source, folder = await asyncio.to_thread(source_text, Path(path))
        document = parse_document(text, source)
        if is_dsl1(document):
            _, warnings = load_any(Path(path), processes=None)
            warnings = (*warnings, *check_start_schedule(normalize(document), path))
        else:
            definition = await resolve_definition(
                document, source=source, base_dir=folder, dialect=dialect
            )
            # start.schedule as the timer service reads it (what a deploy checks too)
            warnings = (*definition.warnings, *check_start_schedule(document, path))
            notes = python_notes(definition.workflow.functions, folder)
    except WorkflowLoadError as exc:
        message = exc.message if exc.message.startswith(path) else f"{path}: {exc.message}"
        return [message], 2
    except WorkflowValidationError as exc:
        lines = []
        for problem in exc.problems:
            tag = "" if problem.severity == "error" else "warning: "
            lines.append(f"{path}: {tag}{format_path(problem.path)}: {problem.message}")
        return lines, 1
    return [f"{path}: ok", *(f"  warning: {w}" for w in warnings), *notes], 0


def python_notes(functions: Any, folder: Any) -> list[str]:
    """A note per ``python:`` function: what a server needs to call it (``tideflow run``
    imports anything; a server only what its operator allowed, and what it can import)."""
    from tideflow.runtime.functions.policy import (
        PythonPolicy,
        how_to_allow,
        is_python_function,
        module_file,
    )

    served = PythonPolicy.for_server(folders=[folder] if folder is not None else [])
    notes, seen = [], set()
    for index, function in enumerate(functions):
        module = function.operation.removeprefix("python:").partition(":")[0]
        if not is_python_function(function.operation, function.type) or module in seen:
            continue
        seen.add(module)
        if folder is not None and served.in_folders(module):
            how = f"start tideflow serve with --workflows {folder} (its file is there)"
        else:
            how = how_to_allow(module, importable=module_file(module) is not None)
        notes.append(
            f"  note: functions[{index}].operation: a server calls python module {module!r} "
            f"only if you {how}"
        )
    return notes


async def _validate_all(files: list[str], dialect: str | None) -> list[tuple[list[str], int]]:
    return [await _validate_one(path, dialect) for path in files]


def validate(
    files: Annotated[
        list[str], typer.Argument(help="Workflow definitions (YAML or JSON).", metavar="FILE...")
    ],
    dialect: Annotated[
        str | None, typer.Option("--dialect", help="'sonataflow': read as SonataFlow does.")
    ] = None,
) -> None:
    """Validate workflow definitions: print 'ok' per valid file, one line per problem otherwise.

    Exit status: 0 when all are valid, 1 when any is invalid, 2 when a file
    cannot be read or parsed (or the dialect is unknown).
    """
    if dialect not in (None, "sonataflow"):
        raise fail(f"--dialect {dialect!r}: the only dialect is 'sonataflow'", code=2)
    status = 0
    for lines, code in asyncio.run(_validate_all(files, dialect)):
        for line in lines:
            print(line)
        status = max(status, code)
    raise typer.Exit(status)


# --- run: one instance on the local host (tideflow.runtime.hosts.local) -------


def read_input(text: str | None) -> Any:
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


def read_redirects(pairs: list[str]) -> dict[str, str]:
    """``--server FROM=TO`` pairs."""
    out = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source.startswith(("http://", "https://")) or not target:
            raise fail(f"--server {pair!r}: expected FROM=TO with FROM an http(s) URL", code=2)
        out[source] = target
    return out


async def _load_for_run(workflow: str, dialect: str | None = None) -> Any:
    """Load, resolve and validate ``workflow``; warnings to stderr; problems exit 2."""
    from pathlib import Path

    from tideflow.errors import WorkflowLoadError, WorkflowValidationError
    from tideflow.references import load_any_definition

    try:
        model, warnings = await load_any_definition(Path(workflow), dialect=dialect)
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


async def _run_local(host: Any, workflow: str, dialect: str | None, data: Any) -> Any:
    """Load ``workflow`` (its references resolved once, here) and run it on ``host``."""
    from pathlib import Path

    folder = await asyncio.to_thread(lambda: Path(workflow).resolve().parent)
    async with host:
        model = await _load_for_run(workflow, dialect)
        return await host.run(model, data, folder)


def _describe_failure(result: Any) -> str:
    error = result.error
    where = f" in state {error.state!r}" if error.state else ""
    code = f" (code {error.code})" if error.code and error.code != error.name else ""
    return f"workflow failed{where}: {error.name}{code}: {error.message}"


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
    import json
    from pathlib import Path

    from tideflow import expression_budget, limits
    from tideflow.connectors.messaging import ConnectorBrokers
    from tideflow.runtime.hosts.local import (
        LocalHost,
        LocalOptions,
        TimelinePrinter,
        load_functions_file,
    )
    from tideflow.runtime.result import Failed
    from tideflow.secrets import SecretSource
    from tideflow.settings import Settings

    settings = Settings.from_env()  # the expression budget and the value limits
    expression_budget.configure(expression_budget.budget_from(settings))
    limits.configure(limits.from_settings(settings))

    if dialect not in (None, "sonataflow"):
        raise fail(f"--dialect {dialect!r}: the only dialect is 'sonataflow'", code=2)
    data = read_input(input_)
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
        redirects=read_redirects(server or []),
        secret_source=SecretSource(file=settings.secrets_file),
        brokers=ConnectorBrokers(),
    )
    try:
        outcome = asyncio.run(_run_local(LocalHost(options), workflow, dialect, data))
    except typer.Exit:  # an invalid definition, already reported
        raise
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
