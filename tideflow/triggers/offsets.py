"""Committed offsets: where a subscription is in its bus.

The committed offset moves only past a contiguous prefix of finished events:
with deliveries of offsets 5, 6 and 7 in flight and 6 and 7 done, it stays at
4 until 5 is delivered or dead-lettered, then jumps to 7. A restart re-reads
from the committed offset, so at most the in-flight events are delivered
twice (at-least-once). The database side lives in
:class:`tideflow.triggers.gateway.PostgresSubscriptions`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tideflow.triggers.gateway import PostgresSubscriptions, Progress

__all__ = ["OffsetTracker", "PostgresSubscriptions", "Progress"]


@dataclass(slots=True)
class OffsetTracker:
    """The offsets of one subscription while it runs (pure bookkeeping, no I/O).

    Attributes:
        committed: Offset up to which everything is finished (as last computed).
        cursor: The highest offset handed to the subscription.
        pending: Offsets handed over and not finished (delivering or awaiting a retry).
        flushed: The committed offset as last written to the database.
        delivered: Events delivered since the last flush.
        failed: Failed attempts since the last flush.
        dead_lettered: Events dead-lettered since the last flush.
        version: The subscription's version it runs under.
    """

    committed: int
    cursor: int = -1
    pending: set[int] = field(default_factory=set)
    flushed: int = -1
    delivered: int = 0
    failed: int = 0
    dead_lettered: int = 0
    version: int = 1

    def __post_init__(self) -> None:
        if self.cursor < 0:
            self.cursor = self.committed
        if self.flushed < 0:
            self.flushed = self.committed

    def take(self, offset: int) -> None:
        """Record that ``offset`` was handed over (offsets arrive in increasing order)."""
        self.cursor = max(self.cursor, offset)
        self._recompute()

    def start(self, offset: int) -> None:
        """Record that ``offset`` is being delivered (and so is not finished)."""
        self.pending.add(offset)
        self.take(offset)

    def finish(self, offset: int) -> None:
        """Record that ``offset`` was delivered or dead-lettered."""
        self.pending.discard(offset)
        self._recompute()

    def _recompute(self) -> None:
        # Offsets awaiting a retry from before a restart may lie beyond the cursor.
        self.committed = min(self.cursor, min(self.pending) - 1) if self.pending else self.cursor

    def progress(self, subscription_id: str) -> Progress | None:
        """What to write since the last flush, or ``None``; resets the counters."""
        if (
            self.committed == self.flushed
            and not self.delivered
            and not self.failed
            and not self.dead_lettered
        ):
            return None
        out = Progress(
            subscription_id=subscription_id,
            committed_offset=self.committed,
            delivered=self.delivered,
            failed=self.failed,
            dead_lettered=self.dead_lettered,
            version=self.version,
        )
        self.flushed = self.committed
        self.delivered = self.failed = self.dead_lettered = 0
        return out

    def restore(self, progress: Progress) -> None:
        """Undo :meth:`progress` after its write failed: it is written with the next one."""
        self.flushed = -1
        self.delivered += progress.delivered
        self.failed += progress.failed
        self.dead_lettered += progress.dead_lettered
