"""Finding operations in AsyncAPI 2.x and 3.0 documents (pure)."""

from __future__ import annotations

import pytest

from tideflow.errors import FunctionCallError
from tideflow.runtime.functions.asyncapi import find_async_operation, parse_asyncapi

V2 = """
asyncapi: 2.6.0
servers:
  a: {url: '{host}:1883', protocol: mqtt, variables: {host: {default: broker}}}
  b: {url: 'amqp://q', protocol: amqp}
channels:
  lights:
    servers: [b]
    publish: {operationId: send}
    subscribe: {operationId: receive}
  other:
    publish: {operationId: everywhere}
"""

V3 = """
asyncapi: 3.0.0
servers:
  m: {host: 'broker:1883', protocol: mqtt}
channels:
  measured: {address: 'lights/measured', servers: [{$ref: '#/servers/m'}]}
operations:
  sendMeasure: {action: send, channel: {$ref: '#/channels/measured'}}
  onMeasure: {action: receive, channel: {$ref: '#/channels/measured'}}
  broken: {action: send, channel: {$ref: '#/channels/missing'}}
"""


def test_v2_publish_sends_subscribe_receives_on_the_channels_servers() -> None:
    doc = parse_asyncapi(V2, "v2.yaml")
    send = find_async_operation(doc, "send", "v2.yaml")
    assert (send.sends, send.channel, [s.name for s in send.servers]) == (True, "lights", ["b"])
    assert not find_async_operation(doc, "receive", "v2.yaml").sends
    everywhere = find_async_operation(doc, "everywhere", "v2.yaml")
    assert [s.url for s in everywhere.servers] == ["broker:1883", "amqp://q"]  # variables filled


def test_v3_actions_channel_addresses_and_server_refs() -> None:
    doc = parse_asyncapi(V3, "v3.yaml")
    send = find_async_operation(doc, "sendMeasure", "v3.yaml")
    assert (send.sends, send.channel, send.servers[0].url) == (
        True,
        "lights/measured",
        "broker:1883",
    )
    assert not find_async_operation(doc, "onMeasure", "v3.yaml").sends
    with pytest.raises(FunctionCallError, match="names channel '#/channels/missing'"):
        find_async_operation(doc, "broken", "v3.yaml")


@pytest.mark.parametrize(
    ("text", "operation", "code", "message"),
    [
        (V2, "nothing", "UnknownOperation", "(it has: everywhere, receive, send)"),
        ("openapi: 3.0.0\n", "x", "InvalidDocument", "is not AsyncAPI 2.x or 3.x"),
        ("asyncapi: [\n", "x", "InvalidDocument", "neither JSON nor YAML"),
    ],
)
def test_problems_name_the_document(text: str, operation: str, code: str, message: str) -> None:
    with pytest.raises(FunctionCallError) as caught:
        find_async_operation(parse_asyncapi(text, "d.yaml"), operation, "d.yaml")
    assert caught.value.code == code
    assert message in str(caught.value)
