"""The connectors service: create, list, show, pause, resume, delete; run every connector.

Each source runs as its own supervised task (``source:<name>``, restarted with
back-off when it fails: one failing connector costs only itself, and its status
shows the error). Each sink is an internal subscription (id ``connector.<name>``,
:meth:`~tideflow.triggers.dispatcher.Dispatcher.attach_delivery`) delivering through
a :class:`~tideflow.connectors.runners.SinkRunner`, which scales its connection
from zero.

Several processes on one database share the connectors: each active one is a
unit ``connector:<name>`` of the cluster (:mod:`tideflow.cluster`), run only by
the process holding its lease (its sink's subscription is attached there).
Every change is announced to the other processes at once; each follows changes
when told and on every heartbeat (without a cluster: every ``sync_interval``),
starting what it owns and does not run, and stopping what was paused, resumed
or deleted elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.cluster.membership import Ownership
from tideflow.connectors.base import (
    PASSIVE_TYPES,
    SourceContext,
    check_available,
    sink_factory,
    source_factory,
)
from tideflow.connectors.gateway import PostgresConnectors
from tideflow.connectors.mapping import DEFAULT_ROW, MessageMapping, Record, RecordMapping
from tideflow.connectors.runners import Activity, SinkRunner, SourceRunner
from tideflow.connectors.spec import (
    OPERATOR_TYPES,
    Connector,
    ConnectorKind,
    ConnectorSpec,
    ConnectorState,
    parse_connector,
)
from tideflow.connectors.webhook import HookCheck
from tideflow.errors import (
    BusNotFound,
    ConflictError,
    ConnectorNotFound,
    InvalidArgument,
    SubscriptionNotFound,
    TideflowError,
)
from tideflow.eventstore.store import Appended, EventStore
from tideflow.expression_budget import off_loop
from tideflow.ids import new_id
from tideflow.secrets import SecretSource, resolve_refs
from tideflow.supervise import Backoff, Supervisor
from tideflow.triggers.dispatcher import Dispatcher

log = logging.getLogger("tideflow.connectors")

UNIT_PREFIX: Final = "connector:"
"""A connector's unit in the cluster is ``connector:<name>``."""
SUBSCRIPTION_PREFIX: Final = "connector."
"""A sink's subscription id is ``connector.<name>``."""
DEFAULT_IDLE: Final = 30.0
"""Seconds a sink keeps an unused connection."""
DEFAULT_INTERVAL: Final = 1.0
"""Seconds between a scheduled source's reads."""


def subscription_id(name: str) -> str:
    """The id of sink ``name``'s subscription."""
    return f"{SUBSCRIPTION_PREFIX}{name}"


@dataclass(slots=True)
class _Running:
    version: int
    activity: Activity
    sink: SinkRunner | None = None


