"""The whole system in one process: what ``tideflow serve`` runs behind the API.

:func:`open_system` opens, in order, the database (embedded PostgreSQL unless
``TIDEFLOW_DATABASE_URL`` is set; migrations applied), the event store, the
audit trail (bus ``tideflow.audit``), the lifecycle publisher (bus
``tideflow.lifecycle``), the workflow registry and
instances gateways, the durable runtime (event waits are parked in its own
tables; sleeps, retry back-offs and timeouts as wake-up timers of the timer
service, whose handler it registers before the service starts), the
subscriptions dispatcher, the workflow subscriber (deployed
workflows' event starts and correlated waits, :mod:`tideflow.triggers.correlation`),
the timer service (delayed events,
delivery retries, workflow schedules, instance wake-ups; fired and cancelled timers deleted
after ``timer_retention``), the history purger (ended instances deleted after their
workflow's ``--retention``), and finally deploys the definitions of
``--workflows`` folders and registers every deployed ``start.schedule``. It
closes them in reverse order: the timers and the dispatcher first, then the
runtime (in-flight steps finish or are handed back to replay from their
journal), the lifecycle publisher (flushed), the store and the pool.

Right after the database it opens the API tokens: on a fresh installation
(no token at all) the first admin token is made, printed once and saved to
``$TIDEFLOW_HOME/admin-token`` (:mod:`tideflow.auth.first_token`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg

from tideflow import expression_budget, ids, limits, logs, tracing
from tideflow.api.access import check_insecure_local
from tideflow.api.services import Services, ServicesOpener
from tideflow.auth.audit import SERVER, AuditTrail
from tideflow.auth.first_token import FIRST_TOKEN_NAME, ensure_first_token, token_file
from tideflow.auth.gateway import CHANNEL as TOKENS_CHANNEL
from tideflow.auth.gateway import PostgresTokens
from tideflow.auth.scopes import ADMIN
from tideflow.auth.tokens import token_id_of
from tideflow.auth.verifier import TokenVerifier
from tideflow.clock import SYSTEM_CLOCK
from tideflow.cluster.gateway import PostgresCluster
from tideflow.cluster.membership import Cluster, ClusterOptions
from tideflow.connectors.gateway import PostgresConnectors
from tideflow.connectors.messaging import ConnectorBrokers
from tideflow.connectors.service import ConnectorService
from tideflow.connectors.spec import ConnectorSpec
from tideflow.console.gateway import PostgresSessions
from tideflow.db import DatabaseProbe, open_database
from tideflow.deploy import deploy_folder
from tideflow.egress import EgressPolicy
from tideflow.errors import ConfigurationError
from tideflow.eventstore.gateway import PostgresEventStore
from tideflow.eventstore.store import DEFAULT_BUS, EventStore
from tideflow.metrics import CountingAppender, Metrics
from tideflow.node import hold_node
from tideflow.notify import Listener
from tideflow.runtime.after_schedules import AfterSchedules
from tideflow.runtime.engine import InstanceEngine
from tideflow.runtime.functions import FunctionInvoker, Invocation, PythonFunction
from tideflow.runtime.functions.policy import PythonPolicy
from tideflow.runtime.gateway import PostgresInstances, PostgresRegistry
from tideflow.runtime.history import HistoryPurger
from tideflow.runtime.hosts.durable import DurableRuntime, LifecycleEvent, RuntimeOptions
from tideflow.runtime.hosts.temporal.activities import SYNC_THREADS, InstanceActivities
from tideflow.runtime.hosts.temporal.gateway import PostgresMirror
from tideflow.runtime.hosts.temporal.runtime import TemporalOptions, TemporalRuntime, connect
from tideflow.runtime.lifecycle import (
    LifecycleNotice,
    LifecyclePublisher,
    OpenTask,
    open_tasks_of,
)
from tideflow.runtime.retention import parse_retention
from tideflow.runtime.start_schedules import WorkflowSchedules
from tideflow.secrets import SecretAccess, SecretSource, parse_grants
from tideflow.secrets.gateway import CHANNEL as GRANTS_CHANNEL
from tideflow.secrets.gateway import PostgresGrants
from tideflow.settings import Settings
from tideflow.supervise import HealthBoard, Supervisor
from tideflow.timer.delayed import DELAYED_EVENT_KIND, DelayingAppender, delayed_event_handler
from tideflow.timer.service import TimerService
from tideflow.triggers.correlation import SubscribedRuntime, WorkflowSubscriber
from tideflow.triggers.delivery import HttpSender
from tideflow.triggers.dispatcher import Dispatcher
from tideflow.triggers.gateway import PostgresSubscriptions

log = logging.getLogger("tideflow.serve")


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemOptions:
    """What ``tideflow serve`` flags add to the settings.

    Attributes:
        workflow_dirs: Folders whose definitions are deployed on start; the
            first is also where relative OpenAPI documents resolve (else the
            current directory). ``python:`` modules are looked for in each
            of them, in order, and pass the ``python:`` policy.
        functions: Callables replacing functions by name (``--functions``).
        redirects: URL prefixes rewritten before requests are sent (``--server FROM=TO``).
        connectors: Connectors declared by ``--connectors FILE``, created or updated on start.
        folder_dialect: The dialect the folders' definitions are deployed with (``--dialect``).
    """

    workflow_dirs: Sequence[Path] = ()
    folder_dialect: str | None = None
    functions: Mapping[str, PythonFunction] = field(default_factory=dict)
    redirects: Mapping[str, str] = field(default_factory=dict)
    connectors: Sequence[ConnectorSpec] = ()


@asynccontextmanager
async def open_system(
    settings: Settings, options: SystemOptions | None = None
) -> AsyncIterator[Services]:
    """Open every service (see the module docs); close them all on exit."""
    options = options or SystemOptions()
    settings = settings.identified()  # the node id: this process's leases and log lines
    began = SYSTEM_CLOCK.monotonic()
    log.info("node %s: starting", settings.node_id)
    expression_budget.configure(expression_budget.budget_from(settings))
    limits.configure(limits.from_settings(settings))
    # python: modules: the allow list, and the operator's --workflows folders
    policy = PythonPolicy.for_server(
        settings.python_modules, options.workflow_dirs, scripts=settings.python_scripts
    )
    # outbound: public addresses, the allow list, documents in the --workflows folders
    egress = EgressPolicy.for_server(settings.egress_allow, options.workflow_dirs)
    async with AsyncExitStack() as stack:
        if (stop_tracing := tracing.configure(settings)) is not None:
            stack.push_async_callback(asyncio.to_thread, stop_tracing)  # flushes: off the loop
        database = await stack.enter_async_context(open_database(settings, max_size=20))
        health = HealthBoard()
        health.probe(DatabaseProbe(database.pool))
        tokens, first_token = await _open_tokens(database.pool, settings)
        secrets = _secret_access(database.pool, settings)
        revocations = _watch_revocations(database.pool, tokens, settings)
        verifying = await stack.enter_async_context(revocations)
        health.watch(verifying.supervisor)
        store = PostgresEventStore(database.pool, segment_size=settings.segment_size)
        await store.start()
        stack.push_async_callback(store.stop)
        health.watch(store.supervisor)
        audit = await _open_audit(store, first_token)
        metrics = Metrics()
        lifecycle = LifecyclePublisher(store, on_publish=metrics.lifecycle_published)
        await lifecycle.start()
        stack.push_async_callback(lifecycle.stop)
        health.watch(lifecycle.supervisor)
        node = await stack.enter_async_context(hold_node(database.pool, settings.node_id))
        timers = TimerService(database.pool, retention=settings.timer_retention)
        timers.register(DELAYED_EVENT_KIND, delayed_event_handler(store))
        runtime: DurableRuntime | None = None
        temporal: TemporalRuntime | None = None
        if settings.engine == "temporal":
            temporal = await stack.enter_async_context(
                _open_temporal(
                    database.pool,
                    store,
                    metrics,
                    options,
                    settings,
                    egress,
                    policy,
                    secrets,
                    lifecycle,
                )
            )
            health.watch(temporal.supervisor)
            registry = temporal.registry
            engine: InstanceEngine = temporal
            subscribed: SubscribedRuntime = temporal
        else:
            runtime = await stack.enter_async_context(
                _open_runtime(
                    database.pool,
                    store,
                    lifecycle,
                    metrics,
                    options,
                    RuntimeOptions(
                        owner=node.owner,
                        lease_seconds=settings.lease_seconds,
                        take_over=node.held,
                        python_policy=policy,
                        secrets=secrets,
                    ),
                    timers,
                    egress,
                )
            )
            health.watch(runtime.supervisor)
            lifecycle.is_dsl1 = runtime.is_dsl1  # 1.0 instances get the standard events too
            lifecycle.open_tasks = _open_tasks(runtime.instances)
            registry = runtime.registry  # the one registry: its deploys reach the subscriber
            engine = runtime
            subscribed = runtime
        cluster = _cluster(database.pool, settings)
        dispatcher = await stack.enter_async_context(
            _open_dispatcher(database.pool, store, timers, settings, egress, secrets, cluster)
        )
        health.watch(dispatcher.supervisor, timers.supervisor)
        # event starts and correlation: either engine (Temporal's through signals)
        subscriber = await stack.enter_async_context(
            _open_subscriber(database.pool, subscribed, dispatcher)
        )
        health.watch(subscriber.supervisor)
        grants = await stack.enter_async_context(_watch_grants(database.pool, runtime, dispatcher))
        health.watch(grants)
        connectors = await stack.enter_async_context(
            _open_connectors(database.pool, store, dispatcher, settings, metrics)
        )
        health.watch(connectors.supervisor)
        cluster.add(dispatcher)
        cluster.add(connectors)
        await cluster.start()  # takes this process's share of subscriptions and connectors
        stack.push_async_callback(cluster.stop)  # hands them over before they stop
        health.watch(cluster.supervisor)
        instances = PostgresInstances(database.pool)
        after = AfterSchedules(timers, registry, engine.start_instance, instances.get)
        after.register()
        history = await stack.enter_async_context(_open_history(database.pool, settings))
        health.watch(history.supervisor)
        schedules = WorkflowSchedules(timers, registry, engine.start_instance, after)
        schedules.register()
        await timers.start()
        stack.push_async_callback(timers.stop)
        services = Services(
            settings=settings,
            events=store,
            timers=timers,
            ingest=CountingAppender(
                DelayingAppender(
                    store, timers, horizon=timedelta(seconds=settings.event_delay_limit)
                ),
                metrics,
            ),
            registry=registry,
            instances=PostgresInstances(database.pool),
            runtime=runtime,
            engine=engine,
            metrics=metrics,
            lifecycle=lifecycle,
            dispatcher=dispatcher,
            schedules=schedules,
            python_policy=policy,
            health=health,
            tokens=tokens,
            verifier=verifying.verifier,
            audit=audit,
            connectors=connectors,
            secrets=secrets,
            cluster=cluster,
            console_sessions=PostgresSessions(database.pool, SYSTEM_CLOCK),
        )
        for folder in options.workflow_dirs:
            await deploy_folder(
                registry,
                folder,
                policy,
                egress,
                secrets,
                dialect=options.folder_dialect,
                engine=settings.engine,
            )
        await schedules.sync_all()  # start.schedule of every deployed workflow
        await connectors.apply(list(options.connectors))
        log.info(
            "node %s: ready in %.1f s; %s",
            settings.node_id,
            SYSTEM_CLOCK.monotonic() - began,
            _recovered(runtime),
        )
        try:
            yield services
        finally:
            began = SYSTEM_CLOCK.monotonic()
            log.info("node %s: stopping", settings.node_id)
    log.info("node %s: stopped in %.1f s", settings.node_id, SYSTEM_CLOCK.monotonic() - began)


def _recovered(runtime: DurableRuntime | None) -> str:
    """What a start found of the node's previous life, for its log line."""
    if runtime is None:
        return "instances run on Temporal"
    reclaimed = runtime.reclaimed
    if reclaimed is None:
        return "another live session holds this node id: nothing taken back"
    if reclaimed == 0:
        return "nothing to recover from a previous run"
    return f"reclaimed {reclaimed} instance(s) its previous run left running (a crash)"


