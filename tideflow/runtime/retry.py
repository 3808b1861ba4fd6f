"""Retry back-off arithmetic (pure).

A retry definition (``retries[]`` of a workflow) becomes a :class:`RetryPolicy`
once; :func:`backoff_seconds` gives the delay before the next attempt.

Rules (Serverless Workflow 0.8, §Retry Definition):

* the delay before retry ``n`` (``n = 1`` after the first failure) is
  ``delay * multiplier**(n-1) + increment * (n-1)``;
* ``jitter`` is either a fraction of that delay (a number in 0..1) or an
  absolute ISO 8601 duration; the delay moves by a value drawn uniformly from
  ``[-jitter, +jitter]``;
* ``maxDelay`` caps the result after increment, multiplier and jitter; it is
  never negative;
* ``maxAttempts`` counts every attempt including the first; ``0`` (the prose's
  "no retries") and ``1`` both mean no retry; ``None`` means unlimited.

Jitter is deterministic: the "random" draw is a hash of a per-run seed (from
``Effects.new_id()``) and the attempt's step key, so a replay computes the same
delays.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from tideflow.isotime import duration_seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """A retry definition with every duration in seconds.

    Attributes:
        name: The retry definition's name.
        delay: Delay before the first retry.
        max_attempts: Attempts including the first; ``None`` = unlimited.
        increment: Seconds added per retry.
        multiplier: Factor applied per retry (``1.0`` = constant).
        jitter_fraction: Jitter as a fraction of the delay, or ``None``.
        jitter_seconds: Jitter as an absolute number of seconds, or ``None``.
        max_delay: Upper bound of any delay, or ``None``.
    """

    name: str
    delay: float = 0.0
    max_attempts: int | None = 1
    increment: float = 0.0
    multiplier: float = 1.0
    jitter_fraction: float | None = None
    jitter_seconds: float | None = None
    max_delay: float | None = None

    def allows(self, attempt: int) -> bool:
        """Whether another attempt may follow ``attempt`` (1-based) failed attempts."""
        return self.max_attempts is None or attempt < self.max_attempts


# The runtime default for ``autoRetries: true`` without a ``retryRef``: the spec
# recommends unlimited attempts, a 1 s delay and multiplier 2. Tideflow caps the
# delay at one minute so an endless retry still polls at a sane pace.
AUTO_RETRY_POLICY = RetryPolicy(
    name="<autoRetries default>", delay=1.0, max_attempts=None, multiplier=2.0, max_delay=60.0
)


def _seconds(value: Any, what: str) -> float:
    if value is None:
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return duration_seconds(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"retry {what}: not an ISO 8601 duration: {value!r}") from None


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"retry {what}: not a number: {value!r}") from None


def policy_from_definition(definition: Any) -> RetryPolicy:
    """Build a :class:`RetryPolicy` from a model ``RetryDef``.

    Raises:
        ValueError: A field has the wrong form (names the field).
    """
    attempts = _number(definition.max_attempts, "maxAttempts")
    jitter = definition.jitter
    fraction: float | None = None
    absolute: float | None = None
    if isinstance(jitter, int | float):
        fraction = float(jitter)
    elif isinstance(jitter, str) and jitter.strip().upper().startswith("P"):
        absolute = _seconds(jitter, "jitter")
    elif jitter is not None:
        fraction = _number(jitter, "jitter")
    multiplier = _number(definition.multiplier, "multiplier")
    return RetryPolicy(
        name=definition.name,
        delay=_seconds(definition.delay, "delay"),
        max_attempts=None if attempts is None else max(1, int(attempts)),
        increment=_seconds(definition.increment, "increment"),
        multiplier=1.0 if multiplier is None else multiplier,
        jitter_fraction=fraction,
        jitter_seconds=absolute,
        max_delay=None
        if definition.max_delay is None
        else _seconds(definition.max_delay, "maxDelay"),
    )


def unit_draw(seed: str, key: str) -> float:
    """A deterministic value in ``[-1, 1]`` from a run seed and a step key."""
    digest = hashlib.blake2b(f"{seed}|{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / float(2**64 - 1) * 2.0 - 1.0


def backoff_seconds(policy: RetryPolicy, retry: int, draw: float = 0.0) -> float:
    """Seconds to wait before retry number ``retry`` (1 = after the first failure).

    Args:
        policy: The retry policy.
        retry: 1-based retry number.
        draw: A value in ``[-1, 1]`` scaling the jitter (see :func:`unit_draw`).
    """
    n = max(1, retry) - 1
    delay = policy.delay * policy.multiplier**n + policy.increment * n
    if policy.jitter_fraction is not None:
        delay += delay * policy.jitter_fraction * draw
    elif policy.jitter_seconds is not None:
        delay += policy.jitter_seconds * draw
    if policy.max_delay is not None:
        delay = min(delay, policy.max_delay)
    return max(0.0, delay)
