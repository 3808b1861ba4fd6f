"""One connector while it runs: a source's loop, a sink's connection that scales from zero.

:class:`SourceRunner` is the body of a source's supervised task: it resolves the
config's secrets, builds the source and runs it; a failure is recorded (status,
counters) and raised, so the supervisor restarts this connector alone after its
back-off. In ``scheduled`` mode it reads what is there every ``interval`` and holds
no connection in between.

:class:`SinkRunner` is what the sink's subscription delivers through. It holds no
connection and no task until an event arrives (the subscription's lanes are
short-lived tasks that exist only while events are queued); the first delivery
connects, later ones reuse the connection (up to the subscription's ``maxInFlight``
at once, the lanes growing with the lag), and after ``idle`` seconds without a
delivery its idle watch closes the connection and ends. Each of these steps is a
*scaling decision* shown in the connector's status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from tideflow.clock import Clock
from tideflow.connectors.base import Sink, SinkFactory, SourceContext, SourceFactory
from tideflow.connectors.mapping import MessageMapping, Record, RecordMapping
from tideflow.errors import (
    BusNotFound,
    ExpressionError,
    ExpressionLimitExceeded,
    InvalidArgument,
    SinkRejected,
    TideflowError,
)
from tideflow.eventstore.store import Appender
from tideflow.expression_budget import off_loop
from tideflow.isotime import format_timestamp
from tideflow.supervise import Supervisor
from tideflow.triggers.delivery import Attempt

log = logging.getLogger("tideflow.connectors")

DECISIONS_KEPT: Final = 20
"""The latest scaling decisions a status shows."""


@dataclass(slots=True)
class Activity:
    """What a running connector did lately (in memory; the counters also reach the
    database)."""

    connected: bool = False
    in_flight: int = 0
    peak: int = 0
    decisions: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=DECISIONS_KEPT))
    last_error: str | None = None

    def decide(self, clock: Clock, decision: str, **detail: Any) -> None:
        """Record a scaling decision."""
        self.decisions.append({"at": format_timestamp(clock.now()), "decision": decision, **detail})

    def to_json(self) -> dict[str, Any]:
        """The status's ``activity``."""
        return {
            "connected": self.connected,
            "inFlight": self.in_flight,
            "decisions": list(self.decisions),
        }


Progress = Callable[..., Awaitable[None]]
"""``progress(events=, errors=, error=)``: add to the connector's stored counters."""
SavePosition = Callable[[Mapping[str, Any], int], Awaitable[None]]
"""``save(position, events)``: store a source's position after its events committed."""


class SourceRunner:
    """Runs one source (see the module docs).

    Args:
        name: The connector.
        bus: Where its events go (``<bus>.deadletter`` for records the mapping rejects).
        make: Builds the source.
        context: What the source is given (``config`` already resolved).
        mapping: Record -> event.
        store: Appends the events.
        save_position: Stores the position after a commit.
        progress: Adds to the stored counters.
        interval: Seconds between reads in scheduled mode.
        on_events: Told how many events each commit appended (metrics).
    """

    def __init__(
        self,
        *,
        name: str,
        bus: str,
        make: SourceFactory,
        context: SourceContext,
        mapping: RecordMapping,
        store: Appender,
        save_position: SavePosition,
        progress: Progress,
        interval: float,
        on_events: Callable[[int], None] = lambda _n: None,
    ) -> None:
        self.name = name
        self.bus = bus
        self._make = make
        self._context = context
        self._mapping = mapping
        self._store = store
        self._save_position = save_position
        self._progress = progress
        self._interval = interval
        self._on_events = on_events
        self.position = context.position

    async def run(self) -> None:
        """The supervised task: run the source; record and re-raise a failure."""
        try:
            while True:
                context = self._context_now()
                await self._make(context).run(self.emit)
                if not context.scheduled:
                    return
                await context.clock.sleep(self._interval)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"[:1000]
            with contextlib.suppress(TideflowError):  # the database is down too: logged anyway
                await self._progress(errors=1, error=message)
            raise

    def _context_now(self) -> SourceContext:
        c = self._context
        return SourceContext(
            name=c.name,
            config=c.config,
            position=self.position,
            clock=c.clock,
            scheduled=c.scheduled,
            on_connection=c.on_connection,
        )

    async def emit(self, records: Sequence[Record], position: Mapping[str, Any] | None) -> None:
        """Append the records' events (all or nothing), then store ``position``."""
        events: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        for record in records:
            try:
                event = await off_loop(lambda r=record: self._mapping.event(r))  # type: ignore[misc]
            except (ExpressionError, InvalidArgument) as exc:
                rejected.append(_rejected(self.name, record, str(exc)))
                continue
            if event is not None:
                events.append(event)
        if events:
            await self._store.append(self.bus, events)
        if rejected:
            await self._dead_letter(rejected)
        if position is not None:
            await self._save_position(position, len(events))
            self.position = position
        elif events:
            await self._progress(events=len(events))
        self._on_events(len(events))

    async def _dead_letter(self, letters: list[dict[str, Any]]) -> None:
        bus = f"{self.bus}.deadletter"
        try:
            await self._store.append(bus, letters)
        except BusNotFound:
            create = getattr(self._store, "create_bus", None)
            if create is not None:
                await create(bus)
            await self._store.append(bus, letters)


