"""The one settings object: environment variables ``TIDEFLOW_*``, overridden by CLI flags."""

from __future__ import annotations

import hashlib
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("tideflow", appauthor=False))


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Tideflow's configuration.

    Attributes:
        database_url: An existing PostgreSQL server; ``None`` starts the embedded one.
        home: Where the embedded database and other local state live.
        host: The address ``tideflow serve`` listens on.
        port: The port ``tideflow serve`` listens on.
        max_request_bytes: Largest accepted HTTP request body for event ingestion.
        segment_size: Events per segment (partition) of a bus's log.
        archive_root: The folder under which a bus's local ``archive.to`` must lie
            (``--archive-root``, ``TIDEFLOW_ARCHIVE_ROOT``; ``None``: ``home/archive``).
        secrets_file: A JSON or YAML file of secrets (``TIDEFLOW_SECRETS_FILE``),
            read besides the ``TIDEFLOW_SECRET_<NAME>`` variables.
        secret_grants: ``PATTERN=NAME,NAME`` grants of secrets to workflow ids
            (or ``sink:<host>``) on a server (``--grant-secret``,
            ``TIDEFLOW_SECRET_GRANTS`` split at ``;`` and new lines); see
            :mod:`tideflow.secrets.grants`.
        lease_seconds: The one lease length (``TIDEFLOW_LEASE_SECONDS``, default 3):
            how long a process holds an instance without renewing it (renewed every
            third of it), and how long its units of the cluster (subscriptions,
            connectors, the workflow subscriber) and its membership stay its own
            without a heartbeat. The work of a process gone for good is taken over
            about this late (instances plus at most the 2 s claim poll); a
            restarted process (the same :attr:`node_id`) takes its own back at once.
        cluster_heartbeat: Seconds between a process's heartbeats in the cluster
            (``TIDEFLOW_CLUSTER_HEARTBEAT``); see :mod:`tideflow.cluster`.
        python_modules: Modules (and their submodules) that ``python:`` functions
            of definitions deployed to a server may import, besides those in
            the ``--workflows`` folders (``TIDEFLOW_PYTHON_MODULES``, comma-separated).
        python_scripts: Whether DSL 1.0 ``run: script`` code (Python, JavaScript) runs on the server
            (``TIDEFLOW_PYTHON_SCRIPTS=1``, ``serve --allow-scripts``): code of any
            kind, with the server's rights, so off by default.
        expression_time_limit: Seconds one evaluation of an expression that can
            loop may take (``TIDEFLOW_EXPRESSION_TIME_LIMIT``); past it the
            instance fails (or the transform's delivery fails) with
            ``EXPRESSION_TIME_LIMIT``. See ``docs/expressions.md``.
        expression_memory_limit: Bytes such an evaluation may allocate
            (``TIDEFLOW_EXPRESSION_MEMORY_LIMIT``); past it: ``EXPRESSION_MEMORY_LIMIT``.
        expression_workers: Worker processes evaluating such expressions, i.e.
            how many run at the same time (``TIDEFLOW_EXPRESSION_WORKERS``).
        value_depth_limit: Nesting of any value: inputs, state data, event
            data, function results, definitions (``TIDEFLOW_VALUE_DEPTH_LIMIT``).
        value_bytes_limit: Size of any such value as JSON, about
            (``TIDEFLOW_VALUE_BYTES_LIMIT``).
        foreach_items_limit: Items of one foreach collection
            (``TIDEFLOW_FOREACH_ITEMS_LIMIT``).
        definition_nodes_limit: Values in a definition, YAML aliases expanded
            (``TIDEFLOW_DEFINITION_NODES_LIMIT``).
        event_delay_limit: Seconds ahead an event may ask to be delivered with
            ``deliverytime`` or ``delay`` (``TIDEFLOW_EVENT_DELAY_LIMIT``,
            default 365 days); further is refused with 400.
        sink_timeout_limit: Longest ``delivery.timeout`` a subscription may ask
            for, in seconds (``TIDEFLOW_SINK_TIMEOUT_LIMIT``, default 60); larger
            is refused with 422, and older subscriptions are held to it.
        sink_connections: Connections one subscription may hold to its sink
            at once (``TIDEFLOW_SINK_CONNECTIONS``, default 64); each
            subscription has its own pool, so a sink that never answers blocks
            no other subscription.
        quarantine_after: Claims of an instance after a runner that never released
            it (a killed process, a runner that failed) at the same step, in a row,
            after which it is failed with ``QUARANTINED`` instead of run again
            (``TIDEFLOW_QUARANTINE_AFTER``, default 3); also the crashes of the process
            while an in-process consumer had one event, before it is dead-lettered.
        retention: How long ended instances are kept: ``DURATION`` (the
            default) and ``PATTERN=DURATION`` entries (``--retention``,
            ``TIDEFLOW_RETENTION``), see :mod:`tideflow.runtime.retention`.
        timer_retention: Seconds a fired or cancelled timer is kept
            (``TIDEFLOW_TIMER_RETENTION``).
        insecure_local: Serve without tokens (``--insecure-local``,
            ``TIDEFLOW_INSECURE_LOCAL=1``); refused unless ``host`` is loopback.
        allowed_hosts: More ``Host`` names the server answers to besides its
            own address (``--allow-host``, ``TIDEFLOW_ALLOWED_HOSTS``, comma-separated).
        egress_allow: Hosts, addresses and networks (``host``, ``host:port``,
            CIDR) that outbound fetches, calls and sinks may reach although
            they are loopback, private or link-local (``--allow-egress``,
            ``TIDEFLOW_EGRESS_ALLOW``, comma-separated; see ``tideflow.egress``).
        otel: Export OpenTelemetry traces (``--otel``, ``TIDEFLOW_OTEL=1``; also on when
            ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set): see :mod:`tideflow.tracing`.
        otel_sample: Share of new traces kept, 0 to 1 (``--otel-sample``,
            ``TIDEFLOW_OTEL_SAMPLE``; default ``OTEL_TRACES_SAMPLER_ARG``, else 1).
        otel_endpoint: The OTLP/HTTP traces URL (``--otel-endpoint``,
            ``TIDEFLOW_OTEL_ENDPOINT``; default the ``OTEL_EXPORTER_OTLP_*`` variables,
            else ``http://localhost:4318/v1/traces``).
        token_cache_seconds: How long a verified token is trusted without a
            look-up (``TIDEFLOW_TOKEN_CACHE_SECONDS``): the longest a revocation
            whose notification was lost takes to reach another server.
        rate_limit: Requests each token may make, ``N/s``, ``N/m`` or ``N/h``,
            unless it has its own rate (``--rate-limit``, ``TIDEFLOW_RATE_LIMIT``;
            ``None``: unlimited). Counted per ``tideflow serve`` process.
        tls_cert: The server's certificate chain, PEM (``--tls-cert``,
            ``TIDEFLOW_TLS_CERT``): with ``tls_key``, ``tideflow serve`` speaks HTTPS only.
        tls_key: Its private key, PEM (``--tls-key``, ``TIDEFLOW_TLS_KEY``).
        oidc_issuer: Also accept JWTs this OIDC issuer signed (``--oidc-issuer``,
            ``TIDEFLOW_OIDC_ISSUER``; ``None``: Tideflow tokens only).
        oidc_audience: What their ``aud`` must hold (``--oidc-audience``,
            ``TIDEFLOW_OIDC_AUDIENCE``; required with an issuer).
        oidc_scope_claim: The claim listing their Tideflow scopes
            (``--oidc-scope-claim``, ``TIDEFLOW_OIDC_SCOPE_CLAIM``).
        node_id: This process's stable identity among the processes sharing a
            database (``--node-id``, ``TIDEFLOW_NODE_ID``): the owner of its
            leases. Empty means derived (:func:`derive_node_id`: the host name,
            the data directory or database URL, the listen address and the
            port), so several processes on one machine differ and a restarted
            one is the same. :meth:`identified` fills it in; in a running
            ``tideflow serve`` (``Services.settings``) it is never empty.
        engine: What runs instances: ``postgres`` (the durable host) or
            ``temporal`` (``--engine``, ``TIDEFLOW_ENGINE``; ``docs/temporal.md``).
        temporal_address: ``HOST:PORT`` of the Temporal front end (``--temporal-address``).
        temporal_namespace: The Temporal namespace (``--namespace``).
        temporal_task_queue: The task queue of Tideflow's workflows (``--task-queue``).
    """

    database_url: str | None = None
    home: Path = field(default_factory=_default_home)
    host: str = "127.0.0.1"
    port: int = 8080
    max_request_bytes: int = 1024 * 1024
    segment_size: int = 1_000_000
    archive_root: Path | None = None
    secrets_file: Path | None = None
    secret_grants: tuple[str, ...] = ()
    lease_seconds: float = 3.0
    cluster_heartbeat: float = 1.0
    python_modules: tuple[str, ...] = ()
    python_scripts: bool = False
    expression_time_limit: float = 1.0
    expression_memory_limit: int = 256 * 1024 * 1024
    expression_workers: int = 2
    value_depth_limit: int = 128
    value_bytes_limit: int = 8 * 1024 * 1024
    foreach_items_limit: int = 10_000
    definition_nodes_limit: int = 100_000
    event_delay_limit: float = 365 * 86400.0
    sink_timeout_limit: float = 60.0
    sink_connections: int = 64
    quarantine_after: int = 3
    retention: tuple[str, ...] = ()
    timer_retention: float = 86400.0
    insecure_local: bool = False
    allowed_hosts: tuple[str, ...] = ()
    token_cache_seconds: float = 5.0
    rate_limit: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    egress_allow: tuple[str, ...] = ()
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_scope_claim: str = "scope"
    node_id: str = ""
    engine: str = "postgres"
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_task_queue: str = "tideflow"
    otel: bool = False
    otel_sample: float | None = None
    otel_endpoint: str | None = None

    def identified(self) -> Settings:
        """These settings with :attr:`node_id` filled in (derived unless one was given)."""
        return self if self.node_id else replace(self, node_id=derive_node_id(self))

    @property
    def archive_folder(self) -> Path:
        """Where local archive files may go: ``archive_root``, else ``home/archive``."""
        return self.archive_root if self.archive_root is not None else self.home / "archive"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``TIDEFLOW_*`` variables (from ``os.environ`` unless given)."""
        env = os.environ if env is None else env
        settings = cls()
        if url := env.get("TIDEFLOW_DATABASE_URL"):
            settings = replace(settings, database_url=url)
        if home := env.get("TIDEFLOW_HOME"):
            settings = replace(settings, home=Path(home))
        if host := env.get("TIDEFLOW_HOST"):
            settings = replace(settings, host=host)
        if port := env.get("TIDEFLOW_PORT"):
            settings = replace(settings, port=int(port))
        if size := env.get("TIDEFLOW_MAX_REQUEST_BYTES"):
            settings = replace(settings, max_request_bytes=int(size))
        if seg := env.get("TIDEFLOW_SEGMENT_SIZE"):
            settings = replace(settings, segment_size=int(seg))
        if secrets := env.get("TIDEFLOW_SECRETS_FILE"):
            settings = replace(settings, secrets_file=Path(secrets))
        if node := env.get("TIDEFLOW_NODE_ID"):
            settings = replace(settings, node_id=check_node_id(node, "TIDEFLOW_NODE_ID"))
        settings = _lists_from_env(settings, env)
        settings = _engine_from_env(settings, env)
        for variable, (name, convert) in _NUMBERS.items():
            if text := env.get(variable):
                changes: dict[str, Any] = {name: convert(text)}
                settings = replace(settings, **changes)
        return _access_from_env(settings, env)


ENGINES = ("postgres", "temporal")


def _engine_from_env(settings: Settings, env: Mapping[str, str]) -> Settings:
    """``TIDEFLOW_ENGINE`` and ``TIDEFLOW_TEMPORAL_{ADDRESS,NAMESPACE,TASK_QUEUE}``."""
    if engine := env.get("TIDEFLOW_ENGINE"):
        if engine not in ENGINES:
            raise ValueError(f"TIDEFLOW_ENGINE={engine!r}: one of {', '.join(ENGINES)}")
        settings = replace(settings, engine=engine)
    if address := env.get("TIDEFLOW_TEMPORAL_ADDRESS"):
        settings = replace(settings, temporal_address=address)
    if namespace := env.get("TIDEFLOW_TEMPORAL_NAMESPACE"):
        settings = replace(settings, temporal_namespace=namespace)
    if queue := env.get("TIDEFLOW_TEMPORAL_TASK_QUEUE"):
        settings = replace(settings, temporal_task_queue=queue)
    return settings


NODE_ID_MAX = 64
_NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]*")


