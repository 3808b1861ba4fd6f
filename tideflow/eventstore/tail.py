"""The newest events this process committed to each bus, kept for the readers that follow it
(pure: no I/O).

A reader that follows a bus (a subscription's reader, woken by the bus's notifications)
reads, after each commit that wakes it, the events that commit wrote -- over many buses,
one read of the database per bus per commit, each planned over the bus's segments. When
this process wrote them, it has them already: :class:`Tails` keeps, per bus, the newest
run of events this process committed, with no gap, and a read it covers is answered from
memory.

What a read answered here returns is what the database returned right after the commit
that wrote the events: their offsets, the event text (decoded again for each read, as a
read of the database does), ``stored_at`` and trace as stored. A run holds only offsets
that are all committed and contiguous: a commit whose first offset does not follow the
run's last (another process appended in between) starts a new run, and a read is
answered only when the run holds ``after + 1``; it returns a prefix of what the database
holds after ``after`` (events other processes committed past the run are read from the
database next time). A bus deleted, or the notifications missed (the listener dropped
and reconnected), forgets the bus's run (:meth:`Tails.forget`, :meth:`Tails.clear`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

TailRow = tuple[int, str, datetime, str | None]
"""An event as a read of the log returns it: offset, JSON text, ``stored_at``, trace."""

EVENTS_PER_BUS = 1_000
"""Events kept per bus (at least a reader's batch: the subscriptions read 500 at a time)."""
BYTES_IN_ALL = 32 * 1024 * 1024
"""Event text kept over all buses; past it, the buses written to least recently go first."""


class _Run:
    __slots__ = ("bus_id", "rows", "size")

    def __init__(self, bus_id: int) -> None:
        self.bus_id = bus_id
        self.rows: list[TailRow] = []
        self.size = 0


class Tails:
    """Per bus, the newest contiguous run of events this process committed.

    Args:
        events_per_bus: Events kept per bus.
        bytes_in_all: Characters of event text kept over all buses.
    """

    def __init__(
        self, *, events_per_bus: int = EVENTS_PER_BUS, bytes_in_all: int = BYTES_IN_ALL
    ) -> None:
        self._per_bus = events_per_bus
        self._budget = bytes_in_all
        self._runs: OrderedDict[str, _Run] = OrderedDict()
        self._size = 0

    def committed(self, bus: str, bus_id: int, records: Sequence[Sequence[Any]]) -> None:
        """Keep the events one commit wrote to ``bus`` (id ``bus_id``), once it committed.

        ``records`` are the rows the commit copied, in offset order: ``(bus id, offset,
        source, id, key hash, stored_at, text, trace)``.
        """
        if not records:
            return
        first = records[0][1]
        run = self._runs.get(bus)
        if run is not None and (run.bus_id != bus_id or run.rows[-1][0] + 1 != first):
            if run.bus_id == bus_id and first <= run.rows[-1][0]:
                return  # an older commit finishing after a newer one: keep the newer run
            self._drop(bus)
            run = None
        if run is None:
            run = self._runs[bus] = _Run(bus_id)
        else:
            self._runs.move_to_end(bus)
        added = [(r[1], r[6], r[5], r[7]) for r in records]
        run.rows.extend(added)
        grown = sum(len(row[1]) for row in added)
        run.size += grown
        self._size += grown
        if len(run.rows) > 2 * self._per_bus:  # trimmed now and then: amortized
            cut = len(run.rows) - self._per_bus
            shed = sum(len(row[1]) for row in run.rows[:cut])
            del run.rows[:cut]
            run.size -= shed
            self._size -= shed
        while self._size > self._budget and self._runs:
            self._drop(next(iter(self._runs)))

    def read(self, bus: str, after: int, limit: int) -> list[TailRow] | None:
        """Up to ``limit`` events after ``after`` when the run holds ``after + 1``; ``None``
        when it does not (read the database)."""
        run = self._runs.get(bus)
        if run is None or limit <= 0:
            return None
        start = after + 1 - run.rows[0][0]
        if start < 0 or start >= len(run.rows):
            return None
        return run.rows[start : start + limit]

    def forget(self, bus: str) -> None:
        """Forget the bus's run (deleted, or its segments dropped)."""
        if bus in self._runs:
            self._drop(bus)

    def clear(self) -> None:
        """Forget every run (notifications may have been missed)."""
        self._runs.clear()
        self._size = 0

    def _drop(self, bus: str) -> None:
        run = self._runs.pop(bus)
        self._size -= run.size
