"""Delivery to HTTP sinks in CloudEvents binary mode, and what a failure means.

One attempt is one HTTP ``POST`` of the event in binary mode: the attributes
in ``ce-*`` headers, the data as the body with ``Content-Type`` set to its
``datacontenttype`` (see :func:`tideflow.http_binding.encode_binary`).

- 2xx: delivered.
- 429, 5xx, a timeout or a connection error: retried (the dispatcher waits
  the subscription's back-off, through the timer service).
- any other status (1xx, 3xx, 4xx): not retried; the event is dead-lettered.

A dead-lettered event is the original event plus the extension attributes
``deadletterreason`` (why), ``deadlettersub`` (whose), ``deadletteroffset``
(where it was in its bus) and ``deadletterid`` (its own ``id``); an event the
store no longer takes as it is (beyond a value limit) is dead-lettered without
its data, the reason saying so. Its ``id``
becomes ``<subscription id>:<original id>``: the event store deduplicates by
``source`` and ``id``, and two subscriptions sharing a dead-letter bus must
each keep their letter (the same subscription dead-lettering an event twice,
after a replay or a crash, stores it once).
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import aiohttp

from tideflow import __version__, tracing
from tideflow.egress import EgressPolicy
from tideflow.egress_connect import EgressResolver
from tideflow.errors import EgressDenied
from tideflow.http_binding import encode_binary

REASON_ATTRIBUTE: Final = "deadletterreason"
SUBSCRIPTION_ATTRIBUTE: Final = "deadlettersub"
OFFSET_ATTRIBUTE: Final = "deadletteroffset"
ID_ATTRIBUTE: Final = "deadletterid"
_MAX_REASON: Final = 500


@dataclass(frozen=True, slots=True)
class Attempt:
    """The result of one delivery attempt.

    Attributes:
        ok: Delivered (2xx).
        retryable: Worth trying again (429, 5xx, timeout, connection error).
        reason: What happened, e.g. ``HTTP 503`` or ``timeout after 10s``.
        status: The HTTP status, when there was a response.
    """

    ok: bool
    retryable: bool
    reason: str
    status: int | None = None


DELIVERED: Final = Attempt(ok=True, retryable=False, reason="delivered", status=200)


def classify(status: int) -> Attempt:
    """What an HTTP status means for delivery."""
    if 200 <= status < 300:
        return Attempt(ok=True, retryable=False, reason=f"HTTP {status}", status=status)
    retryable = status == 429 or status >= 500
    return Attempt(ok=False, retryable=retryable, reason=f"HTTP {status}", status=status)


def dead_letter(
    event: Mapping[str, Any], reason: str, *, subscription_id: str, offset: int
) -> dict[str, Any]:
    """The event as it goes to the dead-letter bus, with the reason attributes."""
    out = dict(event)
    out["id"] = f"{subscription_id}:{event.get('id')}"
    out[ID_ATTRIBUTE] = event.get("id")
    out[REASON_ATTRIBUTE] = reason[:_MAX_REASON]
    out[SUBSCRIPTION_ATTRIBUTE] = subscription_id
    out[OFFSET_ATTRIBUTE] = offset
    return out


def without_data(letter: Mapping[str, Any], why: str) -> dict[str, Any]:
    """A dead letter whose data the store refuses (``why``), kept without it.

    An event stored before a value limit it is beyond (or under a higher one)
    cannot be appended again as it is; its attributes and the reason still can.
    """
    out = {k: v for k, v in letter.items() if k not in ("data", "data_base64")}
    reason = f"{letter.get(REASON_ATTRIBUTE, '')}; data dropped: {why}"
    out[REASON_ATTRIBUTE] = reason[:_MAX_REASON]
    return out


SINK_TIMEOUT_LIMIT = 60.0
"""Longest time allowed for one delivery attempt unless configured otherwise (seconds)."""

SINK_CONNECTIONS = 64
"""Connections one subscription may hold at once unless configured otherwise."""


class HttpSender:
    """POSTs events in binary mode over keep-alive connection pools (aiohttp), one per subscription.

    Each subscription has its own small pool, so a sink that never answers
    holds only its own subscription's connections, never those another
    subscription's deliveries need.

    aiohttp rather than httpx: with dozens of requests in flight httpx's pool
    spends more time than the requests (``bench/trigger.py`` measured it 4-10x
    slower at 64 in flight).

    Args:
        connections: Size of each subscription's pool.
        timeout_limit: Longest attempt, whatever a subscription asks for (seconds):
            subscriptions stored before the limit existed are held to it too.
        egress: Where sinks may be (:mod:`tideflow.egress`; anywhere by
            default): a sink the policy refuses fails its attempt, not
            retried, and the event is dead-lettered with the policy's reason.
    """

    def __init__(
        self,
        *,
        connections: int = SINK_CONNECTIONS,
        timeout_limit: float = SINK_TIMEOUT_LIMIT,
        egress: EgressPolicy | None = None,
    ) -> None:
        self.connections = connections
        self.timeout_limit = timeout_limit
        self.egress = egress or EgressPolicy.everything()
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _open(self, pool: str) -> aiohttp.ClientSession:
        session = self._sessions.get(pool)
        if session is None or session.closed:
            resolver = None if self.egress.allow_all else EgressResolver(self.egress)
            connector = aiohttp.TCPConnector(limit=self.connections, resolver=resolver)
            session = self._sessions[pool] = aiohttp.ClientSession(
                connector=connector, headers={"user-agent": f"tideflow/{__version__}"}
            )
        return session

    async def release(self, pool: str) -> None:
        """Close one subscription's pool (it opens again on its next delivery)."""
        session = self._sessions.pop(pool, None)
        if session is not None:
            await session.close()

    async def aclose(self) -> None:
        """Close every pool."""
        for pool in list(self._sessions):
            await self.release(pool)

    async def send(
        self,
        sink: str,
        event: Mapping[str, Any],
        timeout: float,  # noqa: ASYNC109
        *,
        pool: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> Attempt:
        """One attempt: POST ``event`` to ``sink`` over ``pool``'s connections, with the
        subscription's ``headers`` (their secrets resolved) besides the event's.

        Never raises for HTTP or network failures. ``timeout`` is held to the limit.
        """
        timeout = min(timeout, self.timeout_limit)
        try:
            binary, body = encode_binary(event)
        except (TypeError, ValueError, binascii.Error) as exc:  # retrying cannot help
            return Attempt(ok=False, retryable=False, reason=f"cannot encode the event: {exc}")
        if (refused := self.egress.literal_refusal(sink)) is not None:
            return Attempt(ok=False, retryable=False, reason=refused)
        sent = {**headers, **binary} if headers else binary
        tracing.inject(sent)  # the delivery span's traceparent (a no-op while tracing is off)
        session = self._open(pool)
        limit = self._timeouts.get(timeout)
        if limit is None:
            limit = self._timeouts[timeout] = aiohttp.ClientTimeout(total=timeout)
        try:
            async with session.post(
                sink, data=body, headers=sent, timeout=limit, allow_redirects=False
            ) as response:
                await response.read()
                return classify(response.status)
        except EgressDenied as exc:
            return Attempt(ok=False, retryable=False, reason=exc.message)
        except TimeoutError:
            return Attempt(ok=False, retryable=True, reason=f"timeout after {timeout:g}s")
        except (aiohttp.ClientError, OSError) as exc:
            text = str(exc) or type(exc).__name__
            return Attempt(ok=False, retryable=True, reason=f"connection error: {text}")
