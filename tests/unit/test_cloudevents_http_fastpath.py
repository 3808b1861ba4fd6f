"""The ingestion fast path as plain ASGI calls (no sockets): routing, body limits, responses."""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import Any

import orjson
import pytest

from tideflow.api.access import PRINCIPAL
from tideflow.api.fastpath import ClientGone, IngestFastPath, ingest_bus, read_body
from tideflow.auth.tokens import INSECURE_LOCAL, Principal
from tideflow.errors import EventRejected, StoreError
from tideflow.eventstore.store import Appended
from tideflow.http_binding import encode_batch, encode_binary
from tideflow.testing import InMemoryEventStore

EVENT = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}


def scope(
    path: str, headers: dict[str, str], method: str = "POST", principal: Any = INSECURE_LOCAL
) -> dict[str, Any]:
    """A request the access gate admitted (as ``principal``: an admin by default)."""
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    return {"type": "http", "method": method, "path": path, "headers": raw, PRINCIPAL: principal}


def receiver(*chunks: bytes, disconnect: bool = False) -> Any:
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    if disconnect:
        messages = [*messages[:-1], {"type": "http.disconnect"}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    return receive


class Sent:
    def __init__(self) -> None:
        self.messages: list[MutableMapping[str, Any]] = []

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        status: int = self.messages[0]["status"]
        return status

    @property
    def json(self) -> Any:
        return orjson.loads(b"".join(m.get("body", b"") for m in self.messages[1:]))


@pytest.mark.parametrize(
    ("path", "bus"),
    [
        ("/events", "default"),
        ("/buses/orders/events", "orders"),
        ("/buses//events", None),
        ("/buses/a/b/events", None),
        ("/buses/orders", None),
        ("/events/1", None),
        ("/healthz", None),
    ],
)
def test_ingest_bus(path: str, bus: str | None) -> None:
    assert ingest_bus(path) == bus


async def test_read_body_joins_chunks() -> None:
    body = await read_body(scope("/events", {}), receiver(b"ab", b"cd", b""), 10)
    assert body == b"abcd"


async def test_read_body_limits() -> None:
    with pytest.raises(EventRejected) as declared:
        await read_body(scope("/events", {"content-length": "11"}), receiver(b""), 10)
    assert (declared.value.status, "11 bytes" in declared.value.reason) == (413, True)
    with pytest.raises(EventRejected) as streamed:
        await read_body(scope("/events", {}), receiver(b"123456", b"123456"), 10)
    assert streamed.value.status == 413
    with pytest.raises(EventRejected) as invalid:
        await read_body(scope("/events", {"content-length": "-1"}), receiver(b""), 10)
    assert invalid.value.status == 400
    with pytest.raises(ClientGone):
        await read_body(scope("/events", {}), receiver(b"12", b"", disconnect=True), 10)


def app_with(store: Any) -> tuple[IngestFastPath, list[str]]:
    passed: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        passed.append(scope["path"])

    return IngestFastPath(inner, lambda scope: (store, 1000)), passed


async def test_ingestion_is_answered_and_the_rest_passes_through() -> None:
    store = InMemoryEventStore()
    await store.start()
    app, passed = app_with(store)
    headers, body = encode_binary(EVENT)
    sent = Sent()
    await app(scope("/events", headers), receiver(body), sent)
    assert sent.status == 202
    assert sent.json == {"events": [{"bus": "default", "offset": 1, "duplicate": False}]}
    assert (
        dict(sent.messages[0]["headers"])[b"content-length"]
        == str(len(sent.messages[1]["body"])).encode()
    )
    await app(scope("/events", {}, method="GET"), receiver(b""), Sent())
    await app(scope("/buses/x", {}), receiver(b""), Sent())
    assert passed == ["/events", "/buses/x"]


async def test_publishing_needs_the_bus_scope() -> None:
    store = InMemoryEventStore()
    await store.start()
    await store.create_bus("orders")
    app, _ = app_with(store)
    headers, body = encode_binary(EVENT)
    feeder = Principal("0123456789ab", "feeder", ("publish:ord*", "subscribe:default"))
    for path, status in (("/buses/orders/events", 202), ("/events", 403)):
        sent = Sent()
        await app(scope(path, headers, principal=feeder), receiver(body), sent)
        assert sent.status == status
    refused = Sent()
    await app(scope("/events", headers, principal=feeder), receiver(body), refused)
    assert "publish:default" in refused.json["detail"]
    anonymous = Sent()
    await app(scope("/events", headers, principal=None), receiver(body), anonymous)
    assert (anonymous.status, anonymous.json["type"]) == (401, "unauthenticated")
    assert [r.event["id"] for r in await store.read("orders", 0, 10)] == ["1"]


async def test_errors_become_problems() -> None:
    store = InMemoryEventStore()
    await store.start()
    app, _ = app_with(store)
    headers, body = encode_batch([EVENT])
    unknown = Sent()
    await app(scope("/buses/nope/events", headers), receiver(body), unknown)
    assert (unknown.status, unknown.json["type"]) == (404, "bus-not-found")
    empty = Sent()
    await app(scope("/buses/nope/events", headers), receiver(b"[]"), empty)
    assert empty.status == 404
    too_big = Sent()
    await app(scope("/events", headers), receiver(b"x" * 1001), too_big)
    assert too_big.status == 413


async def test_unexpected_failures_are_500_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        async def append(self, bus: str, events: Sequence[Any]) -> list[Appended]:
            raise RuntimeError("disk on fire")

        async def get_bus(self, name: str) -> object:
            return name

    app, _ = app_with(Broken())
    headers, body = encode_binary(EVENT)
    sent = Sent()
    await app(scope("/events", headers), receiver(body), sent)
    assert sent.status == 500
    assert sent.json["type"] == "internal-error"
    assert "RuntimeError" in sent.json["detail"]
    assert "disk on fire" not in sent.json["detail"]
    assert "disk on fire" in caplog.text


async def test_store_failures_are_503() -> None:
    class Down:
        async def append(self, bus: str, events: Sequence[Any]) -> list[Appended]:
            raise StoreError("the event store is not started (or already stopped)")

        async def get_bus(self, name: str) -> object:
            return name

    app, _ = app_with(Down())
    headers, body = encode_binary(EVENT)
    sent = Sent()
    await app(scope("/events", headers), receiver(body), sent)
    assert (sent.status, sent.json["type"]) == (503, "store-unavailable")
    assert "not started" in sent.json["detail"]
