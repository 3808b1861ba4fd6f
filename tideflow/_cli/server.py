"""``tideflow serve`` and the events, buses and timers commands (thin shells over the API)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from tideflow import __version__
from tideflow._cli.common import (
    DEFAULT_SERVER,
    ServerOption,
    TokenOption,
    call_api,
    err_console,
    fail,
    out_console,
    print_json,
)
from tideflow._cli.local import read_redirects
from tideflow._cli.worker import (
    AddressOption,
    EngineOption,
    GrantOption,
    NamespaceOption,
    QueueOption,
    with_engine,
    with_grants,
)
from tideflow.errors import TideflowError

# --- serve, events, buses: the HTTP API (thin shells over tideflow.api) ------

events_app = typer.Typer(help="Send and read CloudEvents.", no_args_is_help=True)
buses_app = typer.Typer(help="Manage event buses.", no_args_is_help=True)
timers_app = typer.Typer(help="Inspect durable timers.", no_args_is_help=True)


class LogFormatChoice(StrEnum):
    """``serve --log-format``."""

    TEXT = "text"
    JSON = "json"


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
    connectors: Annotated[
        str | None,
        typer.Option(
            "--connectors",
            help="YAML or JSON file of connectors (sources and sinks) created or updated on start.",
        ),
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
    allow_scripts: Annotated[
        bool,
        typer.Option(
            "--allow-scripts",
            help="Run DSL 1.0 'run: script' code (Python, JavaScript) of deployed definitions "
            "(code of any kind, with this server's rights; also TIDEFLOW_PYTHON_SCRIPTS=1).",
        ),
    ] = False,
    insecure_local: Annotated[
        bool,
        typer.Option(
            "--insecure-local",
            help="Need no API token (loopback addresses only; anything on this machine, "
            "every user, can then do anything).",
        ),
    ] = False,
    allow_egress: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-egress",
            metavar="HOST|HOST:PORT|CIDR",
            help="Let function calls, fetches and sinks reach this loopback, private or "
            "link-local host or network (repeatable; adds to TIDEFLOW_EGRESS_ALLOW).",
        ),
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            metavar="NAME",
            help="Also answer requests whose Host is NAME (repeatable; adds to "
            "TIDEFLOW_ALLOWED_HOSTS).",
        ),
    ] = None,
    log_format: Annotated[
        LogFormatChoice,
        typer.Option(
            "--log-format",
            help="The server log on stderr: text, or json (one object a line: time, level, "
            "logger, message and fields such as a failed instance's).",
        ),
    ] = LogFormatChoice.TEXT,
    access_log: Annotated[
        bool,
        typer.Option("--access-log", help="Log one line per HTTP request (client, path, status)."),
    ] = False,
    rate_limit: Annotated[
        str | None,
        typer.Option(
            "--rate-limit",
            metavar="N/s",
            help="Requests each token may make (N/s, N/m or N/h) unless it has its own "
            "rate; 429 with Retry-After past it (default: TIDEFLOW_RATE_LIMIT, else unlimited).",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert",
            metavar="PEM",
            help="Serve HTTPS with this certificate chain (with --tls-key; TIDEFLOW_TLS_CERT).",
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(
            "--tls-key", metavar="PEM", help="The certificate's private key (TIDEFLOW_TLS_KEY)."
        ),
    ] = None,
    archive_root: Annotated[
        Path | None,
        typer.Option(
            "--archive-root",
            metavar="DIR",
            help="Buses may archive to local folders under DIR only (TIDEFLOW_ARCHIVE_ROOT; "
            "default: TIDEFLOW_HOME/archive).",
        ),
    ] = None,
    grant_secret: GrantOption = None,
    retention: Annotated[
        list[str] | None,
        typer.Option(
            "--retention",
            metavar="[PATTERN=]DURATION",
            help="Keep ended instances of workflows whose id matches PATTERN for DURATION "
            "(ISO 8601, e.g. P30D, or 'forever'); without PATTERN=, the default for the "
            "others (default P30D; repeatable; before TIDEFLOW_RETENTION's entries).",
        ),
    ] = None,
    oidc_issuer: Annotated[
        str | None,
        typer.Option(
            "--oidc-issuer",
            metavar="URL",
            help="Also accept JWTs this OIDC issuer signed (keys from its discovery document; "
            "TIDEFLOW_OIDC_ISSUER).",
        ),
    ] = None,
    oidc_audience: Annotated[
        str | None,
        typer.Option(
            "--oidc-audience",
            metavar="AUD",
            help="What such a JWT's 'aud' must hold (TIDEFLOW_OIDC_AUDIENCE).",
        ),
    ] = None,
    oidc_scope_claim: Annotated[
        str | None,
        typer.Option(
            "--oidc-scope-claim",
            metavar="CLAIM",
            help="The claim listing a JWT's Tideflow scopes (default: scope).",
        ),
    ] = None,
    dialect: Annotated[
        str | None,
        typer.Option(
            "--dialect",
            metavar="NAME",
            help="Deploy the --workflows folders' definitions with this dialect "
            "('sonataflow': read as SonataFlow does).",
        ),
    ] = None,
    engine: EngineOption = None,
    temporal_address: AddressOption = None,
    namespace: NamespaceOption = None,
    task_queue: QueueOption = None,
    otel: Annotated[
        bool,
        typer.Option(
            "--otel",
            help="Export OpenTelemetry traces over OTLP/HTTP (needs tideflow[otel]; also "
            "TIDEFLOW_OTEL=1 or OTEL_EXPORTER_OTLP_ENDPOINT; see docs/observability.md).",
        ),
    ] = False,
    otel_sample: Annotated[
        float | None,
        typer.Option(
            "--otel-sample",
            metavar="RATIO",
            help="Share of new traces kept, 0 to 1 (default OTEL_TRACES_SAMPLER_ARG, else 1).",
        ),
    ] = None,
    otel_endpoint: Annotated[
        str | None,
        typer.Option(
            "--otel-endpoint",
            metavar="URL",
            help="The OTLP/HTTP traces URL (default OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "
            "else http://localhost:4318/v1/traces).",
        ),
    ] = None,
    node_id: Annotated[
        str | None,
        typer.Option(
            "--node-id",
            metavar="ID",
            help="This process's stable identity among those sharing the database "
            "(TIDEFLOW_NODE_ID; default: derived from the host name, the data directory or "
            "database URL, the address and the port).",
        ),
    ] = None,
) -> None:
    """Serve everything in one process: API, event store, subscriptions, timers, runtime.

    Data lives in an embedded PostgreSQL unless TIDEFLOW_DATABASE_URL is set.
    python: functions may import only the --allow-python modules and those in
    the --workflows folders. Outbound calls, fetches and sinks may reach public
    addresses and the --allow-egress ones, nothing else. Every request needs an API token (the first
    admin token is printed at the first start and saved in TIDEFLOW_HOME)
    unless --insecure-local is given on a loopback address. A workflow
    receives a secret only where --grant-secret (or the admin API) grants it.
    """
    from dataclasses import replace

    from tideflow.runtime.hosts.local import load_functions_file
    from tideflow.serve import SystemOptions, open_system_with

    if dialect not in (None, "sonataflow"):
        raise fail(f"--dialect {dialect!r}: the only dialect is 'sonataflow'", code=2)
    folders = [Path(folder) for folder in workflows or []]
    for folder in folders:
        if not folder.is_dir():
            raise fail(f"--workflows {folder}: not a folder", code=2)
    try:
        overrides = load_functions_file(functions) if functions else {}
    except TideflowError as exc:
        raise fail(str(exc), code=2) from None
    system = SystemOptions(
        workflow_dirs=folders,
        folder_dialect=dialect,
        functions=overrides,
        redirects=read_redirects(server or []),
        connectors=read_connectors(connectors) if connectors else (),
    )

    from tideflow.api.server import describe_database, run_server
    from tideflow.limits import from_settings
    from tideflow.settings import Settings

    try:
        settings = Settings.from_env()
    except ValueError as exc:
        raise fail(f"invalid TIDEFLOW_* setting: {exc}", exc=exc) from None
    try:
        from_settings(settings)  # a limit no writer can honour: refused before anything starts
    except TideflowError as exc:
        raise fail(str(exc), code=2) from None
    settings = replace(settings, host=host or settings.host, port=port or settings.port)
    settings = _with_python_modules(settings, allow_python or [])
    settings = replace(settings, python_scripts=settings.python_scripts or allow_scripts)
    settings = _with_egress(settings, allow_egress or [])
    settings = _with_access(settings, insecure_local, allow_host or [])
    settings = _with_rate_limit(settings, rate_limit)
    settings = _with_tls(settings, tls_cert, tls_key)
    if archive_root is not None:
        settings = replace(settings, archive_root=archive_root)
    settings = with_grants(settings, grant_secret or [])
    settings = _with_retention(settings, retention or [])
    settings = _with_oidc(settings, oidc_issuer, oidc_audience, oidc_scope_claim)
    settings = _with_node_id(settings, node_id)
    settings = _with_otel(settings, otel, otel_sample, otel_endpoint)
    settings = with_engine(settings, engine, temporal_address, namespace, task_queue)
    out_console.print(
        f"tideflow {__version__}: node {settings.node_id}, data in {describe_database(settings)}"
    )
    run_server(
        settings,
        open_system_with(system),
        log_format=log_format.value,
        access_log=access_log,
    )


def _with_otel(settings: Any, on: bool, sample: float | None, endpoint: str | None) -> Any:
    """``--otel``, ``--otel-sample`` and ``--otel-endpoint`` over the environment's."""
    from dataclasses import replace

    from tideflow.settings import check_sample

    if sample is not None:
        try:
            check_sample(sample, "--otel-sample")
        except ValueError as exc:
            raise fail(str(exc), code=2) from None
    return replace(
        settings,
        otel=settings.otel or on,
        otel_sample=settings.otel_sample if sample is None else sample,
        otel_endpoint=endpoint or settings.otel_endpoint,
    )


