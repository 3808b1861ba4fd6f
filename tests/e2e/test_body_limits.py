"""Every route refuses a body past its limit before reading it (a real server on 127.0.0.1).

The requests are written on a raw socket so that the body can be *declared*
(``Content-Length: 100000000``) or *streamed* (chunked) without being sent:
the server answers ``413`` while most of the body was never written, which
only a check before reading (or while streaming) can do.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.auth import home_auth
from tideflow.api.app import create_app
from tideflow.api.testserver import serve_app
from tideflow.serve import open_system
from tideflow.settings import Settings

REQUEST_LIMIT = 4096
VALUE_LIMIT = 64 * 1024
HUNDRED_MB = 100_000_000
ROUTES = ("/workflows", "/subscriptions", "/buses", "/tokens", "/buses/default/events")


@pytest.fixture
async def server(pg_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, str]]]:
    settings = Settings(
        database_url=pg_url,
        home=tmp_path,
        max_request_bytes=REQUEST_LIMIT,
        value_bytes_limit=VALUE_LIMIT,
    )
    async with serve_app(create_app(settings, open_system)) as url:
        yield url, home_auth(tmp_path)


async def _exchange(url: str, head: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """Write ``head`` and ``body`` (not the rest the head declares); read the answer."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(head.encode() + b"\r\n" + body)
        await writer.drain()
        async with asyncio.timeout(10):  # answered without the rest of the body
            answer = await reader.read(65536)
            while b"\r\n\r\n" not in answer:
                answer += await reader.read(65536)
            head_part, _, payload = answer.partition(b"\r\n\r\n")
            length = int(
                next(
                    line.split(b":")[1]
                    for line in head_part.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
            )
            while len(payload) < length:
                payload += await reader.read(65536)
    finally:
        writer.close()
    status = int(head_part.split(b" ")[1])
    return status, json.loads(payload)


def _head(url: str, path: str, auth: dict[str, str], framing: str) -> str:
    host = urlsplit(url).netloc
    token = auth["authorization"]
    content_type = (
        "application/cloudevents+json" if path.endswith("/events") else "application/json"
    )
    return (
        f"POST {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: {token}\r\n"
        f"content-type: {content_type}\r\n{framing}\r\n"
    )


@pytest.mark.parametrize("path", ROUTES)
async def test_a_declared_length_past_the_limit_is_refused_unread(
    server: tuple[str, dict[str, str]], path: str
) -> None:
    url, auth = server
    status, body = await _exchange(
        url, _head(url, path, auth, f"content-length: {HUNDRED_MB}"), b'{"name": "'
    )
    assert status == 413, body
    assert str(REQUEST_LIMIT) in body["detail"]
    if path.endswith("/events"):  # the ingestion fast path's own check, same limit
        return
    assert f"{HUNDRED_MB} bytes" in body["detail"]
    assert "TIDEFLOW_MAX_REQUEST_BYTES" in body["detail"]


@pytest.mark.parametrize("path", ROUTES)
async def test_a_chunked_body_is_cut_off_at_the_limit(
    server: tuple[str, dict[str, str]], path: str
) -> None:
    url, auth = server
    chunk = b"x" * (REQUEST_LIMIT + 1)
    # one chunk past the limit and no final chunk: a server reading it all would wait forever
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    status, body = await _exchange(
        url, _head(url, path, auth, "transfer-encoding: chunked"), framed
    )
    assert status == 413, body
    assert str(REQUEST_LIMIT) in body["detail"]


async def test_a_100_mb_instance_input_is_refused_unread_and_the_server_goes_on(
    server: tuple[str, dict[str, str]],
) -> None:
    url, auth = server
    async with httpx.AsyncClient(base_url=url, headers=auth, timeout=30) as http:
        hello = {
            "id": "hello",
            "version": "1",
            "specVersion": "0.8",
            "start": "Hi",
            "states": [{"name": "Hi", "type": "inject", "data": {"hi": 1}, "end": True}],
        }
        assert (await http.post("/workflows", json=hello)).status_code == 201
        path = "/workflows/hello/instances"
        status, body = await _exchange(
            url, _head(url, path, auth, f"content-length: {HUNDRED_MB}"), b'{"items": ['
        )
        assert status == 413, body
        assert body["detail"].startswith("VALUE_BYTES_LIMIT")
        assert "TIDEFLOW_VALUE_BYTES_LIMIT" in body["detail"]
        chunk = b" " * (VALUE_LIMIT + 1)
        framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        status, body = await _exchange(
            url, _head(url, path, auth, "transfer-encoding: chunked"), framed
        )
        assert (status, body["detail"][:17]) == (413, "VALUE_BYTES_LIMIT")
        # an input under the value limit but past the request limit is an input, not refused
        started = await http.post(
            path, json={"pad": "x" * (2 * REQUEST_LIMIT)}, params={"wait": 10}
        )
        assert started.status_code == 201, started.text
        assert started.json()["status"] == "completed"
        assert (await http.get("/instances")).json()["instances"][0]["id"] == started.json()["id"]


async def test_bodies_under_the_limit_are_read_as_before(
    server: tuple[str, dict[str, str]],
) -> None:
    url, auth = server
    async with httpx.AsyncClient(base_url=url, headers=auth, timeout=30) as http:
        created = await http.post("/buses", json={"name": "orders"})
        assert created.status_code == 201, created.text

        async def chunks() -> AsyncIterator[bytes]:  # chunked, under the limit
            yield b'{"name": '
            yield b'"orders-2"}'

        streamed = await http.post(
            "/buses", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 201, streamed.text
        assert {b["name"] for b in (await http.get("/buses")).json()["buses"]} >= {
            "orders",
            "orders-2",
        }
