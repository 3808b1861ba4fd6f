"""Connectors as data: validation naming the field, redaction, mappings (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from tideflow.connectors.mapping import MessageMapping, Record, RecordMapping, decode_body
from tideflow.connectors.spec import (
    ConnectorKind,
    parse_connector,
    parse_connectors_file,
    redact_config,
)
from tideflow.errors import ExpressionError, InvalidArgument


def body(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "orders-in",
        "kind": "source",
        "type": "postgres",
        "bus": "default",
        "config": {"url": "postgresql://db/x", "table": "orders"},
    }
    return {**base, **changes}


def test_a_valid_source_and_sink() -> None:
    source = parse_connector(body(mapping="{type: .channel}"))
    assert (source.kind, source.type, source.mapping) == (
        ConnectorKind.SOURCE,
        "postgres",
        "{type: .channel}",
    )
    sink = parse_connector(
        body(
            kind="sink",
            subscription={"filters": [{"prefix": {"type": "com."}}], "from": "earliest"},
        )
    )
    assert sink.subscription_body() == {
        "bus": "default",
        "filters": [{"prefix": {"type": "com."}}],
        "from": "earliest",
    }


@pytest.mark.parametrize(
    ("changes", "argument"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"kind": "pipe"}, "kind"),
        ({"type": "kafka"}, "type"),
        ({"type": {"postgres": 1}}, "type"),  # unhashable: was a 500 (schemathesis)
        ({"kind": ["source"]}, "kind"),
        ({"bus": "no spaces"}, "bus"),
        ({"config": {"url": "postgresql://db/x"}}, "config.table"),
        ({"config": {"url": "u", "table": "t", "colour": 1}}, "config.colour"),
        ({"config": {"url": "u", "table": "t", "interval": -1}}, "config.interval"),
        ({"config": {"url": "u", "table": "t", "batch": 1.5}}, "config.batch"),
        ({"config": {"url": "u", "table": "t", "mode": "sometimes"}}, "config.mode"),
        ({"config": {"url": {"vault": "x"}, "table": "t"}}, "config.url"),
        ({"mapping": "{{{"}, "mapping"),
        ({"subscription": {"filters": []}}, "subscription"),
        ({"extra": 1}, "extra"),
        ({"type": "directory", "config": {"path": "relative/dir"}}, "config.path"),
        ({"type": "directory", "config": {"path": ["/etc"]}}, "config.path"),
        ({"type": "directory", "config": {}}, "config.path"),
        ({"type": "directory", "config": {"path": "/in", "url": "x"}}, "config.url"),
    ],
)
def test_invalid_fields_are_named(changes: dict[str, Any], argument: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse_connector(body(**changes))
    assert raised.value.argument == argument


def test_a_bad_sink_subscription_names_its_path() -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse_connector(body(kind="sink", subscription={"filters": [{"sql": "type = "}]}))
    assert raised.value.argument == "subscription.filters[0].sql"
    with pytest.raises(InvalidArgument) as raised:
        parse_connector(body(kind="sink", subscription={"delivery": {"retry": -1}}))
    assert raised.value.argument == "subscription.delivery.retry"


def test_credentials_are_redacted_and_references_kept() -> None:
    shown = redact_config(
        {
            "url": "amqp://guest:guest@127.0.0.1:5672/",
            "password": "hunter2",
            "apiKey": {"secret": "API_KEY"},
            "table": "t",
        }
    )
    assert shown == {
        "url": "amqp://guest:***@127.0.0.1:5672/",
        "password": "***",
        "apiKey": {"secret": "API_KEY"},
        "table": "t",
    }


def test_a_connectors_file_names_the_entry() -> None:
    specs = parse_connectors_file({"connectors": [body(), body(name="two")]}, "c.yaml")
    assert [s.name for s in specs] == ["orders-in", "two"]
    with pytest.raises(InvalidArgument, match=r"c.yaml: connectors\[1\].config.table"):
        parse_connectors_file([body(), body(name="two", config={"url": "u"})], "c.yaml")
    with pytest.raises(InvalidArgument, match="declared twice"):
        parse_connectors_file([body(), body()], "c.yaml")


def test_a_record_maps_to_an_event_over_the_defaults() -> None:
    mapping = RecordMapping(
        "sensors", "mqtt", '{type: "com.example.reading", subject: .data.sensor}', lambda: "new"
    )
    event = mapping.event(Record(id="m-1", data={"sensor": "s1", "t": 20.5}, channel="sensors/s1"))
    assert event == {
        "specversion": "1.0",
        "id": "m-1",
        "source": "/connectors/sensors",
        "type": "com.example.reading",
        "subject": "s1",
        "datacontenttype": "application/json",
        "data": {"sensor": "s1", "t": 20.5},
    }
    bare = RecordMapping("q", "amqp", None, lambda: "new").event(Record(id=None, data="hi"))
    assert bare is not None
    assert (bare["id"], bare["type"], bare["data"]) == ("new", "tideflow.connector.amqp", "hi")
    assert RecordMapping("q", "amqp", "empty", lambda: "x").event(Record(id="1")) is None
    with pytest.raises(InvalidArgument):
        RecordMapping("q", "amqp", "1", lambda: "x").event(Record(id="1"))
    with pytest.raises(ExpressionError):
        RecordMapping("q", "amqp", ".data.x.y", lambda: "x").event(Record(id="1", data="text"))


def test_payloads_decode_as_json_text_or_base64() -> None:
    assert decode_body(b'{"a": 1}') == ({"a": 1}, None)
    assert decode_body(b"plain") == ("plain", None)
    assert decode_body(b"\xff\x00") == (None, "/wA=")
    event = RecordMapping("b", "nats", None, lambda: "x").event(
        Record(id="1", data=None, data_base64="/wA=")
    )
    assert event is not None
    assert (event["datacontenttype"], event["data_base64"]) == ("application/octet-stream", "/wA=")


def test_a_sink_mapping_shapes_the_message() -> None:
    event = {"id": "1", "source": "/s", "type": "t", "data": {"n": 2}}
    assert MessageMapping(None).message(event) == event
    assert MessageMapping("{n: .data.n}").message(event) == {"n": 2}
    assert MessageMapping("empty").message(event) is None
