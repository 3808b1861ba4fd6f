"""The CloudEvents HTTP binding codec: modes, header decoding, data handling, rejections."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tideflow.errors import EventRejected
from tideflow.http_binding import (
    decode_header_value,
    decode_request,
    encode_batch,
    encode_binary,
    encode_header_value,
    encode_structured,
    parse_media_type,
    validate_event,
)

BASE = {"specversion": "1.0", "id": "e-1", "source": "/src", "type": "com.example.t"}


def raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


def binary(extra: dict[str, str] | None = None, body: bytes = b"", **kw: str) -> list[Any]:
    headers = {"ce-specversion": "1.0", "ce-id": "e-1", "ce-source": "/src", "ce-type": "t"}
    headers.update(extra or {})
    headers.update(kw)
    return decode_request(raw(headers), body)


def rejected(fn: Any, *args: Any) -> EventRejected:
    with pytest.raises(EventRejected) as info:
        fn(*args)
    return info.value


# --- binary mode -------------------------------------------------------------


def test_binary_mode_maps_headers_and_content_type() -> None:
    [event] = binary({"Content-Type": "application/json", "CE-Subject": "s"}, b'{"a": 1}')
    assert event == {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/src",
        "type": "t",
        "subject": "s",
        "datacontenttype": "application/json",
        "data": {"a": 1},
    }


def test_binary_mode_percent_decodes_values() -> None:
    [event] = binary({"ce-comment": "Euro%20%E2%82%AC%20%F0%9F%98%80"})
    assert event["comment"] == "Euro € 😀"


def test_header_value_decoding_accepts_lower_hex_quotes_and_needless_escapes() -> None:
    assert decode_header_value(b"%e2%82%ac", "x") == "€"
    assert decode_header_value(b'"a \\"quoted\\" %41"', "x") == 'a "quoted" A'
    assert decode_header_value(b"%41%42c", "x") == "ABc"
    assert decode_header_value(b"100%", "x") == "100%"


def test_header_value_with_invalid_utf8_is_rejected() -> None:
    exc = rejected(decode_header_value, b"%C0%A0", "myext")
    assert exc.attribute == "myext"
    assert "UTF-8" in exc.reason


def test_binary_mode_text_data_is_a_string_and_opaque_bytes_are_base64() -> None:
    [text] = binary({"content-type": "text/plain; charset=utf-8"}, "Hello, 🌎!".encode())
    assert text["data"] == "Hello, 🌎!"
    [xml] = binary({"content-type": "application/xml"}, b"<m/>")
    assert xml["data"] == "<m/>"
    blob = bytes(range(256))
    [octets] = binary({"content-type": "application/octet-stream"}, blob)
    assert base64.b64decode(octets["data_base64"]) == blob
    assert "data" not in octets
    [bad_text] = binary({"content-type": "text/plain"}, b"\xff\xfe")
    assert base64.b64decode(bad_text["data_base64"]) == b"\xff\xfe"


def test_binary_mode_without_body_has_no_data() -> None:
    [event] = binary()
    assert "data" not in event
    assert "data_base64" not in event
    assert "datacontenttype" not in event


@pytest.mark.parametrize(
    ("headers", "attribute"),
    [
        ({"ce-datacontenttype": "application/json"}, "datacontenttype"),
        ({"ce-data": "x"}, "data"),
        ({"ce-my_ext": "x"}, "my_ext"),
        ({"ce-" + "a" * 21: "x"}, "a" * 21),
        ({"ce-": "x"}, ""),
        ({"ce-time": "yesterday"}, "time"),
        ({"ce-specversion": "0.3"}, "specversion"),
    ],
)
def test_binary_mode_rejections_name_the_attribute(headers: dict[str, str], attribute: str) -> None:
    exc = rejected(binary, headers)
    assert exc.attribute == attribute
    assert exc.status == 400


def test_duplicate_ce_header_is_rejected() -> None:
    pairs = [*raw({"ce-specversion": "1.0", "ce-id": "a", "ce-source": "/s", "ce-type": "t"})]
    pairs.append((b"ce-id", b"b"))
    exc = rejected(decode_request, pairs, b"")
    assert exc.attribute == "id"
    assert "more than once" in exc.reason


def test_binary_mode_with_invalid_json_body_is_rejected() -> None:
    exc = rejected(binary, {"content-type": "application/json"}, b"{nope")
    assert exc.attribute == "data"


def test_missing_binary_attribute_is_named() -> None:
    headers = {"ce-specversion": "1.0", "ce-source": "/s", "ce-type": "t"}
    exc = rejected(decode_request, raw(headers), b"")
    assert exc.attribute == "id"
    assert "missing" in exc.reason


def test_request_without_ce_headers_or_event_format_is_unsupported() -> None:
    exc = rejected(decode_request, raw({"content-type": "application/json"}), b"{}")
    assert exc.status == 415
    assert "application/cloudevents+json" in exc.reason


# --- structured and batched modes -------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["application/cloudevents+json", "Application/CloudEvents+JSON; charset=UTF-8"],
)
def test_structured_mode(content_type: str) -> None:
    body = orjson.dumps({**BASE, "data": {"x": [1, 2]}, "comexample": "v", "ttl": 5})
    [event] = decode_request(raw({"content-type": content_type}), body)
    assert event == {**BASE, "data": {"x": [1, 2]}, "comexample": "v", "ttl": 5}


def test_structured_mode_body_wins_over_ce_headers() -> None:
    headers = {"content-type": "application/cloudevents+json", "ce-id": "from-header"}
    [event] = decode_request(raw(headers), orjson.dumps(BASE))
    assert event["id"] == "e-1"


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/cloudevents+avro", 415),
        ("application/cloudevents-batch+avro", 415),
        ("application/cloudevents+json; charset=iso-8859-1", 415),
    ],
)
def test_unsupported_event_formats(content_type: str, status: int) -> None:
    exc = rejected(decode_request, raw({"content-type": content_type}), orjson.dumps(BASE))
    assert exc.status == status
    assert exc.attribute == "content-type"


@pytest.mark.parametrize(
    ("content_type", "body", "words"),
    [
        ("application/cloudevents+json", b"{", "not valid JSON"),
        ("application/cloudevents+json", b"[]", "JSON object"),
        ("application/cloudevents-batch+json", b"{}", "JSON array"),
        ("application/cloudevents-batch+json", b"[1]", "event [0]"),
    ],
)
def test_malformed_bodies(content_type: str, body: bytes, words: str) -> None:
    exc = rejected(decode_request, raw({"content-type": content_type}), body)
    assert exc.status == 400
    assert words in exc.reason


def test_batched_mode_keeps_order_and_may_be_empty() -> None:
    events = [{**BASE, "id": str(i), "data": i} for i in range(5)]
    headers, body = encode_batch(events)
    assert decode_request(raw(headers), body) == events
    assert decode_request(raw(headers), b"[]") == []


def test_batch_rejection_names_index_and_attribute() -> None:
    events: list[dict[str, Any]] = [dict(BASE), {**BASE, "time": "2020-13-99"}]
    headers, body = encode_batch(events)
    exc = rejected(decode_request, raw(headers), body)
    assert (exc.index, exc.attribute) == (1, "time")
    assert exc.reason.startswith("event [1]:")


# --- attribute validation ------------------------------------------------------


@pytest.mark.parametrize("name", ["specversion", "id", "source", "type"])
def test_each_required_attribute(name: str) -> None:
    missing = {k: v for k, v in BASE.items() if k != name}
    assert rejected(validate_event, missing).attribute == name
    assert rejected(validate_event, {**BASE, name: None}).attribute == name
    assert rejected(validate_event, {**BASE, name: ""}).attribute == name
    assert rejected(validate_event, {**BASE, name: 7}).attribute == name


@pytest.mark.parametrize(
    ("extra", "attribute"),
    [
        ({"specversion": "0.3"}, "specversion"),
        ({"time": "2018-04-05 03:56:24"}, "time"),
        ({"time": "2018-04-05T03:56:24"}, "time"),
        ({"time": "2018-02-30T00:00:00Z"}, "time"),
        ({"time": "2018-04-05T25:00:00+01:00"}, "time"),
        ({"time": "2018-04-05"}, "time"),
        ({"data": 1, "data_base64": "AQ=="}, "data_base64"),
        ({"data_base64": "***"}, "data_base64"),
        ({"data_base64": 12}, "data_base64"),
        ({"MyExt": "x"}, "MyExt"),
        ({"my-ext": "x"}, "my-ext"),
        ({"a" * 21: "x"}, "a" * 21),
        ({"ext": 1.5}, "ext"),
        ({"ext": {"a": 1}}, "ext"),
        ({"ext": [1]}, "ext"),
        ({"ext": 2**31}, "ext"),
        ({"ext": "a\x00b"}, "ext"),
        ({"subject": "a\x00b"}, "subject"),
        ({"source": "has space"}, "source"),
        ({"dataschema": "relative/path"}, "dataschema"),
        ({"subject": ""}, "subject"),
    ],
)
def test_invalid_attributes_are_named(extra: dict[str, Any], attribute: str) -> None:
    exc = rejected(validate_event, {**BASE, **extra})
    assert exc.attribute == attribute
    assert exc.status == 400


def test_valid_optional_attributes_and_extensions_are_kept() -> None:
    event = {
        **BASE,
        "time": "2018-04-05T03:56:24.123+02:00",
        "dataschema": "https://example.com/schema",
        "subject": "s",
        "flag": True,
        "count": -(2**31),
        "a" * 20: "twenty",
        "data": None,
    }
    assert validate_event(event) == event


@pytest.mark.parametrize(
    "time", ["2018-04-05t03:56:24z", "2018-04-05T03:56:24.123456789-05:30", "2018-04-05T03:56:24Z"]
)
def test_rfc3339_times_are_accepted(time: str) -> None:
    assert validate_event({**BASE, "time": time})["time"] == time


def test_extension_names_are_checked_every_time() -> None:
    assert validate_event({**BASE, "okname": "x"})["okname"] == "x"
    assert rejected(validate_event, {**BASE, "okname": 1.5}).attribute == "okname"
    assert rejected(validate_event, {**BASE, "ok_name": "x"}).attribute == "ok_name"
    assert validate_event({**BASE, "okname": ""})["okname"] == ""  # may be empty


def test_null_attributes_are_unset() -> None:
    assert validate_event({**BASE, "subject": None, "ext": None}) == BASE


def test_data_base64_is_kept_exactly() -> None:
    encoded = base64.b64encode(b"\x00\x01binary").decode()
    assert validate_event({**BASE, "data_base64": encoded})["data_base64"] == encoded


# --- encoding --------------------------------------------------------------------


def test_encode_header_value_escapes_space_quote_percent_and_non_ascii() -> None:
    assert encode_header_value("Euro € 😀") == "Euro%20%E2%82%AC%20%F0%9F%98%80"
    assert encode_header_value('a"b%c') == "a%22b%25c"
    assert encode_header_value("/path?q=1&r=[x]") == "/path?q=1&r=[x]"
    assert encode_header_value(True) == "true"
    assert encode_header_value(42) == "42"


@given(st.text(min_size=1).filter(lambda s: "\x00" not in s))
def test_percent_encoding_round_trips(text: str) -> None:
    encoded = encode_header_value(text)
    assert all(0x21 <= ord(c) <= 0x7E for c in encoded)
    assert decode_header_value(encoded.encode("ascii"), "x") == text


@pytest.mark.parametrize(
    "event",
    [
        {**BASE, "datacontenttype": "application/json", "data": {"k": ["v", 1]}},
        {**BASE, "datacontenttype": "text/plain; charset=utf-8", "data": "héllo"},
        {**BASE, "data_base64": base64.b64encode(b"\x00\xff").decode()},
        {**BASE, "comment": "Euro € 😀", "n": "5"},
    ],
)
def test_binary_and_structured_encodings_round_trip(event: dict[str, Any]) -> None:
    headers, body = encode_binary(event)
    assert decode_request(raw_utf8(headers), body) == [event]
    headers, body = encode_structured(event)
    assert decode_request(raw_utf8(headers), body) == [event]


def raw_utf8(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in headers.items()]


def test_encode_binary_without_content_type_sends_json() -> None:
    headers, body = encode_binary({**BASE, "data": [1]})
    assert headers["content-type"] == "application/json"
    assert orjson.loads(body) == [1]


def test_parse_media_type() -> None:
    media = parse_media_type('Text/Plain; Charset="us-ascii"; x=y')
    assert media.essence == "text/plain"
    assert media.params == {"charset": "us-ascii", "x": "y"}
    assert media.is_text
    assert not media.is_json
    assert parse_media_type("application/vnd.api+json").is_json