def read_connectors(path: str) -> tuple[Any, ...]:
    """The connectors declared in ``path`` (YAML or JSON), validated; exit 2 naming the
    entry and field when one is invalid."""
    from pathlib import Path

    import yaml

    from tideflow.connectors.spec import parse_connectors_file

    try:
        document = yaml.safe_load(Path(path).read_text("utf-8"))
    except OSError as exc:
        raise fail(f"--connectors {path}: {exc.strerror}", code=2) from None
    except yaml.YAMLError:
        raise fail(f"--connectors {path}: not valid YAML or JSON", code=2) from None
    try:
        return tuple(parse_connectors_file(document, path))
    except TideflowError as exc:
        raise fail(str(exc), code=2) from None


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


def _with_egress(settings: Any, allowed: list[str]) -> Any:
    """``settings`` with ``--allow-egress`` added to its allow list; exit 2 on a bad entry."""
    from dataclasses import replace

    from tideflow.egress import EgressPolicy

    entries = (*settings.egress_allow, *allowed)
    try:
        EgressPolicy.for_server(entries)
    except TideflowError as exc:
        raise fail(f"--allow-egress / TIDEFLOW_EGRESS_ALLOW: {exc}", code=2) from None
    return replace(settings, egress_allow=entries)


def _with_retention(settings: Any, entries: list[str]) -> Any:
    """``settings`` with ``--retention`` added to its entries; exit 2 on a malformed one."""
    from dataclasses import replace

    from tideflow.runtime.retention import parse_retention

    texts = (*entries, *settings.retention)  # the first that applies wins: flags first
    try:
        parse_retention(texts)
    except TideflowError as exc:
        raise fail(f"--retention / TIDEFLOW_RETENTION: {exc}", code=2) from None
    return replace(settings, retention=texts)


