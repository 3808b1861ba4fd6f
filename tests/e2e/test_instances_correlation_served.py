"""Finding instances by a correlation value through a real ``tideflow serve``:
``GET /instances?correlation=KEY:VALUE`` (422 when malformed), ``tideflow instances list
--correlation``, the console's instance filter, and the typed client.

The look-up reads the correlation index, which holds the open event waits: an instance
is found while it waits for an event with that value, and no longer once the event came.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import get_type_hints

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.served import Served, serve_process
from tideflow.client import ApiClient, ApiError, Instance

KEYED = "test.keyed"
WORKFLOW = {  # tests/integration/test_correlation.py's, without its python: function
    "id": "keyed",
    "version": "1",
    "specVersion": "0.8",
    "start": "Gate",
    "events": [
        {
            "name": "Keyed",
            "type": KEYED,
            "source": "/test",
            "correlation": [
                {"contextAttributeName": "orderkey", "contextAttributeValue": "${ .key }"}
            ],
        }
    ],
    "states": [
        {"name": "Gate", "type": "inject", "data": {}, "transition": "Wait"},
        {
            "name": "Wait",
            "type": "event",
            "onEvents": [{"eventRefs": ["Keyed"], "eventDataFilter": {"toStateData": "${ .got }"}}],
            "end": True,
        },
    ],
}
KEYS = ("a", "b", "x:1")


@pytest.fixture
def server(pg_url: str, tmp_path: Path) -> Iterator[Served]:
    with serve_process(pg_url, tmp_path) as running:
        yield running


async def _waiting(http: httpx.AsyncClient, instance_id: str) -> None:
    deadline = time.monotonic() + 30
    while (await http.get(f"/instances/{instance_id}")).json()["status"] != "waiting":
        assert time.monotonic() < deadline, f"instance {instance_id} never waited"
        await asyncio.sleep(0.05)


async def _found(http: httpx.AsyncClient, value: str, **params: str) -> list[str]:
    answer = await http.get("/instances", params={"correlation": value, **params})
    assert answer.status_code == 200, answer.text
    return [i["id"] for i in answer.json()["instances"]]


async def test_instances_are_found_by_a_correlation_value_while_they_wait(
    server: Served,
) -> None:
    async with server.async_client() as http:
        deployed = await http.post(
            "/workflows", content=json.dumps(WORKFLOW), headers={"content-type": "application/json"}
        )
        assert deployed.status_code == 201, deployed.text
        ids = {}
        for key in KEYS:
            started = await http.post("/workflows/keyed/instances", json={"key": key})
            ids[key] = started.json()["id"]
        for instance_id in ids.values():
            await _waiting(http, instance_id)

        assert await _found(http, "orderkey:a") == [ids["a"]]
        assert await _found(http, "orderkey:x:1") == [ids["x:1"]]  # split at the first ':'
        assert await _found(http, "orderkey:a", status="completed") == []
        assert await _found(http, "orderkey:nobody") == []
        assert await _found(http, "otherkey:a") == []
        both = await http.get("/instances", params={"correlation": "orderkey:b", "order": "asc"})
        assert [i["id"] for i in both.json()["instances"]] == [ids["b"]]

        for malformed in ("orderkey", ":a", "orderkey:"):
            refused = await http.get("/instances", params={"correlation": malformed})
            assert refused.status_code == 422, (malformed, refused.text)
            assert refused.json()["path"] == "correlation"

        event = {"specversion": "1.0", "id": "ev-a", "source": "/test", "type": KEYED}
        sent = await http.post(
            "/events",
            json={**event, "orderkey": "a", "data": {"n": 1}},
            headers={"content-type": "application/cloudevents+json"},
        )
        assert sent.status_code == 202, sent.text
        ended = await http.get(f"/instances/{ids['a']}", params={"wait": 30})
        assert ended.json()["status"] == "completed"
        assert await _found(http, "orderkey:a") == []  # its wait is answered: not indexed now
        assert await _found(http, "orderkey:b") == [ids["b"]]

    await _check_cli(server, ids["b"], ids["x:1"])
    await _check_client(server, ids["b"])
    await _check_console(server, ids["b"], ids["x:1"])


async def _check_cli(server: Served, b_id: str, other: str) -> None:
    code, out, err = await run_cli(
        server.url, "instances", "list", "--correlation", "orderkey:b", token=server.token
    )
    assert code == 0, err
    assert b_id in out
    assert other not in out
    code, out, err = await run_cli(
        server.url, "instances", "list", "--correlation", "orderkey", token=server.token
    )
    assert code == 1
    assert "correlation" in err
    assert "Traceback" not in err


async def _check_client(server: Served, b_id: str) -> None:
    async with ApiClient(server.url, token=server.token) as client:
        found = await client.list_instances(correlation="orderkey:b")
        assert [i["id"] for i in found] == [b_id]
        assert set(found[0]) == set(get_type_hints(Instance))
        with pytest.raises(ApiError) as malformed:
            await client.list_instances(correlation="no-colon")
    assert (malformed.value.status, malformed.value.path) == (422, "correlation")


async def _check_console(server: Served, b_id: str, other: str) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as browser:
        login = await browser.post("/ui/login", data={"token": server.token, "next": "/"})
        assert login.status_code == 303, login.text
        page = await browser.get("/ui/instances", params={"correlation": "orderkey:b"})
        assert page.status_code == 200
        assert b_id in page.text
        assert other not in page.text
        assert 'value="orderkey:b"' in page.text  # the filter keeps what was asked
        bad = await browser.get("/ui/instances", params={"correlation": "orderkey"})
        assert bad.status_code == 400
        assert "correlation must be KEY:VALUE" in bad.text
