"""A hierarchical timing wheel: a pure data structure with an explicit clock.

The wheel never reads the time. Callers hand it times as plain seconds (any
non-negative scale: ``loop.time()``, ``Clock.monotonic()`` or epoch seconds) and
call :meth:`TimingWheel.advance` with "now"; it returns the timers that are due,
in due order (ties broken by insertion order), and never a timer whose due time
is later than "now".

Layout (Varghese & Lauck's scheme 7, with aligned levels as in the Linux
kernel): time is cut into ticks of ``tick`` seconds; level ``L`` has ``slots``
slots of ``slots**L`` ticks each. A timer due at tick ``t`` sits at the lowest
level whose current block contains ``t``; when the cursor enters a new block
of level ``L``, the matching slot of level ``L`` is *cascaded* into the lower
levels. Levels are added on demand, so there is no maximum horizon.

Why the storage looks unusual: a million pending timers must cost less time and
memory than a ``heapq`` of tuples. So a slot is one flat list holding four
references per timer (id, payload, epoch, due time) -- no object per timer,
not even an int -- and there is no id index. :meth:`TimingWheel.cancel` is
O(1): it starts a new *epoch* (a counter that only cancels move, so adding
stores a shared int) and records it for the id; entries with that id from an
older epoch are dropped lazily when their slot is reached, and a sweep purges
them once cancellations pile up (amortized O(1), memory bounded). Ties fire in
insertion order because every slot keeps its entries in insertion order (a
coarse slot is cascaded before any finer slot of its block can receive a
timer) and the sort by due time is stable.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Any, NamedTuple

from tideflow.errors import ConfigurationError

_STRIDE = 4  # id, payload, epoch, due
_MIN_SWEEP = 1024


class DueTimer(NamedTuple):
    """A timer returned by :meth:`TimingWheel.advance`.

    A named tuple rather than a frozen dataclass: it is built once per firing
    on the hot path, and a tuple is several times cheaper to make.
    """

    id: Hashable
    """The id given to :meth:`TimingWheel.add`."""
    due: float
    """The due time, in the caller's seconds."""
    payload: Any
    """Whatever was given to :meth:`TimingWheel.add`."""