def _with_access(settings: Any, insecure_local: bool, hosts: list[str]) -> Any:
    """``settings`` with ``--insecure-local`` and ``--allow-host``; exit 2 if not loopback."""
    from dataclasses import replace

    from tideflow.api.access import check_insecure_local

    insecure = insecure_local or settings.insecure_local
    try:
        check_insecure_local(settings.host, insecure)
    except TideflowError as exc:
        raise fail(str(exc), code=2) from None
    if insecure:
        err_console.print(
            "[bold red]WARNING: --insecure-local: no API token is needed. Every program and "
            f"user on this machine can deploy, run and read everything on {settings.host}."
            "[/bold red]"
        )
    hosts = [*settings.allowed_hosts, *hosts]
    return replace(settings, insecure_local=insecure, allowed_hosts=tuple(hosts))


def _with_tls(settings: Any, cert: Path | None, key: Path | None) -> Any:
    """``settings`` with ``--tls-cert``/``--tls-key``; exit 2 unless they make a usable pair."""
    from dataclasses import replace

    from tideflow.api.server import check_tls

    settings = replace(
        settings, tls_cert=cert or settings.tls_cert, tls_key=key or settings.tls_key
    )
    try:
        check_tls(settings)
    except TideflowError as exc:
        raise fail(str(exc), code=2) from None
    return settings