def check_node_id(text: str, where: str = "--node-id") -> str:
    """``text`` as a node id: 1 to 64 letters, digits and ``. _ : @ -``, starting
    with a letter or digit (it appears in logs, ``GET /cluster`` and lease columns).

    Raises:
        ValueError: It is not, naming ``where`` it came from.
    """
    if len(text) > NODE_ID_MAX or not _NODE_ID.fullmatch(text):
        raise ValueError(
            f"{where}: {text[:80]!r} is not a node id (1-{NODE_ID_MAX} letters, digits "
            "and . _ : @ -, starting with a letter or digit)"
        )
    return text


def derive_node_id(settings: Settings, hostname: str | None = None) -> str:
    """The default node id: ``<host>-<port>-<digest>``.

    The digest covers the host name, the data directory (``home``), the
    database URL without its password (or ``embedded``), the listen address
    and the port: two processes on one machine differ (different port, or
    address, or data directory), a restarted one is the same, and a changed
    password does not change it.

    Args:
        settings: The settings of the process.
        hostname: The machine's name (default: ``socket.gethostname()``).
    """
    host = hostname if hostname is not None else socket.gethostname()
    database = _without_password(settings.database_url) if settings.database_url else "embedded"
    home = os.path.abspath(os.path.expanduser(settings.home))
    parts = (host, home, database, settings.host, str(settings.port))
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:8]
    readable = re.sub(r"[^A-Za-z0-9.-]+", "-", host.split(".")[0]).strip("-.")[:32] or "node"
    return f"{readable}-{settings.port}-{digest}"


