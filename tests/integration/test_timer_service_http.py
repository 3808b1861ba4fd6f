"""Delayed CloudEvents through a real HTTP server on 127.0.0.1, PostgreSQL behind it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson

from tests.support.auth import admin_tokens, bearer
from tests.support.cli import run_cli as tideflow_cli
from tideflow.api.app import create_app
from tideflow.api.services import Services
from tideflow.api.testserver import serve_app
from tideflow.clock import Clock
from tideflow.eventstore.gateway import PostgresEventStore
from tideflow.isotime import format_timestamp, parse_timestamp
from tideflow.settings import Settings
from tideflow.testing import ManualClock
from tideflow.timer.delayed import DELAYED_EVENT_KIND, DelayingAppender, open_timer_service
from tideflow.timer.service import TimerService

TICK = 0.01
CE = "application/cloudevents+json"


def event(i: int, **extensions: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"e-{i}",
        "source": "/tests/timers",
        "type": "com.example.delayed",
        "data": {"n": i},
        **extensions,
    }


TOKENS, TOKEN = admin_tokens()


def opener(
    pool: asyncpg.Pool, clock: Clock, hold: list[TimerService]
) -> Callable[[Settings], AbstractAsyncContextManager[Services]]:
    @asynccontextmanager
    async def open_services(settings: Settings) -> AsyncIterator[Services]:
        store = PostgresEventStore(pool, clock=clock)
        await store.start()
        try:
            async with open_timer_service(pool, store, clock, tick=TICK) as timers:
                hold.append(timers)
                yield Services(
                    settings=settings,
                    events=store,
                    clock=clock,
                    timers=timers,
                    ingest=DelayingAppender(
                        store, timers, clock, timedelta(seconds=settings.event_delay_limit)
                    ),
                    tokens=TOKENS,
                )
        finally:
            await store.stop()

    return open_services


@asynccontextmanager
async def server(
    pool: asyncpg.Pool, clock: Clock, settings: Settings | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, TimerService]]:
    hold: list[TimerService] = []
    app = create_app(settings or Settings(), opener(pool, clock, hold))
    async with (
        serve_app(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers=bearer(TOKEN)) as http,
    ):
        yield http, hold[0]


async def post(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(
        "/buses/default/events", content=orjson.dumps(body), headers={"content-type": CE}
    )
    assert response.status_code == 202, response.text
    ack: dict[str, Any] = response.json()["events"][0]
    return ack


async def bus_events(http: httpx.AsyncClient, wait: float = 0) -> list[dict[str, Any]]:
    response = await http.get("/buses/default/events", params={"wait": wait})
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


async def test_event_with_deliverytime_appears_when_due_not_before(pool: asyncpg.Pool) -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    async with server(pool, clock) as (http, timers):
        due = clock.now() + timedelta(seconds=2)
        sent = event(1, deliverytime=format_timestamp(due), extra="kept")
        ack = await post(http, sent)
        assert ack["scheduled"] is True
        assert ack["offset"] is None
        assert parse_timestamp(ack["deliveryTime"]) == due
        listed = (await http.get("/buses/default/scheduled")).json()["scheduled"]
        assert [item["timerId"] for item in listed] == [ack["timerId"]]
        clock.advance(1.99)  # not before: just ahead of the due time the bus is still empty
        assert await timers.run_once() == []
        assert await bus_events(http) == []
        clock.advance(0.01)
        await timers.run_once()  # fires it, unless the service's own loop just did
        records = await bus_events(http, wait=5)
    assert len(records) == 1
    assert records[0]["event"] == sent  # every attribute preserved
    async with pool.acquire() as conn:
        stored_at = await conn.fetchval("SELECT stored_at FROM tideflow_events WHERE ce_id = 'e-1'")
    assert stored_at == due  # appended when due, by the injected clock


async def test_delay_list_and_cancel_with_an_injected_clock(pool: asyncpg.Pool) -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    async with server(pool, clock) as (http, timers):
        keep = await post(http, event(1, delay="PT60S"))
        drop = await post(http, event(2, delay="PT30S"))
        now = await post(http, event(3))  # no delivery attribute: appended at once
        assert now["offset"] == 1
        assert keep["deliveryTime"] == "2026-01-01T00:01:00Z"
        listed = (await http.get("/buses/default/scheduled")).json()["scheduled"]
        assert [item["event"]["id"] for item in listed] == ["e-2", "e-1"]
        shown = await http.get(f"/buses/default/scheduled/{keep['timerId']}")
        assert shown.json()["event"]["id"] == "e-1"
        assert (await http.get("/buses/nope/scheduled")).status_code == 404
        elsewhere = await http.get(f"/buses/other/scheduled/{keep['timerId']}")
        assert elsewhere.status_code == 404
        gone = await http.delete(f"/buses/default/scheduled/{drop['timerId']}")
        assert gone.status_code == 204
        again = await http.delete(f"/buses/default/scheduled/{drop['timerId']}")
        assert again.status_code == 404
        assert again.headers["content-type"] == "application/problem+json"
        clock.advance(61)
        await timers.run_once()
        ids = [record["event"]["id"] for record in await bus_events(http)]
        assert ids == ["e-3", "e-1"]
        timers_page = (await http.get("/timers", params={"state": "all"})).json()["timers"]
        assert {t["state"] for t in timers_page} == {"fired", "cancelled"}


async def test_reposting_a_held_event_holds_it_once(pool: asyncpg.Pool) -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    async with server(pool, clock) as (http, timers):
        first = await post(http, event(7, delay="PT10S"))
        second = await post(http, event(7, delay="PT10S"))
        assert second["timerId"] == first["timerId"]
        clock.advance(10)
        await timers.run_once()
        assert len(await bus_events(http)) == 1


async def test_bad_delivery_attributes_are_rejected_with_the_attribute(pool: asyncpg.Pool) -> None:
    async with server(pool, ManualClock()) as (http, _):
        for extensions, attribute in [
            ({"deliverytime": "tomorrow"}, "deliverytime"),
            ({"delay": "5 minutes"}, "delay"),
            ({"delay": "PT5S", "deliverytime": "2030-01-01T00:00:00Z"}, "delay"),
        ]:
            response = await http.post(
                "/buses/default/events",
                content=orjson.dumps(event(9, **extensions)),
                headers={"content-type": CE},
            )
            assert response.status_code == 400, response.text
            assert attribute in response.text
        assert await bus_events(http) == []


ODD_DELIVERY_ATTRIBUTES: list[tuple[dict[str, Any], str]] = [
    ({"deliverytime": 1767225600}, "deliverytime"),
    ({"deliverytime": True}, "deliverytime"),
    ({"deliverytime": {"at": "2026-01-02T00:00:00Z"}}, "deliverytime"),
    ({"deliverytime": ["2026-01-02T00:00:00Z"]}, "deliverytime"),
    ({"deliverytime": "9999-12-31T23:59:59-23:59"}, "deliverytime"),
    ({"deliverytime": "0001-01-01T00:00:00+01:00"}, "deliverytime"),
    ({"deliverytime": "99999-01-01T00:00:00Z"}, "deliverytime"),
    ({"deliverytime": "2026-13-45T25:61:61Z"}, "deliverytime"),
    ({"deliverytime": "2026-01-02T00:00:00"}, "deliverytime"),
    ({"deliverytime": "2027-06-01T00:00:00Z"}, "deliverytime"),  # beyond the horizon
    ({"deliverytime": "x" * 100_000}, "deliverytime"),
    ({"delay": 30}, "delay"),
    ({"delay": 1.5}, "delay"),
    ({"delay": False}, "delay"),
    ({"delay": ["PT5S"]}, "delay"),
    ({"delay": "-PT5S"}, "delay"),
    ({"delay": "P99999999999Y"}, "delay"),
    ({"delay": "PT99999999999999999999S"}, "delay"),
    ({"delay": "P1000000000D"}, "delay"),
    ({"delay": "P2D"}, "delay"),  # beyond the horizon
    ({"delay": "P"}, "delay"),
    ({"delay": "PT1e400S"}, "delay"),
]


async def test_odd_delivery_attributes_are_400_naming_the_attribute(pool: asyncpg.Pool) -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    async with server(pool, clock, Settings(event_delay_limit=86400)) as (http, _):
        for extensions, attribute in ODD_DELIVERY_ATTRIBUTES:
            response = await http.post(
                "/buses/default/events",
                content=orjson.dumps(event(9, **extensions)),
                headers={"content-type": CE},
            )
            assert response.status_code == 400, (extensions, response.text)
            problem = response.json()
            assert attribute in problem["detail"], (extensions, problem)
            assert "Traceback" not in response.text
            assert "Error" not in problem["detail"], problem
            assert len(response.content) < 2000, extensions
        assert await bus_events(http) == []
        within = await post(http, event(10, delay="PT23H"))
        assert within["scheduled"] is True


async def test_cli_timers_list_and_events_send_with_delay(pool: asyncpg.Pool) -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    async with server(pool, clock) as (http, _):
        url = str(http.base_url).rstrip("/")
        code, out, err = await tideflow_cli(
            url,
            *("events", "send", "--type", "t", "--source", "/cli", "--ext", "delay=PT60S"),
            token=TOKEN,
        )
        assert code == 0, err
        assert "default scheduled for 2026-01-01T00:01:00Z" in out
        code, out, err = await tideflow_cli(
            url, "timers", "list", "--kind", DELAYED_EVENT_KIND, token=TOKEN
        )
        assert code == 0, err
        assert out.split("\t")[:3] == ["2026-01-01T00:01:00Z", "pending", DELAYED_EVENT_KIND]
        code, out, err = await tideflow_cli(url, "timers", "list", "--state", "nope", token=TOKEN)
        assert code == 1
        assert "state must be pending, fired, cancelled or all" in err
        assert "Traceback" not in err
