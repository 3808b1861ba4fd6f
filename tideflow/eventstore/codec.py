"""Encoding events for the log and numbering a batch (pure: no I/O).

* :func:`encode_event` turns a structured CloudEvent into the row parts the
  log stores: source, id, a 64-bit hash of both (the dedup index), JSON text.
* :func:`number_batch` gives the new events of a group-commit batch their
  offsets, and duplicates the offset of the event stored first.
* :func:`stored_events` decodes rows read back.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from tideflow import limits
from tideflow.errors import EventRejected, ValueLimitExceeded
from tideflow.eventstore.store import StoredEvent, event_key

Row = tuple[str, str, int, str]
"""An encoded event: source, id, their 64-bit hash, JSON text."""


@dataclass(frozen=True, slots=True)
class EncodedAppend:
    """One caller's events, encoded."""

    bus: str
    rows: list[Row]
    trace: str | None = None
    """The W3C ``traceparent`` of the span appending them (``None``: tracing is off)."""


def key_hash(source: str, event_id: str) -> int:
    """A signed 64-bit hash of ``(source, id)``, the same in every process.

    Raises:
        EventRejected: The attributes hold characters PostgreSQL text cannot store.
    """
    try:
        data = f"{source}\x00{event_id}".encode()
    except UnicodeEncodeError:
        raise EventRejected("source and id must be valid Unicode text", "id") from None
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


def encode_event(event: Mapping[str, Any], index: int) -> Row:
    """``(source, id, key hash, JSON text)`` of a structured CloudEvent.

    orjson writes almost every event. It refuses integers beyond 64 bits (and
    would read them back as floats), so such events are written by the
    standard library with one leading space -- still the same JSON value, and
    :func:`decode_event` sees at the first character which parser keeps it exact.

    Raises:
        EventRejected: No ``source``/``id``, not representable as JSON, or
            beyond the value limits (``VALUE_DEPTH_LIMIT``, ``VALUE_BYTES_LIMIT``
            in the reason; status 400 or 413), or holding a string with a NUL
            character, which no workflow could store (``VALUE_NUL_CHARACTER``).
    """
    source, event_id = event_key(event, index)
    key = key_hash(source, event_id)
    bounds = limits.current()
    try:
        text = _encode(event, index)
        # Depth at most the number of containers, bounded by the brackets in the text (those
        # in strings too: the bound only errs high); the exact walk only past the limit.
        # A walk over every event cost more than half the append rate.
        if text.count("{") + text.count("[") > bounds.value_depth:
            limits.check_depth(event, f"event [{index}]", bounds)
        size = len(text) if text.isascii() else len(text.encode())
        if size > bounds.value_bytes:
            limits.check_size(size, f"event [{index}]", bounds)
        if "\\u0000" in text:  # a NUL, or an escaped backslash before "u0000": the walk tells
            limits.check_value(event, f"event [{index}]", bounds)
    except ValueLimitExceeded as exc:
        status = 413 if exc.limit == "value_bytes" else 400
        raise EventRejected(exc.message, "data", status, index=index) from None
    return source, event_id, key, text


def _encode(event: Mapping[str, Any], index: int) -> str:
    try:
        return orjson.dumps(event).decode()
    except TypeError:  # beyond 64-bit integers, or nested deeper than orjson goes (255)
        limits.check_depth(event, f"event [{index}]")  # before the recursive fallback below
    try:
        text = " " + json.dumps(event, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")  # lone surrogates cannot be stored
    except (TypeError, ValueError) as exc:
        reason = f"event [{index}] cannot be stored as JSON: {exc}"
        raise EventRejected(reason, index=index) from None
    return text


def decode_event(text: str) -> dict[str, Any]:
    """The structured CloudEvent stored as ``text`` (see :func:`encode_event`)."""
    if text[0] == " ":
        return json.loads(text)  # type: ignore[no-any-return]
    return orjson.loads(text)  # type: ignore[no-any-return]


Placed = tuple[Sequence[int], Sequence[bool] | None]
"""Where one caller's events went: their offsets, and which were duplicates (None: none)."""
NOTHING: Placed = ((), None)


def number_batch(
    items: Sequence[EncodedAppend],
    known: dict[tuple[str, str], int],
    bus_id: int,
    first: int,
    now: datetime,
) -> tuple[list[tuple[Any, ...]], list[Placed]]:
    """Give the new events offsets from ``first`` on; duplicates get the first one's offset.

    ``known`` maps ``(source, id)`` of events already in the bus to their offsets.
    Returns the rows to COPY and, per item, where its events went.
    """
    rows = [row for item in items for row in item.rows]
    if not known and len({row[2] for row in rows}) == len(rows):
        # The common case: every event new (distinct hashes mean distinct keys).
        records: list[tuple[Any, ...]]
        if all(item.trace is None for item in items):
            records = [
                (bus_id, n, s, i, k, now, t, None) for n, (s, i, k, t) in enumerate(rows, first)
            ]
        else:
            traces = [item.trace for item in items for _ in item.rows]
            records = [
                (bus_id, n, s, i, k, now, t, trace)
                for (n, (s, i, k, t)), trace in zip(enumerate(rows, first), traces, strict=True)
            ]
        placed: list[Placed] = []
        for item in items:
            placed.append((range(first, first + len(item.rows)), None))
            first += len(item.rows)
        return records, placed
    records, placed, next_offset = [], [], first
    for item in items:
        offsets, duplicates = [], []
        for source, event_id, key, text in item.rows:
            offset = known.get((source, event_id))
            duplicates.append(offset is not None)
            if offset is None:
                offset = known[(source, event_id)] = next_offset
                records.append((bus_id, offset, source, event_id, key, now, text, item.trace))
                next_offset += 1
            offsets.append(offset)
        placed.append((offsets, duplicates))
    return records, placed


def stored_events(bus: str, rows: Sequence[Any]) -> list[StoredEvent]:
    """Decode rows into events with the cyclic garbage collector paused.

    Rows are ``(offset, event text, stored_at)`` and, read from the live log, the
    event's stored ``traceparent`` (archived segments keep none).

    Decoding thousands of events allocates tens of thousands of dicts and
    lists, all alive until the batch is returned; the collector would scan
    them again and again (a third of the read time) although JSON values
    cannot form cycles. The loop never awaits, so nothing else runs meanwhile.
    """
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        return [
            StoredEvent(
                bus=bus,
                offset=row[0],
                event=decode_event(row[1]),
                stored_at=row[2],
                trace=row[3] if len(row) > 3 else None,
            )
            for row in rows
        ]
    finally:
        if paused:
            gc.enable()