def _without_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1@", url)


def _lists_from_env(settings: Settings, env: Mapping[str, str]) -> Settings:
    """``TIDEFLOW_PYTHON_MODULES`` and ``TIDEFLOW_RETENTION`` (comma-separated)."""
    if modules := env.get("TIDEFLOW_PYTHON_MODULES"):
        names = tuple(name.strip() for name in modules.split(",") if name.strip())
        settings = replace(settings, python_modules=names)
    if env.get("TIDEFLOW_PYTHON_SCRIPTS", "").strip().lower() in ("1", "true", "yes", "on"):
        settings = replace(settings, python_scripts=True)
    if retention := env.get("TIDEFLOW_RETENTION"):
        settings = replace(settings, retention=(retention,))
    return settings


# Numeric settings read the same way: variable -> (field, type).
_NUMBERS: dict[str, tuple[str, type[int] | type[float]]] = {
    "TIDEFLOW_LEASE_SECONDS": ("lease_seconds", float),
    "TIDEFLOW_EXPRESSION_TIME_LIMIT": ("expression_time_limit", float),
    "TIDEFLOW_EXPRESSION_MEMORY_LIMIT": ("expression_memory_limit", int),
    "TIDEFLOW_EXPRESSION_WORKERS": ("expression_workers", int),
    "TIDEFLOW_VALUE_DEPTH_LIMIT": ("value_depth_limit", int),
    "TIDEFLOW_VALUE_BYTES_LIMIT": ("value_bytes_limit", int),
    "TIDEFLOW_FOREACH_ITEMS_LIMIT": ("foreach_items_limit", int),
    "TIDEFLOW_DEFINITION_NODES_LIMIT": ("definition_nodes_limit", int),
    "TIDEFLOW_EVENT_DELAY_LIMIT": ("event_delay_limit", float),
    "TIDEFLOW_TOKEN_CACHE_SECONDS": ("token_cache_seconds", float),
    "TIDEFLOW_SINK_TIMEOUT_LIMIT": ("sink_timeout_limit", float),
    "TIDEFLOW_SINK_CONNECTIONS": ("sink_connections", int),
    "TIDEFLOW_QUARANTINE_AFTER": ("quarantine_after", int),
    "TIDEFLOW_CLUSTER_HEARTBEAT": ("cluster_heartbeat", float),
    "TIDEFLOW_TIMER_RETENTION": ("timer_retention", float),
}