@asynccontextmanager
async def _open_history(pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[HistoryPurger]:
    """History retention: ended instances past their workflow's retention are deleted.

    Raises:
        InvalidArgument: A ``--retention`` / ``TIDEFLOW_RETENTION`` entry is malformed.
    """
    policy = parse_retention(settings.retention)
    log.info("history retention: %s", policy.describe())
    purger = HistoryPurger(pool, policy)
    await purger.start()
    try:
        yield purger
    finally:
        await purger.stop()


@asynccontextmanager
async def _open_dispatcher(
    pool: asyncpg.Pool,
    store: EventStore,
    timers: TimerService,
    settings: Settings,
    egress: EgressPolicy,
    secrets: SecretAccess,
    cluster: Cluster,
) -> AsyncIterator[Dispatcher]:
    """The subscriptions dispatcher, started before the timers so it receives due retries;
    it runs the subscriptions ``cluster`` gives this process.

    Its sinks pass the same egress policy as function calls."""
    sender = HttpSender(
        connections=settings.sink_connections,
        timeout_limit=settings.sink_timeout_limit,
        egress=egress,
    )
    subscriptions = PostgresSubscriptions(pool)
    async with Dispatcher(
        store,
        subscriptions,
        timers,
        sender=sender,
        secrets=secrets,
        ownership=cluster,
        quarantine_after=settings.quarantine_after,
    ) as dispatcher:
        yield dispatcher


def _cluster(pool: asyncpg.Pool, settings: Settings) -> Cluster:
    """This process in the cluster: its identity, address and heartbeat times."""
    scheme = "https" if settings.tls_cert is not None else "http"
    return Cluster(
        PostgresCluster(pool),
        settings.node_id,
        address=f"{scheme}://{settings.host}:{settings.port}",
        options=ClusterOptions(heartbeat=settings.cluster_heartbeat, lease=settings.lease_seconds),
    )


@asynccontextmanager
async def _open_connectors(
    pool: asyncpg.Pool,
    store: EventStore,
    dispatcher: Dispatcher,
    settings: Settings,
    metrics: Metrics,
) -> AsyncIterator[ConnectorService]:
    """Sources and sinks, run where the dispatcher leads; stopped before the dispatcher."""
    service = ConnectorService(
        PostgresConnectors(pool),
        store,
        dispatcher,
        secrets_file=settings.secrets_file,
        metrics=metrics,
    )
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@asynccontextmanager
async def _open_subscriber(
    pool: asyncpg.Pool, runtime: SubscribedRuntime, dispatcher: Dispatcher
) -> AsyncIterator[WorkflowSubscriber]:
    """Workflows as subscribers: event starts and correlated waits, fed by the dispatcher."""
    subscriber = WorkflowSubscriber(pool, runtime, dispatcher)
    await subscriber.start()
    try:
        yield subscriber
    finally:
        await subscriber.stop()


@dataclass(frozen=True, slots=True)
class _Revocations:
    verifier: TokenVerifier
    supervisor: Supervisor


@asynccontextmanager
async def _watch_revocations(
    pool: asyncpg.Pool, tokens: PostgresTokens, settings: Settings
) -> AsyncIterator[_Revocations]:
    """The token verifier, told of revocations made by any server (LISTEN, supervised);
    after a reconnect it forgets every cached token, since notifications may be lost."""
    verifier = TokenVerifier(tokens, ttl=settings.token_cache_seconds)
    supervisor = Supervisor("tokens")
    listener = Listener(pool, "tokens", health=supervisor)
    listener.listen(TOKENS_CHANNEL, verifier.forget)
    listener.on_reconnect(verifier.clear)
    supervisor.spawn("listen", listener.run)
    try:
        yield _Revocations(verifier, supervisor)
    finally:
        await supervisor.stop()


async def _open_audit(store: EventStore, first_token: str | None) -> AuditTrail:
    """The audit trail, its bus made; the first admin token's making is its first entry."""
    audit = AuditTrail(store)
    await audit.start()
    token_id = None if first_token is None else token_id_of(first_token)
    if token_id is not None:
        target = f"/tokens/{token_id}"
        detail = {"tokenId": token_id, "name": FIRST_TOKEN_NAME, "scopes": [ADMIN]}
        await audit.record(SERVER, "token.created", target, **detail)
    return audit


@asynccontextmanager
async def _watch_grants(
    pool: asyncpg.Pool, runtime: DurableRuntime | None, dispatcher: Dispatcher
) -> AsyncIterator[Supervisor]:
    """Secret grants changed through the API by any server (LISTEN, supervised): versions
    that use secrets and sinks' headers take them again; so after a reconnect, since
    notifications may have been lost."""

    def changed(_pattern: str = "") -> None:
        if runtime is not None:
            runtime.grants_changed()
        dispatcher.grants_changed()

    supervisor = Supervisor("secret grants")
    listener = Listener(pool, "secret grants", health=supervisor)
    listener.listen(GRANTS_CHANNEL, changed)
    listener.on_reconnect(changed)
    supervisor.spawn("listen", listener.run)
    try:
        yield supervisor
    finally:
        await supervisor.stop()


async def _open_tokens(pool: asyncpg.Pool, settings: Settings) -> tuple[PostgresTokens, str | None]:
    """The API tokens, and on a fresh installation the first admin token (printed once).

    Raises:
        ConfigurationError: ``--insecure-local`` on a non-loopback address.
    """
    check_insecure_local(settings.host, settings.insecure_local)
    tokens = PostgresTokens(pool)
    if settings.insecure_local:
        return tokens, None
    first = await ensure_first_token(tokens, settings.home)
    if first is not None:
        rule = "=" * 72
        log.warning(
            "\n%s\nThe first admin token of this installation (shown once, saved to %s):\n\n"
            "    %s\n\nThe CLI on this machine uses that file; elsewhere pass --token or "
            "TIDEFLOW_TOKEN.\nNarrower tokens: tideflow tokens create NAME --scope ...\n%s",
            rule,
            token_file(settings.home),
            first,
            rule,
        )
    return tokens, first


def _secret_access(pool: asyncpg.Pool, settings: Settings) -> SecretAccess:
    """The operator's secrets and grants (settings and admin API); the secrets file is
    read once here, so a missing or malformed one stops the start with its reason.

    Raises:
        ConfigurationError: The secrets file cannot be read.
    """
    access = SecretAccess(
        SecretSource(file=settings.secrets_file),
        parse_grants(settings.secret_grants),
        PostgresGrants(pool),
    )
    access.source.values(())
    if settings.secrets_file is not None:
        log.info("secrets: environment and %s", settings.secrets_file)
    return access


def open_system_with(options: SystemOptions) -> ServicesOpener:
    """An opener for :func:`~tideflow.api.app.create_app` with ``serve``'s options.

    :func:`open_system` itself is the opener without options.
    """

    def opener(settings: Settings) -> AbstractAsyncContextManager[Services]:
        return open_system(settings, options)

    return opener


@asynccontextmanager
async def _open_runtime(
    pool: asyncpg.Pool,
    store: EventStore,
    lifecycle: LifecyclePublisher,
    metrics: Metrics,
    options: SystemOptions,
    runtime_options: RuntimeOptions,
    timers: TimerService,
    egress: EgressPolicy,
) -> AsyncIterator[DurableRuntime]:
    """The started durable runtime; on exit it stops first, so in-flight steps settle.

    It registers its wake-up handler with ``timers`` (not started yet) and
    feeds the journal commit latency histogram.
    """

    async def emit(event: dict[str, Any]) -> None:
        await store.append(DEFAULT_BUS, [event])
        metrics.events_out(1, kind="workflow")

    folders = tuple(folder.resolve() for folder in options.workflow_dirs)
    base_dir = folders[0] if folders else Path.cwd()
    calls = _timed_invoker(metrics, options, egress)
    async with calls:
        runtime = DurableRuntime(
            pool,
            replace(
                runtime_options,
                base_dir=base_dir,
                module_dirs=folders[1:],
                functions=options.functions,
            ),
            invoker=calls,
            emit=emit,
            on_lifecycle=lambda event: _on_lifecycle(event, lifecycle, metrics),
            timers=timers,
        )
        runtime.writer.on_commit = metrics.journal_commit
        await runtime.start()
        try:
            yield runtime
        finally:
            await runtime.stop()


def _open_tasks(
    instances: PostgresInstances,
) -> Callable[[str], Awaitable[list[OpenTask]]]:
    """Reads the tasks an instance has open, from its timeline (lifecycle task events)."""

    async def read(instance_id: str) -> list[OpenTask]:
        return open_tasks_of(await instances.timeline(instance_id))

    return read


async def run_workers(settings: Settings, options: SystemOptions, stop: asyncio.Event) -> None:
    """``tideflow worker --engine temporal``: Temporal workers only, until ``stop`` is set.

    It opens the database (the registry, the instance mirror), the event store
    (produced events) and a worker on the task queue; no API, triggers or timers.
    Workflow tasks and activities in flight finish before it returns.
    """
    settings = settings.identified()
    expression_budget.configure(expression_budget.budget_from(settings))
    limits.configure(limits.from_settings(settings))
    policy = PythonPolicy.for_server(settings.python_modules, options.workflow_dirs)
    egress = EgressPolicy.for_server(settings.egress_allow, options.workflow_dirs)
    async with AsyncExitStack() as stack:
        database = await stack.enter_async_context(open_database(settings, max_size=10))
        store = PostgresEventStore(database.pool, segment_size=settings.segment_size)
        await store.start()
        stack.push_async_callback(store.stop)
        metrics = Metrics()
        lifecycle = LifecyclePublisher(store, on_publish=metrics.lifecycle_published)
        await lifecycle.start()
        stack.push_async_callback(lifecycle.stop)
        await stack.enter_async_context(
            _open_temporal(
                database.pool,
                store,
                metrics,
                options,
                settings,
                egress,
                policy,
                _secret_access(database.pool, settings),
                lifecycle,
            )
        )
        log.info("temporal worker on task queue %s", settings.temporal_task_queue)
        await stop.wait()


@asynccontextmanager
async def _open_temporal(
    pool: asyncpg.Pool,
    store: EventStore,
    metrics: Metrics,
    options: SystemOptions,
    settings: Settings,
    egress: EgressPolicy,
    policy: PythonPolicy,
    secrets: SecretAccess,
    lifecycle: LifecyclePublisher,
) -> AsyncIterator[TemporalRuntime]:
    """The Temporal engine with a worker in this process (``--engine temporal``); its calls
    unseal their secrets with ``secrets`` (``docs/temporal.md``, "Secrets").

    Raises:
        ConfigurationError: No ``--temporal-address``.
        StoreError: Temporal cannot be reached.
    """
    activities, calls = _temporal_activities(pool, store, metrics, options, egress, policy, secrets)

    def on_lifecycle(notice: LifecycleNotice) -> None:
        _post_notice(notice, lifecycle, metrics)

    temporal = _temporal_options(settings)
    client = await connect(temporal)
    async with calls:
        registry = PostgresRegistry(pool)
        async with TemporalRuntime(
            pool,
            client,
            temporal,
            registry=registry,
            activities=activities(registry, on_lifecycle),
            on_lifecycle=on_lifecycle,
        ) as engine:
            yield engine


def _temporal_options(settings: Settings) -> TemporalOptions:
    if not settings.temporal_address:
        raise ConfigurationError(
            "--engine temporal needs --temporal-address HOST:PORT (TIDEFLOW_TEMPORAL_ADDRESS)"
        )
    return TemporalOptions(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        task_queue=settings.temporal_task_queue,
    )


def _temporal_activities(
    pool: asyncpg.Pool,
    store: EventStore,
    metrics: Metrics,
    options: SystemOptions,
    egress: EgressPolicy,
    policy: PythonPolicy,
    secrets: SecretAccess,
) -> tuple[
    Callable[[PostgresRegistry, Callable[[LifecycleNotice], None]], InstanceActivities],
    FunctionInvoker,
]:
    """The activities of a Temporal worker (given its registry) and their invoker (to close)."""

    async def publish(_instance_id: str, events: Sequence[dict[str, Any]]) -> None:
        await store.append(DEFAULT_BUS, list(events))
        metrics.events_out(len(events), kind="workflow")

    folders = tuple(folder.resolve() for folder in options.workflow_dirs)
    calls = _timed_invoker(metrics, options, egress, sync_threads=SYNC_THREADS)

    def invoke(invocation: Invocation) -> Awaitable[Any]:
        if calls.has_override(invocation.name):  # bound callables import nothing
            return calls.invoke(invocation)
        return policy.guard(invocation, calls.invoke)

    def make(
        registry: PostgresRegistry, on_lifecycle: Callable[[LifecycleNotice], None]
    ) -> InstanceActivities:
        return InstanceActivities(
            registry,
            calls,
            publish,
            base_dir=folders[0] if folders else Path.cwd(),
            invoke=invoke,
            mirror=PostgresMirror(pool),
            module_dirs=folders[1:],
            on_lifecycle=on_lifecycle,
            secrets=secrets,
        )

    return make, calls


def _on_lifecycle(event: LifecycleEvent, lifecycle: LifecyclePublisher, metrics: Metrics) -> None:
    _post_notice(notice_of(event), lifecycle, metrics)


def _post_notice(notice: LifecycleNotice, lifecycle: LifecyclePublisher, metrics: Metrics) -> None:
    """Count, log a failure, and publish a lifecycle notice (either engine)."""
    metrics.lifecycle(notice.kind)
    if notice.kind == "failed":
        fields = logs.failure_fields(
            notice.instance_id, notice.workflow_id, notice.state, notice.error
        )
        log.warning(logs.failure_line(fields), extra=fields)
    lifecycle.post(notice)


def _timed_invoker(
    metrics: Metrics, options: SystemOptions, egress: EgressPolicy, *, sync_threads: int = 0
) -> FunctionInvoker:
    """A function invoker that records each call's duration as a step latency (plain ``def``
    functions on ``sync_threads`` threads, if any: ``FunctionInvoker``)."""

    class TimedInvoker(FunctionInvoker):
        async def invoke(self, call: Invocation) -> Any:
            started = SYSTEM_CLOCK.monotonic()
            try:
                return await super().invoke(call)
            finally:
                metrics.step(SYSTEM_CLOCK.monotonic() - started)

    return TimedInvoker(
        overrides=options.functions,
        redirects=options.redirects,
        egress=egress,
        brokers=ConnectorBrokers(),  # AsyncAPI calls reach brokers through the connectors
        sync_threads=sync_threads,
    )


def notice_of(event: LifecycleEvent) -> LifecycleNotice:
    """A lifecycle notice from the durable runtime's ``LifecycleEvent``."""
    detail = dict(event.detail)
    return LifecycleNotice(
        kind=event.kind,
        instance_id=event.instance_id,
        workflow_id=event.workflow_id,
        version=event.version,
        at=SYSTEM_CLOCK.now(),
        state=event.state,
        output=detail.get("output"),
        error=detail.get("error"),
        parent_id=detail.get("parentId"),
        reference=detail.get("reference"),
        correlation_keys=detail.get("correlationKeys"),
        run_no=int(detail.get("run") or 1),
        # A state may be entered many times (loops): without a step key each entry is its own.
        key=str(detail.get("key") or (ids.new_id() if event.kind == "state.entered" else "")),
    )
