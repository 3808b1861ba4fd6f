"""The CloudEvents HTTP protocol binding, version 1.0.2, without any I/O.

Decoding turns an HTTP request (its headers and body bytes) into CloudEvents
in the JSON event format -- plain dicts with the attributes and extensions as
top-level members and the payload in ``data`` or ``data_base64`` -- which is
the form the event store keeps. Encoding does the reverse for clients (the
CLI, tests, benchmarks).

The content mode is chosen by ``Content-Type`` (case-insensitively):

* ``application/cloudevents-batch+json`` -- batched: a JSON array of events;
* ``application/cloudevents+json`` -- structured: one JSON event;
* any other ``application/cloudevents...`` format -- not supported (415);
* anything else -- binary: attributes in ``ce-*`` headers (percent-encoded
  values are decoded), ``Content-Type`` is ``datacontenttype``, the body is
  the data.

Every problem raises :class:`~tideflow.errors.EventRejected` naming the
attribute (and, in a batch, the index of the event). A receiver is lenient
where the spec allows: control characters other than U+0000 are accepted in
values (the conformance events carry newlines in extensions), while U+0000,
which PostgreSQL text cannot hold, is refused.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote, unquote_to_bytes

from tideflow import jsontext
from tideflow.errors import EventRejected
from tideflow.isotime import parse_timestamp

Event = dict[str, Any]
"""A CloudEvent in the JSON event format."""

STRUCTURED: Final = "application/cloudevents+json"
BATCH: Final = "application/cloudevents-batch+json"
SPECVERSION: Final = "1.0"

_NAME = re.compile(r"[a-z0-9]{1,20}")
_REQUIRED: Final = ("specversion", "id", "source", "type")
_CONTEXT: Final = frozenset(
    ("id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time")
)
_WHITESPACE = re.compile(r"\s")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_QUOTED_PAIR = re.compile(rb"\\(.)", re.DOTALL)
_INT32: Final = (-(2**31), 2**31 - 1)
# RFC 3339 with an upper-case T and Z, which datetime.fromisoformat reads as it is.
_RFC3339_COMMON = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")
# Printable ASCII except '"' and '%' go into a header as they are; the rest is percent-encoded.
_HEADER_SAFE: Final = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')
_TEXT_TYPES: Final = ("application/xml", "application/javascript", "application/x-www-form")
# Extension names already checked against _NAME (bounded: names come from clients).
_KNOWN_EXTENSIONS: set[str] = set()
_KNOWN_EXTENSIONS_MAX: Final = 4096


@dataclass(frozen=True, slots=True)
class MediaType:
    """A parsed ``Content-Type`` value.

    Attributes:
        essence: ``type/subtype`` in lower case.
        params: Parameters with lower-case names (``charset`` …).
    """

    essence: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_json(self) -> bool:
        """``*/json`` or ``*/*+json``: data of this type is a JSON value."""
        return self.essence.endswith(("/json", "+json"))

    @property
    def is_text(self) -> bool:
        """Text that a JSON event carries as a string."""
        return (
            self.essence.startswith("text/")
            or self.essence.endswith("+xml")
            or self.essence.startswith(_TEXT_TYPES)
            or "charset" in self.params
        )


def parse_media_type(value: str) -> MediaType:
    """Parse ``type/subtype; name=value; …`` (quotes around values are removed)."""
    essence, *rest = value.split(";")
    params: dict[str, str] = {}
    for part in rest:
        name, sep, val = part.partition("=")
        if sep:
            params[name.strip().lower()] = val.strip().strip('"')
    return MediaType(essence.strip().lower(), params)


def decode_request(headers: Iterable[tuple[bytes, bytes]], body: bytes) -> list[Event]:
    """Decode an HTTP request in any content mode into validated events.

    Args:
        headers: Raw header pairs as ASGI gives them (names in any case).
        body: The whole request body.

    Returns:
        The events in the order they came, in JSON event format.

    Raises:
        EventRejected: The request is not a valid CloudEvent (``status`` 400)
            or uses an unsupported content type (415).
    """
    pairs = [(name.lower(), value) for name, value in headers]
    raw_type = next((v for n, v in pairs if n == b"content-type"), None)
    content_type = raw_type.decode("latin-1").strip() if raw_type else None
    media = parse_media_type(content_type) if content_type else None
    if media is not None and media.essence.startswith("application/cloudevents"):
        _check_event_format(media)
        if media.essence.startswith("application/cloudevents-batch"):
            return decode_batch(body)
        return [decode_structured(body)]
    return [decode_binary(pairs, body, content_type, media)]


def _check_event_format(media: MediaType) -> None:
    if media.essence not in (STRUCTURED, BATCH):
        raise EventRejected(
            f"unsupported content type {media.essence!r}: the event formats accepted are "
            f"{STRUCTURED} and {BATCH}",
            "content-type",
            415,
        )
    charset = media.params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise EventRejected(
            f"unsupported charset {charset!r}: JSON event formats must be UTF-8",
            "content-type",
            415,
        )


def _load_json(body: bytes, what: str) -> Any:
    try:
        return jsontext.loads(body)
    except ValueError as exc:
        raise EventRejected(f"{what} is not valid JSON: {exc}", None) from exc


def decode_structured(body: bytes) -> Event:
    """Decode a structured-mode body (one event in the JSON format)."""
    document = _load_json(body, "the structured-mode body")
    if not isinstance(document, dict):
        raise EventRejected("the structured-mode body must be a JSON object (one event)", None)
    return validate_event(document)


def decode_batch(body: bytes) -> list[Event]:
    """Decode a batched-mode body (a JSON array of events, possibly empty)."""
    document = _load_json(body, "the batched-mode body")
    if not isinstance(document, list):
        raise EventRejected("the batched-mode body must be a JSON array of events", None)
    events: list[Event] = []
    for index, item in enumerate(document):
        if not isinstance(item, dict):
            raise EventRejected(f"event [{index}] is not a JSON object", None, index=index)
        try:
            events.append(validate_event(item))
        except EventRejected as exc:
            raise EventRejected(
                f"event [{index}]: {exc.reason}", exc.attribute, exc.status, index=index
            ) from None
    return events


def decode_binary(
    headers: Iterable[tuple[bytes, bytes]],
    body: bytes,
    content_type: str | None,
    media: MediaType | None,
) -> Event:
    """Decode a binary-mode request: ``ce-*`` headers and the body as data.

    Args:
        headers: Raw header pairs with lower-case names.
        body: The data, as received.
        content_type: The raw ``Content-Type`` (becomes ``datacontenttype``).
        media: ``content_type`` parsed.
    """
    event: Event = {}
    for name, raw in headers:
        if not name.startswith(b"ce-"):
            continue
        attribute = name[3:].decode("latin-1")
        _check_binary_attribute(attribute, event)
        event[attribute] = decode_header_value(raw, attribute)
    if not event:
        shown = content_type or "none"
        raise EventRejected(
            f"not a CloudEvent: no ce-* headers, and content type {shown!r} is neither "
            f"{STRUCTURED} nor {BATCH}",
            "content-type",
            415,
        )
    if content_type:
        event["datacontenttype"] = content_type
    if body:
        _put_binary_data(event, body, media)
    return validate_event(event)


def _check_binary_attribute(attribute: str, seen: Event) -> None:
    if attribute in ("datacontenttype", "data"):
        raise EventRejected(
            f"header ce-{attribute} is not allowed in binary mode "
            "(Content-Type carries datacontenttype, the body carries data)",
            attribute,
        )
    if not _NAME.fullmatch(attribute):
        raise EventRejected(
            f"invalid attribute name {attribute!r} in header ce-{attribute}: "
            "names are 1 to 20 lower-case letters or digits",
            attribute,
        )
    if attribute in seen:
        raise EventRejected(f"header ce-{attribute} appears more than once", attribute)


def decode_header_value(raw: bytes, attribute: str) -> str:
    """Decode a ``ce-*`` header value: unquote, percent-decode once, check UTF-8.

    Raises:
        EventRejected: The decoded bytes are not valid UTF-8 (e.g. overlong ``%C0%A0``).
    """
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == 0x22 and raw[-1] == 0x22:
        raw = _QUOTED_PAIR.sub(rb"\1", raw[1:-1])
    if b"%" in raw:
        raw = unquote_to_bytes(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventRejected(
            f"header ce-{attribute} is not valid UTF-8 after percent-decoding", attribute
        ) from exc


def _put_binary_data(event: Event, body: bytes, media: MediaType | None) -> None:
    if media is not None and media.is_json:
        try:
            event["data"] = jsontext.loads(body)
        except ValueError as exc:
            raise EventRejected(
                f"the body is not valid JSON although the content type is {media.essence}: {exc}",
                "data",
            ) from exc
        return
    if media is not None and media.is_text:
        charset = media.params.get("charset", "utf-8")
        try:
            event["data"] = body.decode(codecs.lookup(charset).name)
            return
        except (LookupError, UnicodeDecodeError):
            pass  # not text after all: keep the exact bytes
    event["data_base64"] = base64.b64encode(body).decode("ascii")


def validate_event(event: Mapping[str, Any]) -> Event:
    """Check a JSON-format event against CloudEvents 1.0 and return it without null attributes.

    Raises:
        EventRejected: Naming the first attribute that is missing or invalid.
    """
    out: Event = {}
    for name, value in event.items():
        # The common case first, inline: a non-empty string without U+0000 in a
        # context attribute or a well-named extension (batches run this per event).
        if (
            value.__class__ is str
            and value
            and "\x00" not in value
            and (name in _CONTEXT or (name in _KNOWN_EXTENSIONS and name != "data"))
        ):
            out[name] = value
            continue
        if name == "data":
            out[name] = value  # JSON null is an explicit null payload
        elif value is None:
            continue  # null means unset
        elif name == "data_base64":
            _check_base64(value)
            out[name] = value
        elif name in _CONTEXT:
            out[name] = _check_string(name, value)
        else:
            out[name] = _check_extension(name, value)
    for name in _REQUIRED:
        if name not in out:
            raise EventRejected(f"missing required attribute {name!r}", name)
    if out["specversion"] != SPECVERSION:
        raise EventRejected(
            f"unsupported specversion {out['specversion']!r}: only {SPECVERSION} is accepted",
            "specversion",
        )
    _check_semantics(out)
    return out


def _check_string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise EventRejected(f"attribute {name!r} must be a string", name)
    if not value:
        raise EventRejected(f"attribute {name!r} must not be empty", name)
    if "\x00" in value:
        raise EventRejected(f"attribute {name!r} contains U+0000", name)
    return value


def _check_extension(name: str, value: Any) -> str | bool | int:
    if name not in _KNOWN_EXTENSIONS:
        if not _NAME.fullmatch(name):
            raise EventRejected(
                f"invalid attribute name {name!r}: names are 1 to 20 lower-case letters or digits",
                name,
            )
        if len(_KNOWN_EXTENSIONS) < _KNOWN_EXTENSIONS_MAX:
            _KNOWN_EXTENSIONS.add(name)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not _INT32[0] <= value <= _INT32[1]:
            raise EventRejected(f"extension {name!r} is outside the 32-bit integer range", name)
        return value
    if isinstance(value, str):
        if "\x00" in value:
            raise EventRejected(f"extension {name!r} contains U+0000", name)
        return value
    raise EventRejected(
        f"extension {name!r} has a {type(value).__name__} value: CloudEvents extensions "
        "are strings, booleans or 32-bit integers",
        name,
    )


def _check_base64(value: Any) -> None:
    if not isinstance(value, str):
        raise EventRejected("data_base64 must be a base64 string", "data_base64")
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EventRejected(f"data_base64 is not valid base64: {exc}", "data_base64") from exc


def _check_time(value: str) -> None:
    try:
        if _RFC3339_COMMON.fullmatch(value):  # the usual form: skip isotime's normalizing
            datetime.fromisoformat(value)
        else:
            parse_timestamp(value)
    except ValueError as exc:
        raise EventRejected(f"time {value!r} is not an RFC 3339 timestamp", "time") from exc


def _check_semantics(event: Event) -> None:
    if "data" in event and "data_base64" in event:
        raise EventRejected("an event has either data or data_base64, not both", "data_base64")
    if "time" in event:
        _check_time(event["time"])
    if _WHITESPACE.search(event["source"]):
        raise EventRejected("source must be a URI-reference (no whitespace)", "source")
    schema = event.get("dataschema")
    if schema is not None and (not _SCHEME.match(schema) or _WHITESPACE.search(schema)):
        raise EventRejected(f"dataschema {schema!r} is not an absolute URI", "dataschema")


# --- encoding (clients) ----------------------------------------------------


def encode_header_value(value: str | bool | int) -> str:
    """The canonical string form of an attribute, percent-encoded for a header."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return quote(str(value), safe=_HEADER_SAFE)


def encode_binary(event: Mapping[str, Any]) -> tuple[dict[str, str], bytes]:
    """Encode one event in binary mode.

    Returns:
        The headers (``ce-*`` and ``Content-Type``) and the body.
    """
    headers: dict[str, str] = {}
    body = b""
    content_type = event.get("datacontenttype")
    for name, value in event.items():
        if name not in ("data", "data_base64", "datacontenttype") and value is not None:
            headers[f"ce-{name}"] = encode_header_value(value)
    if "data_base64" in event:
        body = base64.b64decode(event["data_base64"])
    elif "data" in event:
        data = event["data"]
        media = parse_media_type(content_type) if content_type else None
        if media is None or media.is_json:
            content_type = content_type or "application/json"
            body = jsontext.dumps_bytes(data)
        else:
            body = data.encode("utf-8") if isinstance(data, str) else jsontext.dumps_bytes(data)
    if content_type:
        headers["content-type"] = content_type
    return headers, body


def encode_structured(event: Mapping[str, Any]) -> tuple[dict[str, str], bytes]:
    """Encode one event in structured mode (JSON event format)."""
    return {"content-type": STRUCTURED}, jsontext.dumps_bytes(dict(event))


def encode_batch(events: Iterable[Mapping[str, Any]]) -> tuple[dict[str, str], bytes]:
    """Encode events in batched mode (JSON batch format)."""
    return {"content-type": BATCH}, jsontext.dumps_bytes([dict(e) for e in events])