def _rejected(name: str, record: Record, reason: str) -> dict[str, Any]:
    """The dead letter of a record the mapping could not turn into an event."""
    return {
        "specversion": "1.0",
        "id": f"{record.id or id(record)}",
        "source": f"/connectors/{name}",
        "type": "tideflow.connector.rejected",
        "datacontenttype": "application/json",
        "data": {"reason": reason[:1000], "record": record.to_json()},
    }


class SinkRunner:
    """Delivers through one sink, scaling its connection from zero (module docs).

    Args:
        name: The connector.
        make: Builds the sink from the resolved config.
        resolve: The config with its secrets resolved (called at each connect).
        mapping: Event -> message.
        supervisor: Runs the idle watch (only while connected).
        clock: For the idle period.
        idle: Seconds without a delivery before the connection closes.
        progress: Adds to the stored counters (failures).
        on_written: Told of each message written (metrics).
    """

    def __init__(
        self,
        *,
        name: str,
        make: SinkFactory,
        resolve: Callable[[], Mapping[str, Any]],
        mapping: MessageMapping,
        supervisor: Supervisor,
        clock: Clock,
        idle: float,
        progress: Progress,
        on_written: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self._make = make
        self._resolve = resolve
        self._mapping = mapping
        self._supervisor = supervisor
        self._clock = clock
        self._idle = idle
        self._progress = progress
        self._on_written = on_written
        self._sink: Sink | None = None
        self._connecting = asyncio.Lock()
        self._last_used = 0.0
        self.activity = Activity()

    @property
    def _watch_name(self) -> str:
        return f"idle:{self.name}"

    async def deliver(self, event: Mapping[str, Any]) -> Attempt:
        """Write one event (the subscription's ``Deliver``)."""
        try:
            message = await off_loop(lambda: self._mapping.message(event))
        except ExpressionLimitExceeded as exc:
            return Attempt(ok=False, retryable=True, reason=f"mapping: {exc.message}")
        except ExpressionError as exc:
            return Attempt(ok=False, retryable=False, reason=f"mapping failed: {exc.message}")
        if message is None:
            return Attempt(ok=True, retryable=False, reason="skipped by the mapping")
        activity = self.activity
        activity.in_flight += 1
        try:
            sink = await self._connected()
            if activity.in_flight > activity.peak:
                grew = activity.in_flight.bit_length() > activity.peak.bit_length()
                activity.peak = activity.in_flight
                if grew:  # past 1, 2, 4, 8, ...: one decision per doubling
                    activity.decide(self._clock, "scale up", inFlight=activity.peak)
            await sink.write(message, event)
        except SinkRejected as exc:
            return await self._failed(f"rejected: {exc}", retryable=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._drop()
            return await self._failed(f"{type(exc).__name__}: {exc}", retryable=True)
        finally:
            activity.in_flight -= 1
            self._last_used = self._clock.monotonic()
        self._on_written()
        return Attempt(ok=True, retryable=False, reason="written")

    async def _failed(self, reason: str, *, retryable: bool) -> Attempt:
        reason = reason[:1000]
        self.activity.last_error = reason
        try:
            await self._progress(errors=1, error=reason)
        except TideflowError as exc:
            log.warning("connector %s: recording a failure failed: %s", self.name, exc)
        return Attempt(ok=False, retryable=retryable, reason=reason)

    async def _connected(self) -> Sink:
        sink = self._sink
        if sink is not None:
            return sink
        async with self._connecting:
            if self._sink is None:
                fresh = self._make(self.name, self._resolve())
                await fresh.open()
                self._sink = fresh
                self.activity.connected = True
                self.activity.decide(self._clock, "connect")
                self._last_used = self._clock.monotonic()
                if not self._supervisor.running(self._watch_name):
                    self._supervisor.spawn(self._watch_name, self._watch_idle)
            return self._sink

    async def _watch_idle(self) -> None:
        """Close the connection after ``idle`` seconds without a delivery, then end."""
        while self._sink is not None:
            quiet = self._clock.monotonic() - self._last_used
            if self.activity.in_flight == 0 and quiet >= self._idle:
                self.activity.decide(self._clock, "scale to zero", idleSeconds=round(quiet, 3))
                await self._drop()
                return
            await self._clock.sleep(max(0.01, self._idle - quiet))

    async def _drop(self) -> None:
        sink, self._sink = self._sink, None
        self.activity.connected = False
        self.activity.peak = 0
        if sink is not None:
            try:
                await sink.close()
            except Exception as exc:  # closing a broken connection: nothing more to do
                log.debug("connector %s: close failed: %s", self.name, exc)

    async def close(self) -> None:
        """Stop: close the connection and the idle watch."""
        await self._supervisor.cancel(self._watch_name)
        await self._drop()