class TimingWheel:
    """Timers keyed by id, due at times in seconds; fired by :meth:`advance`.

    Args:
        start: The time (seconds) the wheel starts at; timers due before it are
            overdue and fire on the next :meth:`advance`.
        tick: Width of one level-0 slot, in seconds (default 10 ms).
        slots: Slots per level; a power of two, at least 2 (default 256).

    Raises:
        ConfigurationError: ``tick`` is not positive or ``slots`` not a power of two.
    """

    def __init__(self, start: float = 0.0, *, tick: float = 0.01, slots: int = 256) -> None:
        if not tick > 0:
            raise ConfigurationError(f"timing wheel: tick must be positive, got {tick!r}")
        if slots < 2 or slots & (slots - 1):
            raise ConfigurationError(
                f"timing wheel: slots must be a power of two >= 2, got {slots!r}"
            )
        self.tick = tick
        self.slots = slots
        self._inv = 1.0 / tick
        self._bits = slots.bit_length() - 1
        self._mask = slots - 1
        self._cursor = self._tick_of(start)
        self._levels: list[list[list[Any] | None]] = []
        self._occupied: list[int] = []  # per level, bit i set when slot i holds entries
        self._place: list[tuple[list[list[Any] | None], int]] = []
        self._grow(64)
        self._epoch = 0
        self._next_size_check = _MIN_SWEEP
        self._cancelled: dict[Hashable, int] = {}

    # -- adding and cancelling ------------------------------------------------

    def add(self, timer_id: Hashable, due: float, payload: Any = None) -> None:
        """Schedule a timer; O(1).

        Ids need not be unique: two ``add`` calls with one id make two timers,
        and :meth:`cancel` cancels both.

        Raises:
            ValueError: ``due`` is not a finite number.
        """
        try:
            t = int(due * self._inv)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(
                f"timer {timer_id!r}: due time must be a finite number of seconds, got {due!r}"
            ) from exc
        cur = self._cursor
        if t < cur:
            t = cur
        try:
            row, shift = self._place[(t ^ cur).bit_length()]
        except IndexError:
            self._grow((t ^ cur).bit_length())
            row, shift = self._place[(t ^ cur).bit_length()]
        idx = (t >> shift) & self._mask
        slot = row[idx]
        if slot is None:
            row[idx] = slot = []
            self._occupied[shift // self._bits] |= 1 << idx
        slot += (timer_id, payload, self._epoch, due)

    def cancel(self, timer_id: Hashable) -> None:
        """Cancel every pending timer with this id; O(1) amortized.

        Cancelling an id that is not pending does nothing (a timer added with
        that id later is not affected).
        """
        self._epoch += 1
        self._cancelled[timer_id] = self._epoch
        if len(self._cancelled) >= self._next_size_check:
            # Counting is O(slots), so do it only now and then.
            if len(self._cancelled) > self.size // 2:
                self._sweep()
            self._next_size_check = len(self._cancelled) + _MIN_SWEEP

    @property
    def size(self) -> int:
        """Timers held, counting cancelled ones not yet purged; O(slots)."""
        held = sum(len(slot) for row in self._levels for slot in row if slot)
        return held // _STRIDE

    @property
    def now_tick(self) -> int:
        """The tick the wheel has advanced to."""
        return self._cursor

    # -- firing ---------------------------------------------------------------

    def advance(self, now: float) -> list[DueTimer]:
        """Move the wheel to ``now`` and return every timer due by then, in due order.

        Ties (equal due times) come in insertion order. A ``now`` earlier than a
        previous one is allowed and simply fires what is due by it.
        """
        target = self._tick_of(now)
        fired: list[DueTimer] = []
        while self._cursor < target:
            if self._occupied[0]:
                self._drain_block(target, fired)
            else:
                self._skip_to(target)
        self._drain_current(now, fired)
        return fired

    def next_deadline(self) -> float | None:
        """When :meth:`advance` should next be called, or ``None`` if nothing is pending.

        Exact (the earliest due time) when that timer is within the current
        level-0 block; otherwise the start of the earliest occupied coarser slot,
        a lower bound -- advancing there cascades it and gives an exact answer.
        """
        idx = self._cursor & self._mask
        occupied = self._occupied[0] >> idx
        while occupied:
            if occupied & 1:
                due = self._earliest(self._levels[0][idx])
                if due is not None:
                    return due
            occupied >>= 1
            idx += 1
        for level in range(1, len(self._levels)):
            if self._occupied[level]:
                return self._slot_start(level, _lowest_bit(self._occupied[level])) * self.tick
        return None

    # -- internals ------------------------------------------------------------

    def _tick_of(self, moment: float) -> int:
        # int() of a product by a positive constant is monotonic in ``moment``:
        # a slot whose tick is before tick_of(now) holds only timers due by now.
        t = int(moment * self._inv)
        return t if t > 0 else 0

    def _grow(self, bit_length: int) -> None:
        """Make sure ``_place`` covers xor distances of ``bit_length`` bits."""
        while len(self._place) <= bit_length:
            bl = len(self._place)
            level = (bl - 1) // self._bits if bl else 0
            while len(self._levels) <= level:
                self._levels.append([None] * self.slots)
                self._occupied.append(0)
            self._place.append((self._levels[level], self._bits * level))

    def _slot_start(self, level: int, idx: int) -> int:
        """First tick of slot ``idx`` of ``level`` in the cursor's current block."""
        shift = self._bits * level
        upper = shift + self._bits
        return ((self._cursor >> upper) << upper) | (idx << shift)

    def _take(self, level: int, idx: int) -> list[Any]:
        """Remove and return the entries of one slot."""
        row = self._levels[level]
        slot = row[idx]
        row[idx] = None
        self._occupied[level] &= ~(1 << idx)
        return slot or []

    def _drain_block(self, target: int, fired: list[DueTimer]) -> None:
        """Fire level-0 slots from the cursor up to ``target`` or the block's end."""
        cur = self._cursor
        block_end = (cur | self._mask) + 1
        stop = min(target, block_end)
        low = cur & self._mask
        high = stop - (cur & ~self._mask)  # exclusive slot index
        pending = (self._occupied[0] >> low) & ((1 << (high - low)) - 1)
        while pending:
            bit = pending & -pending
            pending ^= bit
            self._fire(self._take(0, low + bit.bit_length() - 1), None, fired)
        self._cursor = stop
        if stop == block_end:
            self._cascade(stop)

    def _drain_current(self, now: float, fired: list[DueTimer]) -> None:
        """Fire what is due in the cursor's own slot, keeping the rest."""
        idx = self._cursor & self._mask
        slot = self._levels[0][idx]
        if slot is None:
            return
        keep = self._fire(slot, now, fired)
        if keep:
            self._levels[0][idx] = keep
        else:
            self._take(0, idx)

    def _fire(self, slot: list[Any], now: float | None, fired: list[DueTimer]) -> list[Any]:
        """Append the live entries of ``slot`` due by ``now`` (all if None) to ``fired``.

        Returns:
            The live entries not yet due, flat as in a slot.
        """
        cancelled = self._cancelled
        due_now: list[DueTimer] = []
        keep: list[Any] = []
        for timer_id, payload, epoch, due in _entries(slot):
            if cancelled and cancelled.get(timer_id, -1) > epoch:
                continue
            if now is None or due <= now:
                due_now.append(DueTimer(timer_id, due, payload))
            else:
                keep += (timer_id, payload, epoch, due)
        due_now.sort(key=_due)  # stable: ties stay in insertion order
        fired.extend(due_now)
        return keep

    def _skip_to(self, target: int) -> None:
        """With level 0 empty, jump to the next occupied coarser slot (or ``target``)."""
        for level in range(1, len(self._levels)):
            if self._occupied[level]:
                jump = self._slot_start(level, _lowest_bit(self._occupied[level]))
                if jump > target:
                    break
                self._cursor = jump
                self._cascade(jump)
                return
        self._cursor = target

    def _cascade(self, cur: int) -> None:
        """Entering a new block at ``cur``: spread the slots that start here downwards."""
        top = min(((cur & -cur).bit_length() - 1) // self._bits, len(self._levels) - 1)
        for level in range(top, 0, -1):
            idx = (cur >> (self._bits * level)) & self._mask
            if self._levels[level][idx] is not None:
                self._replace(self._take(level, idx))

    def _replace(self, entries: list[Any]) -> None:
        """Put entries back in the slots their due times call for, dropping cancelled ones."""
        cancelled = self._cancelled
        inv, cur, mask, place = self._inv, self._cursor, self._mask, self._place
        for timer_id, payload, epoch, due in _entries(entries):
            if cancelled and cancelled.get(timer_id, -1) > epoch:
                continue
            t = max(int(due * inv), cur)
            row, shift = place[(t ^ cur).bit_length()]
            idx = (t >> shift) & mask
            slot = row[idx]
            if slot is None:
                row[idx] = slot = []
                self._occupied[shift // self._bits] |= 1 << idx
            slot += (timer_id, payload, epoch, due)

    def _earliest(self, slot: list[Any] | None) -> float | None:
        """The earliest due time among the live entries of ``slot``."""
        if not slot:
            return None
        cancelled = self._cancelled
        best: float | None = None
        for timer_id, _, epoch, due in _entries(slot):
            live = not cancelled or cancelled.get(timer_id, -1) <= epoch
            if live and (best is None or due < best):
                best = due
        return best

    def _sweep(self) -> None:
        """Purge every cancelled entry, then forget the cancellations."""
        for level, row in enumerate(self._levels):
            for idx, slot in enumerate(row):
                if slot is None:
                    continue
                kept = self._live(slot)
                if kept:
                    row[idx] = kept
                else:
                    self._take(level, idx)
        self._cancelled.clear()

    def _live(self, slot: list[Any]) -> list[Any]:
        cancelled = self._cancelled
        kept: list[Any] = []
        for entry in _entries(slot):
            if cancelled.get(entry[0], -1) <= entry[2]:
                kept += entry
        return kept


def _entries(slot: list[Any]) -> Iterator[tuple[Hashable, Any, int, float]]:
    """The (id, payload, epoch, due) entries of a flat slot."""
    return zip(slot[0::_STRIDE], slot[1::_STRIDE], slot[2::_STRIDE], slot[3::_STRIDE], strict=True)


def _due(timer: DueTimer) -> float:
    return timer.due


def _lowest_bit(mask: int) -> int:
    """Index of the lowest set bit of a non-zero ``mask``."""
    return (mask & -mask).bit_length() - 1
