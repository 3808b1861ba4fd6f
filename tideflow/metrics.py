"""The Prometheus metrics of one server process (served at ``GET /metrics``).

One :class:`Metrics` per server process, with its own collector registry
(several apps in one test process do not clash). Figures:

- ``tideflow_instances{status}``: instances by status, counted in the
  database when scraped (so every process on one database agrees), when the
  instances gateway offers ``count_by_status``;
- ``tideflow_instance_lifecycle_total{kind}``: instances this process
  started, completed, failed, cancelled... (from the lifecycle hook);
- ``tideflow_journal_commits``: journal group commits of this process;
- ``tideflow_step_seconds``: how long workflow steps (function calls) took;
- ``tideflow_journal_commit_seconds``: how long journal group commits took;
- ``tideflow_bus_events{bus}``: events appended to each bus so far (its last
  offset), read from the event store when scraped;
- ``tideflow_events_in_total{bus}``: events accepted by HTTP ingestion
  (:class:`CountingAppender`), duplicates included;
- ``tideflow_events_out_total{kind}``: events produced (``workflow`` for
  ``produceEvents``, ``lifecycle`` for lifecycle events).

The runtime feeds the histograms and counters through :meth:`Metrics.step`,
:meth:`Metrics.journal_commit`, :meth:`Metrics.events_in` and
:meth:`Metrics.events_out`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from tideflow.errors import TideflowError
from tideflow.eventstore.store import Appended, Appender, EventStore
from tideflow.runtime.status import InstanceStatus

_LATENCY_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class StatusCounter(Protocol):
    """What counts instances by status (the instances gateway)."""

    async def count_by_status(self) -> dict[InstanceStatus, int]:
        """Instances by status, as stored."""
        ...


class Metrics:
    """The Prometheus metrics of one server process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.instances = Gauge(
            "tideflow_instances",
            "Workflow instances by status.",
            ["status"],
            registry=self.registry,
        )
        self.step_seconds = Histogram(
            "tideflow_step_seconds",
            "Duration of workflow steps (function calls), in seconds.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.journal_commit_seconds = Histogram(
            "tideflow_journal_commit_seconds",
            "Duration of journal group commits, in seconds.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.bus_events = Gauge(
            "tideflow_bus_events",
            "Events appended to each bus so far (its last offset).",
            ["bus"],
            registry=self.registry,
        )
        self.events_in_total = Counter(
            "tideflow_events_in",
            "Events accepted by HTTP ingestion (POST /events, /buses/{bus}/events), by bus.",
            ["bus"],
            registry=self.registry,
        )
        self.lifecycle_total = Counter(
            "tideflow_instance_lifecycle",
            "Lifecycle notices of instances run by this process, by kind "
            "(started, completed, failed, cancelled, ...).",
            ["kind"],
            registry=self.registry,
        )
        self.journal_commits = Gauge(
            "tideflow_journal_commits",
            "Journal group commits made by this process.",
            registry=self.registry,
        )
        self.events_out_total = Counter(
            "tideflow_events_out",
            "Events produced: by workflows (produceEvents) and lifecycle events.",
            ["kind"],
            registry=self.registry,
        )

        self.connector_events_total = Counter(
            "tideflow_connector_events",
            "Events a connector appended (direction in: a source) or wrote out (out: a sink).",
            ["connector", "direction"],
            registry=self.registry,
        )
        self.connector_in_flight = Gauge(
            "tideflow_connector_in_flight",
            "Writes a sink connector has in progress.",
            ["connector"],
            registry=self.registry,
        )
        self.connector_connected = Gauge(
            "tideflow_connector_connected",
            "1 while a connector holds a connection to its system, else 0 (scaled to zero).",
            ["connector"],
            registry=self.registry,
        )
        self.connector_lag = Gauge(
            "tideflow_connector_lag",
            "Events of a sink connector's bus not delivered yet.",
            ["connector"],
            registry=self.registry,
        )
        self.connector_errors_total = Counter(
            "tideflow_connector_errors",
            "Failures of a connector (each retried, restarted or dead-lettered).",
            ["connector"],
            registry=self.registry,
        )

    def connector_events(self, name: str, direction: str, count: int) -> None:
        """Count events a connector moved (``in`` or ``out``)."""
        self.connector_events_total.labels(connector=name, direction=direction).inc(count)

    def connector_error(self, name: str) -> None:
        """Count one failure of a connector."""
        self.connector_errors_total.labels(connector=name).inc()

    def connector_state(
        self, name: str, *, connected: bool, in_flight: int, lag: int | None
    ) -> None:
        """Set a connector's gauges (refreshed when ``/metrics`` is read)."""
        self.connector_connected.labels(connector=name).set(1 if connected else 0)
        self.connector_in_flight.labels(connector=name).set(in_flight)
        if lag is not None:
            self.connector_lag.labels(connector=name).set(lag)

    def step(self, seconds: float) -> None:
        """Record one step's duration."""
        self.step_seconds.observe(seconds)

    def journal_commit(self, seconds: float) -> None:
        """Record one journal commit's duration."""
        self.journal_commit_seconds.observe(seconds)

    def events_in(self, count: int = 1, bus: str = "default") -> None:
        """Count events accepted by ingestion."""
        self.events_in_total.labels(bus=bus).inc(count)

    def events_out(self, count: int = 1, kind: str = "workflow") -> None:
        """Count events produced (``workflow`` or ``lifecycle``)."""
        self.events_out_total.labels(kind=kind).inc(count)

    def lifecycle(self, kind: str) -> None:
        """Count one lifecycle notice (started, state.entered, completed, ...)."""
        self.lifecycle_total.labels(kind=kind).inc()

    def lifecycle_published(self, count: int) -> None:
        """Count lifecycle events appended (the lifecycle publisher's hook)."""
        self.events_out(count, kind="lifecycle")

    def set_instances(self, counts: Mapping[InstanceStatus, int]) -> None:
        """Set the instance gauge (statuses missing from ``counts`` are 0)."""
        for status in InstanceStatus:
            self.instances.labels(status=status).set(counts.get(status, 0))

    async def refresh(
        self,
        events: EventStore,
        instances: StatusCounter | None = None,
        journal_commits: int = 0,
    ) -> None:
        """Read the figures kept in the database (instances by status, bus offsets).

        Args:
            events: The event store (each bus's last offset).
            instances: Counts instances by status in the database, if there is one.
            journal_commits: Journal group commits this process made so far.
        """
        if instances is not None:
            self.set_instances(await instances.count_by_status())
        self.journal_commits.set(journal_commits)
        for bus in await events.list_buses():
            try:
                info = await events.get_bus(bus.name)
            except TideflowError:  # deleted meanwhile
                continue
            self.bus_events.labels(bus=bus.name).set(info.last_offset)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


class CountingAppender:
    """An ingestion appender (:class:`~tideflow.eventstore.store.Appender`) counting events in.

    Args:
        inner: The appender that stores the events.
        metrics: Where the count goes.
    """

    def __init__(self, inner: Appender, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def get_bus(self, name: str) -> object:
        """The bus (raises ``BusNotFound``)."""
        return await self._inner.get_bus(name)

    async def append(self, bus: str, events: Sequence[dict[str, Any]]) -> Sequence[Appended]:
        """Append through the inner appender; count the events once acknowledged."""
        acks = await self._inner.append(bus, events)
        self._metrics.events_in(len(acks), bus=bus)
        return acks
