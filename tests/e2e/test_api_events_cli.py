"""``tideflow events`` and ``tideflow buses`` as subprocesses against a real server.

The server runs in the test's event loop on 127.0.0.1 (uvicorn) over
PostgreSQL from the ``pool`` fixture; the commands are the real CLI.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.auth import admin_tokens
from tests.support.cli import run_cli
from tideflow.api.app import create_app
from tideflow.api.services import with_store
from tideflow.api.testserver import free_port, serve_app
from tideflow.eventstore.gateway import PostgresEventStore
from tideflow.settings import Settings

pytestmark = pytest.mark.slow


TOKENS, TOKEN = admin_tokens()


async def tideflow(server: str, *args: str) -> tuple[int, str, str]:
    """The CLI with an admin token."""
    return await run_cli(server, *args, token=TOKEN)


@pytest.fixture
async def server(pool: Any) -> AsyncIterator[str]:
    app = create_app(Settings(), with_store(PostgresEventStore(pool), tokens=TOKENS))
    async with serve_app(app) as url:
        yield url


async def test_buses_and_events_commands(server: str, tmp_path: Path) -> None:
    code, out, err = await tideflow(server, "buses", "create", "orders", "--max-age", "P1D")
    assert code == 0, err
    assert json.loads(out)["retention"] == {"maxAge": "P1D"}
    code, out, _ = await tideflow(server, "buses", "list")
    assert out.splitlines() == ["default\tkeep everything", "orders\tmaxAge=P1D"]

    send = ("events", "send", "--bus", "orders", "--type", "com.example.order", "--source", "/shop")
    code, out, err = await tideflow(
        server, *send, "--data", '{"n": 1}', "--ext", "region=eu", "--id", "o-1"
    )
    assert (code, out.strip()) == (0, "orders offset 1"), err
    code, out, _ = await tideflow(server, *send, "--id", "o-1")
    assert out.strip() == "orders offset 1 (duplicate)"
    data_file = tmp_path / "order.json"
    data_file.write_text('{"n": 2, "items": ["a"]}', encoding="utf-8")
    code, out, err = await tideflow(server, *send, "--data", f"@{data_file}")
    assert (code, out.strip()) == (0, "orders offset 2"), err

    code, out, _ = await tideflow(server, "buses", "show", "orders")
    shown = json.loads(out)
    assert (shown["name"], shown["firstOffset"], shown["lastOffset"]) == ("orders", 1, 2)

    tail = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tideflow.cli",
        "events",
        "tail",
        "orders",
        "--from",
        "1",
        env={**os.environ, "TIDEFLOW_SERVER": server, "TIDEFLOW_TOKEN": TOKEN},
        stdout=asyncio.subprocess.PIPE,
    )
    assert tail.stdout is not None
    try:
        lines = [json.loads(await asyncio.wait_for(tail.stdout.readline(), 30)) for _ in range(2)]
        await tideflow(server, *send, "--id", "o-3", "--subject", "late")
        lines.append(json.loads(await asyncio.wait_for(tail.stdout.readline(), 30)))
    finally:
        tail.kill()
        await tail.wait()
    assert [line["offset"] for line in lines] == [1, 2, 3]
    first = lines[0]["event"]
    assert (first["id"], first["region"], first["data"]) == ("o-1", "eu", {"n": 1})
    assert lines[1]["event"]["data"] == {"n": 2, "items": ["a"]}
    assert lines[2]["event"]["subject"] == "late"

    code, out, _ = await tideflow(server, "buses", "delete", "orders")
    assert (code, out.strip()) == (0, "deleted bus orders")
    code, out, err = await tideflow(server, "buses", "show", "orders")
    assert code == 1
    assert err.strip() == "error: no bus named 'orders' [HTTP 404]"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--data", "{oops"), "the data is not valid JSON"),
        (("--data", "@/no/such/file.json"), "cannot read /no/such/file.json"),
        (("--ext", "Bad_Name=x"), "invalid attribute name 'Bad_Name'"),
        (("--ext", "novalue"), "--ext 'novalue' is not of the form name=value"),
        (("--source", "has space"), "source must be a URI-reference"),
        (("--bus", "nope"), "no bus named 'nope' [HTTP 404]"),
    ],
)
async def test_send_errors_are_one_clear_line(
    server: str, args: tuple[str, ...], message: str
) -> None:
    base = {"--type": "t", "--source": "/s"}
    for flag in args[::2]:
        base.pop(flag, None)
    flat = [item for pair in base.items() for item in pair]
    code, out, err = await tideflow(server, "events", "send", *flat, *args)
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert message in err


async def test_unreachable_server_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = await tideflow(url, "buses", "list")
    assert code == 1
    assert err.startswith(f"error: cannot reach the Tideflow server at {url}")
    assert len(err.strip().splitlines()) == 1
