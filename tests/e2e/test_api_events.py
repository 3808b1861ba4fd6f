"""The events and buses HTTP API over a real uvicorn server on 127.0.0.1.

Every test runs against both stores: ``InMemoryEventStore`` and
``PostgresEventStore`` on a fresh database from the ``pool`` fixture.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.auth import admin_tokens, bearer
from tideflow.api.app import create_app
from tideflow.api.services import with_store
from tideflow.api.testserver import serve_app
from tideflow.eventstore.gateway import PostgresEventStore
from tideflow.eventstore.store import EventStore
from tideflow.http_binding import encode_batch, encode_binary, encode_structured
from tideflow.settings import Settings
from tideflow.testing import InMemoryEventStore

BASE: dict[str, Any] = {"specversion": "1.0", "source": "/tests", "type": "com.example.t"}
LIMIT = 64 * 1024


def ev(i: int | str, **extra: Any) -> dict[str, Any]:
    return {**BASE, "id": f"e-{i}", **extra}


@pytest.fixture(params=["memory", "postgres"])
def store(request: pytest.FixtureRequest) -> EventStore:
    """The store behind the server; started and stopped by the app's lifespan."""
    if request.param == "memory":
        return InMemoryEventStore()
    return PostgresEventStore(request.getfixturevalue("pool"))


@pytest.fixture
async def client(store: EventStore) -> AsyncIterator[httpx.AsyncClient]:
    tokens, token = admin_tokens()
    app = create_app(Settings(max_request_bytes=LIMIT), with_store(store, tokens=tokens))
    async with (
        serve_app(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers=bearer(token)) as http,
    ):
        yield http


async def send(
    client: httpx.AsyncClient, encoded: tuple[dict[str, str], bytes], path: str = "/events"
) -> httpx.Response:
    headers, body = encoded
    return await client.post(path, headers=headers, content=body)


async def read_all(client: httpx.AsyncClient, bus: str = "default") -> list[dict[str, Any]]:
    response = await client.get(f"/buses/{bus}/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()["events"]
    return records


def assert_problem(
    response: httpx.Response, status: int, path: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) >= {"type", "title", "detail"}
    assert "Traceback" not in response.text
    assert body.get("path") == path
    return body


# --- ingestion ---------------------------------------------------------------------


async def test_binary_structured_and_batched_modes_append_in_order(
    client: httpx.AsyncClient,
) -> None:
    first = await send(
        client, encode_binary(ev(1, datacontenttype="application/json", data={"n": 1}))
    )
    assert first.status_code == 202
    assert first.json() == {"events": [{"bus": "default", "offset": 1, "duplicate": False}]}
    second = await send(client, encode_structured(ev(2, data=[2])))
    assert second.json()["events"] == [{"bus": "default", "offset": 2, "duplicate": False}]
    batch = await send(client, encode_batch([ev(3), ev(4, data=None), ev(5, flag=True)]))
    assert batch.status_code == 202
    assert [a["offset"] for a in batch.json()["events"]] == [3, 4, 5]
    records = await read_all(client)
    assert [r["offset"] for r in records] == [1, 2, 3, 4, 5]
    assert records[0]["event"] == ev(1, datacontenttype="application/json", data={"n": 1})
    assert records[3]["event"] == ev(4, data=None)
    assert records[4]["event"]["flag"] is True


async def test_named_bus_percent_encoded_headers_and_data_base64(client: httpx.AsyncClient) -> None:
    assert (await client.post("/buses", json={"name": "orders"})).status_code == 201
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "p-1",
        "ce-source": "/tests",
        "ce-type": "t",
        "ce-comment": "Euro%20%E2%82%AC%20%F0%9F%98%80",
        "ce-quoted": '"a \\"b\\""',
        "content-type": "application/octet-stream",
    }
    blob = bytes(range(256))
    response = await client.post("/buses/orders/events", headers=headers, content=blob)
    assert response.json()["events"] == [{"bus": "orders", "offset": 1, "duplicate": False}]
    [record] = await read_all(client, "orders")
    assert record["event"]["comment"] == "Euro € 😀"
    assert record["event"]["quoted"] == 'a "b"'
    assert base64.b64decode(record["event"]["data_base64"]) == blob
    structured = await send(
        client,
        encode_structured(ev("b64", data_base64=base64.b64encode(b"\x00\x01").decode())),
        "/buses/orders/events",
    )
    assert structured.status_code == 202
    got = (await client.get("/buses/orders/events/2")).json()
    assert got["event"]["data_base64"] == "AAE="
    assert "data" not in got["event"]