def _with_oidc(settings: Any, issuer: str | None, audience: str | None, claim: str | None) -> Any:
    """``settings`` with the ``--oidc-*`` flags; exit 2 unless an issuer (https, or http on
    loopback) comes with an audience."""
    from dataclasses import replace

    from tideflow.auth.jwks import check_issuer_url

    settings = replace(
        settings,
        oidc_issuer=issuer or settings.oidc_issuer,
        oidc_audience=audience or settings.oidc_audience,
        oidc_scope_claim=claim or settings.oidc_scope_claim,
    )
    if settings.oidc_issuer is None:
        return settings
    try:
        check_issuer_url(settings.oidc_issuer)
    except TideflowError as exc:
        raise fail(str(exc), code=2) from None
    if not settings.oidc_audience:
        raise fail("--oidc-issuer needs --oidc-audience (what a JWT's 'aud' must hold)", code=2)
    return settings


def _with_node_id(settings: Any, node_id: str | None) -> Any:
    """``settings`` with ``--node-id`` (exit 2 on a malformed one), else its derived id."""
    from dataclasses import replace

    from tideflow.settings import check_node_id

    if node_id is not None:
        try:
            settings = replace(settings, node_id=check_node_id(node_id))
        except ValueError as exc:
            raise fail(str(exc), code=2) from None
    return settings.identified()


def _with_rate_limit(settings: Any, rate_limit: str | None) -> Any:
    """``settings`` with ``--rate-limit``; exit 2 unless it (or the variable) is N/s, N/m, N/h."""
    from dataclasses import replace

    from tideflow.auth.rates import Rate

    text = rate_limit or settings.rate_limit
    if text is None:
        return settings
    try:
        return replace(settings, rate_limit=Rate.parse(text, "--rate-limit").text)
    except TideflowError as exc:
        raise fail(f"--rate-limit / TIDEFLOW_RATE_LIMIT: {exc}", code=2) from None


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
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Send one CloudEvent; print its bus, offset and whether it was a duplicate."""
    from pathlib import Path

    from tideflow.client import build_event, parse_extensions
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
    ack = call_api(server, lambda client: client.send_event(bus, event))
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
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Follow a bus: print each event as one JSON line {offset, event}; Ctrl-C stops."""
    import orjson

    async def follow(client: Any) -> None:
        after = from_ - 1 if from_ is not None else (await client.get_bus(bus))["lastOffset"]
        async for record in client.tail(bus, after):
            print(orjson.dumps(record).decode(), flush=True)

    call_api(server, follow)


@buses_app.command("list")
def buses_list(server: ServerOption = DEFAULT_SERVER, token: TokenOption = None) -> None:
    """List the buses: name and retention."""
    for bus in call_api(server, lambda client: client.list_buses()):
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
    segment_events: Annotated[
        int | None, typer.Option(help="Events per segment (default: the server's).")
    ] = None,
    archive_after: Annotated[
        str | None,
        typer.Option(help="Archive closed segments older than this ISO 8601 duration (admin)."),
    ] = None,
    archive_to: Annotated[
        str | None,
        typer.Option(
            help="Where archived segments go: a folder under the server's archive root "
            "or s3://bucket/prefix."
        ),
    ] = None,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Create a bus."""
    retention = {k: v for k, v in (("maxAge", max_age), ("maxEvents", max_events)) if v}
    if (archive_after is None) != (archive_to is None):
        raise fail("--archive-after and --archive-to go together", code=2)
    archive = {"after": archive_after, "to": archive_to} if archive_after else None
    print_json(
        call_api(
            server,
            lambda client: client.create_bus(
                name, retention or None, segment_events=segment_events, archive=archive
            ),
        )
    )


@buses_app.command("show")
def buses_show(
    name: Annotated[str, typer.Argument(help="The bus name.")],
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Show a bus: offsets, segments, size on disk, recent rate."""
    print_json(call_api(server, lambda client: client.get_bus(name)))


@buses_app.command("delete")
def buses_delete(
    name: Annotated[str, typer.Argument(help="The bus name.")],
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Delete a bus and all its events."""
    call_api(server, lambda client: client.delete_bus(name))
    print(f"deleted bus {name}")


@timers_app.command("list")
def timers_list(
    kind: Annotated[str | None, typer.Option(help="Only timers of this kind.")] = None,
    state: Annotated[str, typer.Option(help="pending, fired, cancelled or all.")] = "pending",
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """List timers in due order: due time, state, kind, id."""
    found = call_api(server, lambda client: client.list_timers(kind, state, limit))
    if as_json:
        print_json(found)
        return
    for timer in found:
        print(f"{timer['dueAt']}\t{timer['state']}\t{timer['kind']}\t{timer['id']}")