class ConnectorService:
    """Connectors as data, and the process that runs them (see the module docs).

    Args:
        connectors: The gateway.
        store: The event store sources append to.
        dispatcher: Runs the sinks' subscriptions; connectors run where it leads.
        clock: Time.
        secrets_file: Where secret references are also looked up.
        sync_interval: Seconds between checks for changes made by other processes.
        backoff: Between restarts of a failing source.
        metrics: Told of events in and out (optional).
    """

    def __init__(
        self,
        connectors: PostgresConnectors,
        store: EventStore,
        dispatcher: Dispatcher,
        *,
        clock: Clock = SYSTEM_CLOCK,
        secrets_file: Path | None = None,
        sync_interval: float = 1.0,
        backoff: Backoff | None = None,
        metrics: Any = None,
    ) -> None:
        self.connectors = connectors
        self.store = store
        self.dispatcher = dispatcher
        self.clock = clock
        self._secrets_file = secrets_file
        self._sync_interval = sync_interval
        self._metrics = metrics
        self.supervisor = Supervisor("connectors", clock=clock)
        """The sync loop (``/healthz`` reports it)."""
        self.tasks = Supervisor(
            "connector", clock=clock, backoff=backoff or Backoff(first=0.5, longest=30.0)
        )
        """One task per running source and per connected sink's idle watch; not in
        ``/healthz``: a failing connector shows in its own status."""
        self._running: dict[str, _Running] = {}
        self._lock = asyncio.Lock()

    prefix = UNIT_PREFIX

    @property
    def ownership(self) -> Ownership:
        """Which connectors this process runs: the dispatcher's (the cluster, or all)."""
        return self.dispatcher.ownership

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Without a cluster: run the active connectors and follow changes (a cluster
        starts the ones this process owns through :meth:`gained`)."""
        if self.ownership.standalone:
            await self.sync()
            self.supervisor.spawn("sync", self._sync_loop)

    async def stop(self) -> None:
        """Stop every connector here."""
        await self.supervisor.stop()
        async with self._lock:
            for name in list(self._running):
                await self._halt(name)
        await self.tasks.stop()

    async def _sync_loop(self) -> None:
        while True:
            await self.clock.sleep(self._sync_interval)
            try:
                await self.sync()
            except TideflowError as exc:
                log.warning("checking connectors failed, will retry: %s", exc)

    async def sync(self) -> set[str]:
        """Start what is active, owned here and not running; stop what changed or went away.

        Returns:
            The units of the active connectors.
        """
        versions = await self.connectors.versions()
        async with self._lock:
            for name, running in list(self._running.items()):
                found = versions.get(name)
                owned = self.ownership.owns(UNIT_PREFIX + name)
                if not owned or found != (ConnectorState.ACTIVE, running.version):
                    await self._halt(name)
            for name, (state, _) in versions.items():
                if state is not ConnectorState.ACTIVE or name in self._running:
                    continue
                if self.ownership.owns(UNIT_PREFIX + name):
                    connector = await self.connectors.find(name)
                    if connector is not None and connector.state is ConnectorState.ACTIVE:
                        await self._run(connector)
        return {
            UNIT_PREFIX + n for n, (state, _) in versions.items() if state is ConnectorState.ACTIVE
        }

    async def refresh(self) -> set[str]:
        """The cluster's UnitOwner: follow changes; the units of the active connectors."""
        return await self.sync()

    async def gained(self, unit: str, token: int) -> None:
        """Run the connector of ``unit`` (this process now owns it)."""
        name = unit.removeprefix(UNIT_PREFIX)
        async with self._lock:
            connector = await self.connectors.find(name)
            if connector is not None and name not in self._running:
                await self._run(connector)

    async def lost(self, unit: str) -> None:
        """Stop the connector of ``unit`` (another process runs it now)."""
        async with self._lock:
            await self._halt(unit.removeprefix(UNIT_PREFIX))

    # -- the API -----------------------------------------------------------------------

    async def create(self, body: Any) -> Connector:
        """Validate, store and start a connector.

        Raises:
            InvalidArgument: The body is invalid (naming the field).
            MissingExtra: Its type's client library is not installed.
            BusNotFound: The bus does not exist.
            AlreadyExists: The name is taken.
        """
        spec = parse_connector(body)
        if spec.type in OPERATOR_TYPES:
            raise InvalidArgument(
                f"a {spec.type} {spec.kind.value} reads the server's files: only the operator "
                "declares one, in the file of tideflow serve --connectors",
                argument="type",
            )
        check_available(spec.kind, spec.type)
        await self.store.get_bus(spec.bus)
        async with self._lock:
            connector = await self.connectors.create(spec, self.clock.now())
            try:
                if spec.kind is ConnectorKind.SINK and spec.type not in PASSIVE_TYPES:
                    # its position is fixed now, whichever process will deliver (and when)
                    await self.dispatcher.ensure_internal(
                        subscription_id(spec.name), spec.subscription_body()
                    )
                await self._run(connector)
            except BaseException:
                with contextlib.suppress(SubscriptionNotFound):
                    await self.dispatcher.delete(subscription_id(spec.name))
                await self.connectors.delete(spec.name)
                raise
        self.ownership.changed()
        return connector

    async def apply(self, specs: list[ConnectorSpec]) -> None:
        """Create or update connectors declared in a file (``serve --connectors``); an
        unchanged one keeps running, a changed one restarts from its position.

        Raises:
            MissingExtra: A type's client library is not installed.
            BusNotFound: A bus does not exist.
        """
        for spec in specs:
            check_available(spec.kind, spec.type)
            await self.store.get_bus(spec.bus)
        for spec in specs:
            if await self.connectors.apply(spec, self.clock.now()):
                log.info("connector %s declared by the connectors file", spec.name)
            if spec.kind is ConnectorKind.SINK and spec.type not in PASSIVE_TYPES:
                await self.dispatcher.ensure_internal(
                    subscription_id(spec.name), spec.subscription_body()
                )
        await self.sync()
        self.ownership.changed()

    async def get(self, name: str) -> Connector:
        """The stored connector.

        Raises:
            ConnectorNotFound: No such connector.
        """
        return await self.connectors.get(name)

    async def list(self) -> list[Connector]:
        """Every connector, by name."""
        return await self.connectors.list()

    async def delete(self, name: str) -> None:
        """Stop and forget a connector (a sink's subscription and offsets with it).

        Raises:
            ConnectorNotFound: No such connector.
        """
        async with self._lock:
            connector = await self.connectors.get(name)
            await self._halt(name)
            if connector.spec.kind is ConnectorKind.SINK:
                with contextlib.suppress(SubscriptionNotFound):
                    await self.dispatcher.delete(subscription_id(name))
            await self.connectors.delete(name)
        self.ownership.changed()

    async def pause(self, name: str) -> Connector:
        """Stop it (a source stops reading, a sink's subscription stops delivering).

        Raises:
            ConnectorNotFound: No such connector.
        """
        async with self._lock:
            await self._halt(name)
            connector = await self.connectors.set_state(
                name, ConnectorState.PAUSED, self.clock.now()
            )
            if connector.spec.kind is ConnectorKind.SINK:
                with contextlib.suppress(SubscriptionNotFound):
                    await self.dispatcher.pause(subscription_id(name))
        self.ownership.changed()
        return connector

    async def resume(self, name: str) -> Connector:
        """Run it again from its stored position (a sink from its committed offset).

        Raises:
            ConnectorNotFound: No such connector.
        """
        async with self._lock:
            connector = await self.connectors.set_state(
                name, ConnectorState.ACTIVE, self.clock.now()
            )
            if connector.spec.kind is ConnectorKind.SINK:
                with contextlib.suppress(SubscriptionNotFound):
                    await self.dispatcher.resume(subscription_id(name))
            await self._halt(name)
            await self._run(connector)
        self.ownership.changed()
        return connector

    async def status(self, connector: Connector) -> dict[str, Any]:
        """The API form with what it does now: running state, activity, lag, counts."""
        out = connector.to_json()
        running = self._running.get(connector.name)
        out["running"] = self._task_state(connector)
        out["activity"] = running.activity.to_json() if running else Activity().to_json()
        if connector.spec.kind is ConnectorKind.SINK:
            out.update(await self._sink_figures(connector.name))
        else:
            out["lag"] = None
        return out

    async def hook(self, name: str, headers: Mapping[str, str], body: bytes) -> HookCheck:
        """The check of webhook ``name``, after it verified the request's signature.

        Raises:
            ConnectorNotFound: No such connector, or not a webhook.
            ConflictError: It is paused.
            AuthenticationRequired: The signature is missing or wrong.
        """
        connector = await self.connectors.get(name)
        if connector.spec.type not in PASSIVE_TYPES:
            raise ConnectorNotFound(f"connector {name!r} is not a webhook")
        if connector.state is ConnectorState.PAUSED:
            raise ConflictError(f"webhook {name!r} is paused")
        check = HookCheck.from_config(self._resolve(connector.spec.config))
        check.verify(headers, body, self.clock.now().timestamp())
        return check

    async def receive(self, name: str, record: Record) -> Appended | None:
        """Map a webhook's record to its event and append it (``None``: the mapping dropped
        it).

        Raises:
            ConnectorNotFound: No such connector.
            ExpressionError, InvalidArgument: The mapping failed on it.
        """
        spec = (await self.connectors.get(name)).spec
        mapping = RecordMapping(name, spec.type, spec.mapping, new_id)
        event = await off_loop(lambda: mapping.event(record))
        if event is None:
            return None
        appended = (await self.store.append(spec.bus, [event]))[0]
        if not appended.duplicate:
            await self.connectors.add_progress(name, events=1, error=None, now=self.clock.now())
            self._count("in", name, 1)
        return appended

    def _task_state(self, connector: Connector) -> dict[str, Any]:
        if connector.state is ConnectorState.PAUSED:
            return {"state": "stopped"}
        if connector.spec.type in PASSIVE_TYPES:
            return {"state": "listening", "path": f"/hooks/{connector.name}"}
        if connector.name not in self._running:
            return {"state": "elsewhere"}
        if connector.spec.kind is ConnectorKind.SINK:
            return {"state": "running"}
        for health in self.tasks.health():
            if health.name == f"connector.source:{connector.name}":
                return {"state": health.state, "error": health.error, "restarts": health.restarts}
        return {"state": "finished"}

    async def _sink_figures(self, name: str) -> dict[str, Any]:
        try:
            sub, head = await self.dispatcher.get(subscription_id(name))
        except SubscriptionNotFound:
            return {"lag": None}
        figures = sub.to_json(head)
        return {
            "lag": figures["lag"],
            "committedOffset": figures["committedOffset"],
            "events": figures["delivered"],
            "failed": figures["failed"],
            "deadLettered": figures["deadLettered"],
            "subscription": {**figures, "id": sub.id},
        }

    # -- running -----------------------------------------------------------------------

    async def _run(self, connector: Connector) -> None:
        """Start a connector here (under the lock), if this process runs connectors."""
        if connector.state is not ConnectorState.ACTIVE:
            return
        if not self.ownership.owns(UNIT_PREFIX + connector.name):
            return  # another process runs it (or will: the cluster plans it)
        spec = connector.spec
        activity = Activity()
        running = _Running(connector.version, activity)
        if spec.type in PASSIVE_TYPES:
            pass  # its records arrive through POST /hooks/{name}, in any process
        elif spec.kind is ConnectorKind.SOURCE:
            self._start_source(spec, activity)
        else:
            running.sink = self._sink_runner(spec, activity)
            try:
                await self.dispatcher.attach_delivery(
                    subscription_id(spec.name), spec.subscription_body(), running.sink.deliver
                )
            except BusNotFound:
                log.warning("connector %s: its bus %s does not exist", spec.name, spec.bus)
        self._running[spec.name] = running

    def _start_source(self, spec: ConnectorSpec, activity: Activity) -> None:
        config = spec.config
        name = spec.name

        async def progress(**counts: Any) -> None:
            if counts.get("error"):
                activity.last_error = counts["error"]
                self._count("error", name, 1)
            await self.connectors.add_progress(
                name,
                events=counts.get("events", 0),
                errors=counts.get("errors", 0),
                error=counts.get("error"),
                now=self.clock.now(),
            )

        async def save_position(position: Mapping[str, Any], events: int) -> None:
            await self.connectors.save_position(name, position, events, self.clock.now())

        def on_connection(up: bool) -> None:
            if up != activity.connected:
                activity.connected = up
                activity.decide(self.clock, "connect" if up else "disconnect")

        scheduled = config.get("mode") == "scheduled"

        async def run() -> None:
            current = await self.connectors.find(name)  # a restart resumes from the stored position
            if current is None:
                return
            context = SourceContext(
                name=name,
                config=self._resolve(config),
                position=current.position,
                clock=self.clock,
                scheduled=scheduled,
                on_connection=on_connection,
            )
            runner = SourceRunner(
                name=name,
                bus=spec.bus,
                make=source_factory(spec.type),
                context=context,
                mapping=RecordMapping(name, spec.type, spec.mapping, new_id),
                store=self.store,
                save_position=save_position,
                progress=progress,
                interval=float(config.get("interval", DEFAULT_INTERVAL)),
                on_events=lambda n: self._count("in", name, n),
            )
            try:
                await runner.run()
            finally:
                on_connection(False)

        self.tasks.spawn(f"source:{name}", run)

    def _resolve(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` with its secret references replaced by their values (looked up now,
        never stored).

        Raises:
            ConfigurationError: A referenced secret is found nowhere (naming it).
        """
        resolved: dict[str, Any] = resolve_refs(
            dict(config), SecretSource(file=self._secrets_file).value
        )
        return resolved

    def _sink_runner(self, spec: ConnectorSpec, activity: Activity) -> SinkRunner:
        name = spec.name

        async def progress(**counts: Any) -> None:
            if counts.get("error"):
                self._count("error", name, 1)
            await self.connectors.add_progress(
                name,
                events=counts.get("events", 0),
                errors=counts.get("errors", 0),
                error=counts.get("error"),
                now=self.clock.now(),
            )

        runner = SinkRunner(
            name=name,
            make=sink_factory(spec.type),
            resolve=lambda: self._resolve(spec.config),
            mapping=MessageMapping(spec.mapping, DEFAULT_ROW if spec.type == "postgres" else None),
            supervisor=self.tasks,
            clock=self.clock,
            idle=float(spec.config.get("idle", DEFAULT_IDLE)),
            progress=progress,
            on_written=lambda: self._count("out", name, 1),
        )
        runner.activity = activity
        return runner

    async def report(self, metrics: Any) -> None:
        """Set each running connector's gauges (connected, in flight, lag) in ``metrics``."""
        for name, running in list(self._running.items()):
            lag = None
            if running.sink is not None:
                with contextlib.suppress(SubscriptionNotFound, TideflowError):
                    lag = (await self._sink_figures(name))["lag"]
            metrics.connector_state(
                name,
                connected=running.activity.connected,
                in_flight=running.activity.in_flight,
                lag=lag,
            )

    def _count(self, direction: str, name: str, count: int) -> None:
        if self._metrics is None or not count:
            return
        if direction == "error":
            self._metrics.connector_error(name)
        else:
            self._metrics.connector_events(name, direction, count)

    async def _halt(self, name: str) -> None:
        """Stop a connector here (under the lock)."""
        running = self._running.pop(name, None)
        if running is None:
            return
        await self.tasks.cancel(f"source:{name}")
        if running.sink is not None:
            await self.dispatcher.detach(subscription_id(name))
            await running.sink.close()