async def test_duplicates_are_acknowledged_with_the_first_offset(client: httpx.AsyncClient) -> None:
    await send(client, encode_structured(ev(1)))
    again = await send(client, encode_binary(ev(1)))
    assert again.json()["events"] == [{"bus": "default", "offset": 1, "duplicate": True}]
    batch = await send(client, encode_batch([ev(2), ev(2), ev(1)]))
    assert [(a["offset"], a["duplicate"]) for a in batch.json()["events"]] == [
        (2, False),
        (2, True),
        (1, True),
    ]
    assert len(await read_all(client)) == 2


# --- rejections --------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "path"),
    [
        ({k: v for k, v in ev(1).items() if k != "id"}, "id"),
        ({k: v for k, v in ev(1).items() if k != "source"}, "source"),
        ({k: v for k, v in ev(1).items() if k != "type"}, "type"),
        ({k: v for k, v in ev(1).items() if k != "specversion"}, "specversion"),
        (ev(1, specversion="0.3"), "specversion"),
        (ev(1, time="05/04/2018"), "time"),
        (ev(1, Bad="x"), "Bad"),
        (ev(1, toolongextensionname1="x"), "toolongextensionname1"),
        (ev(1, ext={"nested": 1}), "ext"),
        (ev(1, data=1, data_base64="AQ=="), "data_base64"),
        (ev(1, data_base64="%%%"), "data_base64"),
    ],
)
async def test_invalid_structured_events_are_400_naming_the_attribute(
    client: httpx.AsyncClient, event: dict[str, Any], path: str
) -> None:
    assert_problem(await send(client, encode_structured(event)), 400, path)
    assert await read_all(client) == []


@pytest.mark.parametrize(
    ("headers", "path"),
    [
        ({"ce-id": None}, "id"),
        ({"ce-specversion": "0.3"}, "specversion"),
        ({"ce-time": "not-a-time"}, "time"),
        ({"ce-Bad_Name": "x"}, "bad_name"),
        ({"ce-datacontenttype": "text/plain"}, "datacontenttype"),
        ({"ce-ext": "%C0%A0"}, "ext"),
    ],
)
async def test_invalid_binary_events_are_400_naming_the_attribute(
    client: httpx.AsyncClient, headers: dict[str, str | None], path: str
) -> None:
    sent = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t", **headers}
    clean = {k: v for k, v in sent.items() if v is not None}
    assert_problem(await client.post("/events", headers=clean, content=b""), 400, path)
    assert await read_all(client) == []  # nothing stored


async def test_a_batch_is_all_or_nothing(client: httpx.AsyncClient) -> None:
    response = await send(client, encode_batch([ev(1), ev(2), ev(3, time="yesterday")]))
    body = assert_problem(response, 400, "[2].time")
    assert "event [2]" in body["detail"]
    assert await read_all(client) == []


async def test_malformed_bodies_are_400(client: httpx.AsyncClient) -> None:
    headers = {"content-type": "application/cloudevents+json"}
    assert_problem(await client.post("/events", headers=headers, content=b"{oops"), 400)
    headers = {"content-type": "application/cloudevents-batch+json"}
    assert_problem(await client.post("/events", headers=headers, content=b'{"a": 1}'), 400)
    assert await read_all(client) == []


