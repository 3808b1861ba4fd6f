"""Mapping records to CloudEvents and events to rows or messages (pure: no I/O).

A source's record is seen by its ``mapping`` as::

    {"id": <the system's own id or null>, "data": <the payload>,
     "channel": <topic, subject, queue, stream or table>, "headers": {...}}

The event starts from the defaults below; the mapping's first output (an object)
is merged over them, so ``{type: "com.example.reading", subject: .data.sensor}``
changes two attributes and keeps the rest. No output drops the record.

======================  =========================================================
attribute               default
======================  =========================================================
``id``                  the record's own id (so a redelivered record dedups), else
                        a new random id (at-least-once: a redelivery is a new event)
``source``              ``/connectors/<name>``
``type``                ``tideflow.connector.<type>``
``subject``             the channel
``datacontenttype``     ``application/json`` (``application/octet-stream`` with
                        ``data_base64`` for a payload that is not UTF-8 text)
``data``                the payload: JSON if it parses, else the text
======================  =========================================================

A sink's ``mapping`` sees the event (after its subscription's ``transform``) in
structured JSON form; its first output is the message (brokers: JSON text) or the
row (PostgreSQL: an object of column -> value). Default: the whole event for
brokers, :data:`DEFAULT_ROW` for tables. No output skips the event.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from tideflow.errors import InvalidArgument
from tideflow.workflow.expressions import Expression, compile_expression

DEFAULT_ROW: Final = "{id: .id, source: .source, type: .type, time: .time, data: .data}"
"""A table sink's mapping when none is given: these five columns."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """One record read from an external system."""

    id: str | None
    """The system's own id of the record (dedup key), if it has one."""
    data: Any = None
    """The payload as JSON (``None`` with ``data_base64``)."""
    data_base64: str | None = None
    """The payload, base64-encoded, when it is not UTF-8 text."""
    channel: str = ""
    """Where it came from: topic, subject, queue, stream or table."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Headers or properties the system carried with it."""

    def to_json(self) -> dict[str, Any]:
        """What a mapping sees as ``.``."""
        data = self.data if self.data_base64 is None else self.data_base64
        return {"id": self.id, "data": data, "channel": self.channel, "headers": dict(self.headers)}


def decode_body(body: bytes) -> tuple[Any, str | None]:
    """A payload as ``(data, None)`` (JSON, else text) or ``(None, base64)`` (binary)."""
    try:
        return orjson.loads(body), None
    except orjson.JSONDecodeError:
        pass
    try:
        return body.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, base64.b64encode(body).decode("ascii")


class RecordMapping:
    """A source's record -> CloudEvent mapping, compiled once.

    Args:
        connector: The connector's name (the default ``source``).
        connector_type: Its type (the default ``type``).
        text: The jq mapping, or ``None`` for the defaults alone.
        new_id: Makes an id for a record that has none.
    """

    def __init__(
        self, connector: str, connector_type: str, text: str | None, new_id: Callable[[], str]
    ) -> None:
        self.source = f"/connectors/{connector}"
        self.type = f"tideflow.connector.{connector_type}"
        self._expression: Expression | None = None if text is None else compile_expression(text)
        self._new_id = new_id

    def event(self, record: Record) -> dict[str, Any] | None:
        """The CloudEvent of ``record``, or ``None`` when the mapping drops it.

        Raises:
            ExpressionError: The mapping failed on this record.
            InvalidArgument: Its output is not an object (``argument="mapping"``).
        """
        event: dict[str, Any] = {
            "specversion": "1.0",
            "id": record.id,
            "source": self.source,
            "type": self.type,
        }
        if record.channel:
            event["subject"] = record.channel
        if record.data_base64 is not None:
            event["datacontenttype"] = "application/octet-stream"
            event["data_base64"] = record.data_base64
        else:
            event["datacontenttype"] = "application/json"
            event["data"] = record.data
        if self._expression is not None:
            outputs = self._expression.evaluate_all(record.to_json())
            if not outputs:
                return None
            mapped = outputs[0]
            if not isinstance(mapped, dict):
                raise InvalidArgument(
                    f"the mapping must give an object of event attributes, "
                    f"got {type(mapped).__name__}",
                    argument="mapping",
                )
            event.update(mapped)
        if event.get("id") is None:
            event["id"] = self._new_id()
        return event


class MessageMapping:
    """A sink's event -> message (or row) mapping, compiled once.

    Args:
        text: The jq mapping, or ``None`` for ``default``.
        default: The mapping when none is given (``None``: the whole event).
    """

    def __init__(self, text: str | None, default: str | None = None) -> None:
        chosen = text if text is not None else default
        self._expression: Expression | None = None if chosen is None else compile_expression(chosen)

    def message(self, event: Mapping[str, Any]) -> Any | None:
        """The message of ``event`` (``None``: skip it).

        Raises:
            ExpressionError: The mapping failed on this event.
        """
        if self._expression is None:
            return dict(event)
        outputs = self._expression.evaluate_all(dict(event))
        return outputs[0] if outputs else None


def encode_message(message: Any) -> bytes:
    """A message as the bytes a broker carries: text as is, anything else as JSON."""
    if isinstance(message, str):
        return message.encode("utf-8")
    return orjson.dumps(message)
