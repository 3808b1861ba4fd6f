"""Per-token rate limits: a token bucket per caller, held in this process (pure, clock injected).

A :class:`Rate` is written ``N/s``, ``N/m`` or ``N/h``: ``N`` requests per
second, minute or hour. Each caller (a token's id) has a bucket of ``N``
requests (at least one) that refills continuously, ``N`` per unit: a caller
may spend its ``N`` at once, then gets one back every ``unit / N``. A
request takes one; a caller whose bucket is empty is told how long until one
is back (the ``Retry-After`` of a ``429``).

Buckets live in the memory of one ``tideflow serve`` process: with several
processes behind a balancer, a caller gets up to the rate from each.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

from tideflow.clock import Clock
from tideflow.errors import InvalidArgument

_TEXT: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_SECONDS: Final = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_SECONDS_PER_HOUR: Final = 3600
MAX_BUCKETS: Final = 100_000
"""Callers tracked at once; past it, idle (full) buckets are dropped first."""


@dataclass(frozen=True, slots=True)
class Rate:
    """Requests allowed per second, and how many may come at once.

    Attributes:
        text: As written (``"10/s"``, ``"600/m"``).
        per_second: The refill rate.
        burst: The bucket's size.
    """

    text: str
    per_second: float
    burst: float

    @classmethod
    def parse(cls, text: str, argument: str = "rate") -> Rate:
        """A rate from ``N/s``, ``N/m`` or ``N/h`` (``N`` > 0, decimals allowed).

        Raises:
            InvalidArgument: Not such a text (named ``argument`` in the error).
        """
        match = _TEXT.fullmatch(text)
        count = float(match.group(1)) if match else 0.0
        if match is None or count <= 0:
            raise InvalidArgument(
                f"invalid rate {text!r}: write N/s, N/m or N/h with N > 0 (e.g. 20/s)",
                argument=argument,
            )
        unit = match.group(2)
        seconds = _SECONDS.get(unit, _SECONDS_PER_HOUR)
        per_second = count / seconds
        canonical = f"{match.group(1)}/{unit[0]}"
        return cls(canonical, per_second, max(1.0, count))

    def __str__(self) -> str:
        return self.text


class _Bucket:
    __slots__ = ("level", "rate", "updated")

    def __init__(self, level: float, updated: float, rate: Rate) -> None:
        self.level = level
        self.updated = updated
        self.rate = rate

    def idle(self, now: float) -> bool:
        """Whether it would be full again by ``now`` (as good as a new one)."""
        return now - self.updated >= (self.rate.burst - self.level) / self.rate.per_second


class RateLimiter:
    """A token bucket per caller.

    Args:
        clock: Its ``monotonic()`` times the refills (a manual clock in tests).
        default: The rate of callers that have none of their own (``None``: unlimited).
    """

    def __init__(self, clock: Clock, default: Rate | None = None) -> None:
        self.clock = clock
        self.default = default
        self._buckets: dict[str, _Bucket] = {}

    def wait_for(self, caller: str, rate: Rate | None = None) -> float:
        """Take one request from ``caller``'s bucket; ``0.0`` if allowed, else the
        seconds until it would be (nothing taken then).

        ``rate`` is the caller's own; without it the default applies.
        """
        rate = rate or self.default
        if rate is None:
            return 0.0
        now = self.clock.monotonic()
        bucket = self._buckets.get(caller)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._drop_idle(now)
            bucket = self._buckets[caller] = _Bucket(rate.burst, now, rate)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.level = min(rate.burst, bucket.level + elapsed * rate.per_second)
            bucket.updated = now
            bucket.rate = rate
        if bucket.level >= 1.0:
            bucket.level -= 1.0
            return 0.0
        return (1.0 - bucket.level) / rate.per_second

    def __len__(self) -> int:
        """How many callers are tracked now."""
        return len(self._buckets)

    def _drop_idle(self, now: float) -> None:
        """Forget callers whose buckets would be full again (as good as new)."""
        for caller in [k for k, bucket in self._buckets.items() if bucket.idle(now)]:
            del self._buckets[caller]
        if len(self._buckets) >= MAX_BUCKETS:  # all busy: start again rather than grow
            self._buckets.clear()


def retry_after(seconds: float) -> int:
    """``Retry-After`` in whole seconds (at least 1) for a wait of ``seconds``."""
    return max(1, math.ceil(seconds))