async def test_too_large_requests_are_413(client: httpx.AsyncClient) -> None:
    big = encode_structured(ev(1, data="x" * LIMIT))
    body = assert_problem(await send(client, big), 413)
    assert str(LIMIT) in body["detail"]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"y" * (LIMIT // 2)

    streamed = await client.post(
        "/events", headers={"content-type": "application/cloudevents+json"}, content=chunks()
    )
    assert_problem(streamed, 413)
    assert await read_all(client) == []


@pytest.mark.parametrize(
    "content_type",
    ["application/cloudevents+avro", "application/cloudevents-batch+xml", "application/json"],
)
async def test_unsupported_content_types_are_415(
    client: httpx.AsyncClient, content_type: str
) -> None:
    response = await client.post("/events", headers={"content-type": content_type}, content=b"{}")
    assert_problem(response, 415, "content-type")
    assert await read_all(client) == []


async def test_unknown_bus_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await send(client, encode_binary(ev(1)), "/buses/nope/events"), 404)
    assert_problem(await send(client, encode_batch([]), "/buses/nope/events"), 404)
    assert_problem(await client.get("/buses/nope/events"), 404)
    assert_problem(await client.get("/buses/nope"), 404)
    assert_problem(await client.get("/buses/default/events/1"), 404)


async def test_empty_batch_is_accepted(client: httpx.AsyncClient) -> None:
    response = await send(client, encode_batch([]))
    assert (response.status_code, response.json()) == (202, {"events": []})


# --- reading -------------------------------------------------------------------


async def test_reading_pages_with_next_cursor(client: httpx.AsyncClient) -> None:
    await send(client, encode_batch([ev(i) for i in range(1, 8)]))
    page = (await client.get("/buses/default/events", params={"after": 2, "limit": 3})).json()
    assert [r["offset"] for r in page["events"]] == [3, 4, 5]
    assert page["next"] == 5
    page = (await client.get("/buses/default/events", params={"after": 5})).json()
    assert [r["event"]["id"] for r in page["events"]] == ["e-6", "e-7"]
    empty = (await client.get("/buses/default/events", params={"after": 7})).json()
    assert (empty["events"], empty["next"]) == ([], 7)
    for params in ({"after": -1}, {"limit": 0}, {"limit": 5000}, {"wait": "soon"}):
        problem = assert_problem(
            await client.get("/buses/default/events", params=params),
            400,
            f"query.{next(iter(params))}",
        )
        assert problem["type"] == "invalid-request"


async def test_wait_long_polls_until_an_event_arrives(client: httpx.AsyncClient) -> None:
    waiting = asyncio.create_task(
        client.get("/buses/default/events", params={"after": 0, "wait": 20})
    )
    await asyncio.sleep(0.2)  # let the reader start waiting on the real server
    assert not waiting.done()
    await send(client, encode_structured(ev("late")))
    page = (await asyncio.wait_for(waiting, 10)).json()
    assert [r["event"]["id"] for r in page["events"]] == ["e-late"]
    assert page["next"] == 1


# --- buses --------------------------------------------------------------------------


async def test_bus_management(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/buses", json={"name": "audit", "retention": {"maxAge": "P7D", "maxEvents": 1000}}
    )
    assert created.status_code == 201
    assert created.headers["location"] == "/buses/audit"
    assert created.json()["retention"] == {"maxAge": "P7D", "maxEvents": 1000}
    assert_problem(await client.post("/buses", json={"name": "audit"}), 409)
    assert_problem(await client.post("/buses", json={"name": "no spaces"}), 400, "name")
    assert_problem(await client.post("/buses", json={}), 400, "body.name")
    bad_age = {"name": "x", "retention": {"maxAge": "a week"}}
    assert_problem(await client.post("/buses", json=bad_age), 400, "retention.maxAge")
    names = [b["name"] for b in (await client.get("/buses")).json()["buses"]]
    assert names == ["audit", "default"]
    await send(client, encode_batch([ev(1), ev(2)]), "/buses/audit/events")
    info = (await client.get("/buses/audit")).json()
    assert (info["firstOffset"], info["lastOffset"]) == (1, 2)
    assert info["segmentCount"] >= 1
    assert (await client.delete("/buses/audit")).status_code == 204
    assert_problem(await client.get("/buses/audit"), 404)
    assert_problem(await client.delete("/buses/default"), 409)


async def test_healthz_and_unknown_routes(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert_problem(await client.get("/no/such/route"), 404)
    assert_problem(await client.put("/events"), 405)
