"""The subscriptions HTTP API and CLI against a real server, a real sink and PostgreSQL.

The Tideflow app runs on uvicorn on 127.0.0.1 with a PostgreSQL event store,
timer service and dispatcher on the ``pool`` fixture's database; events are
POSTed over HTTP and reach a real HTTP sink; the CLI runs as a subprocess.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.auth import admin_tokens, bearer
from tests.support.cli import run_cli
from tests.support.sink import Sink, running_sink
from tideflow.api.app import create_app
from tideflow.api.services import Services
from tideflow.api.testserver import serve_app
from tideflow.eventstore.gateway import PostgresEventStore
from tideflow.http_binding import encode_binary
from tideflow.settings import Settings
from tideflow.timer.service import TimerService
from tideflow.triggers.dispatcher import Dispatcher
from tideflow.triggers.gateway import PostgresSubscriptions

TOKENS, TOKEN = admin_tokens()


async def tideflow(server: str, *args: str) -> tuple[int, str, str]:
    """The CLI with an admin token."""
    return await run_cli(server, *args, token=TOKEN)


def opener(pool: asyncpg.Pool) -> Any:
    @asynccontextmanager
    async def open_services(settings: Settings) -> AsyncIterator[Services]:
        async with PostgresEventStore(pool) as store:
            timers = TimerService(pool)
            dispatcher = Dispatcher(store, PostgresSubscriptions(pool), timers)
            async with dispatcher, timers:
                yield Services(
                    settings=settings, events=store, dispatcher=dispatcher, tokens=TOKENS
                )

    return open_services


@dataclass
class Env:
    url: str
    http: httpx.AsyncClient
    sink: Sink


@pytest.fixture
async def env(pool: asyncpg.Pool) -> AsyncIterator[Env]:
    app = create_app(Settings(), opener(pool))
    async with (
        running_sink() as sink,
        serve_app(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers=bearer(TOKEN)) as http,
    ):
        assert (await http.post("/buses", json={"name": "orders"})).status_code == 201
        yield Env(url, http, sink)


def ev(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"e-{i}",
        "source": "/shop",
        "type": "com.example.order",
        "data": {"n": i},
        **extra,
    }


async def post_event(env: Env, event: dict[str, Any]) -> None:
    headers, body = encode_binary(event)
    response = await env.http.post("/buses/orders/events", headers=headers, content=body)
    assert response.status_code in (200, 201, 202), response.text


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while not (result := await check()):  # noqa: ASYNC110 - the state is in the server
            await asyncio.sleep(0.01)
    return result


async def show_when(env: Env, sub_id: str, offset: int) -> dict[str, Any]:
    async def reached() -> Any:
        body = (await env.http.get(f"/subscriptions/{sub_id}")).json()
        return body if body["committedOffset"] >= offset else None

    result: dict[str, Any] = await eventually(reached)
    return result


def assert_problem(response: httpx.Response, status: int, path: str | None) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body.get("path") == path
    assert "Traceback" not in response.text
    detail: str = body["detail"]
    return detail


async def test_bad_subscriptions_are_refused_with_the_path(env: Env) -> None:
    base = {"bus": "orders", "sink": env.sink.url}
    cases = [
        ({**base, "filters": [{"exact": {"type": "a"}}, {"sql": "type = "}]}, "filters[1].sql"),
        ({**base, "filters": [{"any": [{"nope": {}}]}]}, "filters[0].any[0]"),
        ({**base, "delivery": {"backoffDelay": "soon"}}, "delivery.backoffDelay"),
        ({**base, "delivery": {"maxInFlight": 0}}, "delivery.maxInFlight"),
        ({**base, "delivery": {"timeout": "P365D"}}, "delivery.timeout"),
        ({**base, "delivery": {"timeout": "PT61S"}}, "delivery.timeout"),
        ({**base, "transform": ".a |"}, "transform"),
        ({**base, "sink": "ftp://x"}, "sink"),
        ({**base, "from": "yesterday"}, "from"),
        ({"sink": env.sink.url}, "bus"),
    ]
    for body, path in cases:
        detail = assert_problem(await env.http.post("/subscriptions", json=body), 422, path)
        assert detail, path
    missing = await env.http.post("/subscriptions", json={**base, "bus": "nope"})
    assert missing.status_code == 404
    assert (await env.http.get("/subscriptions/unknown")).status_code == 404
    assert (await env.http.get("/subscriptions")).json() == {"subscriptions": []}


async def test_lifecycle_through_the_api(env: Env) -> None:
    created = await env.http.post(
        "/subscriptions",
        json={
            "bus": "orders",
            "sink": env.sink.url + "/hook",
            "filters": [{"sql": "region = 'eu'"}],
            "transform": ".data.n",
            "delivery": {"retry": 2, "ordered": True},
        },
    )
    assert created.status_code == 201, created.text
    sub = created.json()
    sub_id = sub["id"]
    assert created.headers["location"] == f"/subscriptions/{sub_id}"
    assert sub["delivery"]["deadLetterBus"] == "orders.deadletter"
    assert (sub["state"], sub["committedOffset"], sub["lag"]) == ("active", 0, 0)

    for i, region in ((1, "eu"), (2, "us"), (3, "eu")):
        await post_event(env, ev(i, region=region))
    shown = await show_when(env, sub_id, 3)
    assert (shown["delivered"], shown["failed"], shown["deadLettered"], shown["lag"]) == (
        2,
        0,
        0,
        0,
    )
    assert [r.json() for r in env.sink.received] == [1, 3]

    paused = (await env.http.post(f"/subscriptions/{sub_id}/pause")).json()
    assert paused["state"] == "paused"
    await post_event(env, ev(4, region="eu"))
    shown = (await env.http.get(f"/subscriptions/{sub_id}")).json()
    assert (shown["committedOffset"], shown["headOffset"], shown["lag"]) == (3, 4, 1)
    resumed = (await env.http.post(f"/subscriptions/{sub_id}/resume")).json()
    assert resumed["state"] == "active"
    await show_when(env, sub_id, 4)

    reset = await env.http.post(f"/subscriptions/{sub_id}/reset", json={"offset": 3})
    assert reset.json()["committedOffset"] == 2
    await env.sink.wait_for(lambda: len(env.sink.received) == 5)
    assert [r.json() for r in env.sink.received] == [1, 3, 4, 3, 4]
    bad = await env.http.post(f"/subscriptions/{sub_id}/reset", json={"offset": -1})
    assert_problem(bad, 422, "offset")
    bad = await env.http.post(f"/subscriptions/{sub_id}/reset", json={"time": "noon"})
    assert_problem(bad, 422, "time")
    again = await env.http.post(
        f"/subscriptions/{sub_id}/reset", json={"time": "2000-01-01T00:00:00Z"}
    )
    assert again.json()["committedOffset"] == 0

    listed = (await env.http.get("/subscriptions")).json()["subscriptions"]
    assert [s["id"] for s in listed] == [sub_id]
    assert (await env.http.delete(f"/subscriptions/{sub_id}")).status_code == 204
    assert (await env.http.get(f"/subscriptions/{sub_id}")).status_code == 404


@pytest.mark.slow
async def test_cli_create_list_show_delete(env: Env) -> None:
    code, out, err = await tideflow(
        env.url,
        "subscriptions",
        "create",
        "--bus",
        "orders",
        "--sink",
        env.sink.url,
        "--filter",
        '{"prefix": {"type": "com."}}',
        "--sql",
        "source = '/shop'",
        "--delivery",
        '{"retry": 1}',
        "--from",
        "earliest",
    )
    assert code == 0, err
    created = json.loads(out)
    assert created["filters"] == [{"prefix": {"type": "com."}}, {"sql": "source = '/shop'"}]
    assert created["delivery"]["retry"] == 1
    sub_id = created["id"]

    code, out, err = await tideflow(env.url, "subscriptions", "list")
    assert code == 0, err
    assert out.split("\t")[:4] == [sub_id, "active", "orders", "offset=0"]
    code, out, err = await tideflow(env.url, "subscriptions", "show", sub_id)
    assert code == 0, err
    assert json.loads(out)["id"] == sub_id

    code, out, err = await tideflow(
        env.url, "subscriptions", "create", "--bus", "orders", "--sink", env.sink.url,
        "--sql", "type =",
    )  # fmt: skip
    assert code == 1
    assert "filters[0].sql" in err
    assert "Traceback" not in err

    code, out, err = await tideflow(env.url, "subscriptions", "pause", sub_id)
    assert (code, out.split()[:2]) == (0, [sub_id, "paused"]), err
    code, out, err = await tideflow(env.url, "subscriptions", "resume", sub_id)
    assert (code, out.split()[:2]) == (0, [sub_id, "active"]), err
    code, out, err = await tideflow(env.url, "subscriptions", "reset", sub_id, "--offset", "1")
    assert (code, out.split()[2]) == (0, "offset=0"), err
    code, _, err = await tideflow(env.url, "subscriptions", "reset", sub_id)
    assert code == 2
    assert "--offset or --time" in err

    code, out, err = await tideflow(env.url, "subscriptions", "delete", sub_id)
    assert (code, out.strip()) == (0, f"deleted subscription {sub_id}")
    code, _, err = await tideflow(env.url, "subscriptions", "show", sub_id)
    assert code == 1
    assert sub_id in err