_OIDC: dict[str, str] = {
    "TIDEFLOW_OIDC_ISSUER": "oidc_issuer",
    "TIDEFLOW_OIDC_AUDIENCE": "oidc_audience",
    "TIDEFLOW_OIDC_SCOPE_CLAIM": "oidc_scope_claim",
}


def _access_from_env(settings: Settings, env: Mapping[str, str]) -> Settings:
    """``TIDEFLOW_INSECURE_LOCAL``, ``TIDEFLOW_ALLOWED_HOSTS``, ``TIDEFLOW_RATE_LIMIT``,
    ``TIDEFLOW_TLS_CERT``/``TIDEFLOW_TLS_KEY``, ``TIDEFLOW_EGRESS_ALLOW``,
    ``TIDEFLOW_SECRET_GRANTS``, ``TIDEFLOW_OIDC_*`` and ``TIDEFLOW_ARCHIVE_ROOT``."""
    if root := env.get("TIDEFLOW_ARCHIVE_ROOT"):
        settings = replace(settings, archive_root=Path(root))
    if insecure := env.get("TIDEFLOW_INSECURE_LOCAL"):
        settings = replace(settings, insecure_local=insecure.lower() in ("1", "true", "yes"))
    if rate := env.get("TIDEFLOW_RATE_LIMIT"):
        settings = replace(settings, rate_limit=rate)
    if cert := env.get("TIDEFLOW_TLS_CERT"):
        settings = replace(settings, tls_cert=Path(cert))
    if key := env.get("TIDEFLOW_TLS_KEY"):
        settings = replace(settings, tls_key=Path(key))
    for variable, name in _OIDC.items():
        if text := env.get(variable):
            changes: dict[str, Any] = {name: text}
            settings = replace(settings, **changes)
    if hosts := env.get("TIDEFLOW_ALLOWED_HOSTS"):
        names = tuple(name.strip() for name in hosts.split(",") if name.strip())
        settings = replace(settings, allowed_hosts=names)
    if egress := env.get("TIDEFLOW_EGRESS_ALLOW"):
        entries = tuple(entry.strip() for entry in egress.split(",") if entry.strip())
        settings = replace(settings, egress_allow=entries)
    if grants := env.get("TIDEFLOW_SECRET_GRANTS"):
        settings = replace(settings, secret_grants=(grants,))
    return _otel_from_env(settings, env)


def _otel_from_env(settings: Settings, env: Mapping[str, str]) -> Settings:
    """``TIDEFLOW_OTEL``, ``TIDEFLOW_OTEL_SAMPLE`` and ``TIDEFLOW_OTEL_ENDPOINT``."""
    if otel := env.get("TIDEFLOW_OTEL"):
        settings = replace(settings, otel=otel.strip().lower() in ("1", "true", "yes", "on"))
    if sample := env.get("TIDEFLOW_OTEL_SAMPLE"):
        settings = replace(settings, otel_sample=check_sample(float(sample)))
    if endpoint := env.get("TIDEFLOW_OTEL_ENDPOINT"):
        settings = replace(settings, otel_endpoint=endpoint)
    return settings


def check_sample(ratio: float, where: str = "TIDEFLOW_OTEL_SAMPLE") -> float:
    """``ratio`` if it is a share of traces (0 to 1).

    Raises:
        ValueError: It is not.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"{where}={ratio}: a share of traces from 0 to 1")
    return ratio
