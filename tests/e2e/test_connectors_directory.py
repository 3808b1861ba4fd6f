"""The directory source through a real ``tideflow serve --connectors FILE``.

Files renamed into a directory become events on the default bus, the order workflow
starts on each and produces an accepted event (the workflow's output, on the bus);
each file is moved to ``.done/`` once its event is committed. A file put back with the
same name and content is the same record (no second event); one larger than
``maxBytes`` is moved to ``.rejected/`` unread. Over HTTP a directory source is refused:
it reads the server's files.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.connectors import bus_events, eventually, served, write_order_workflow
from tests.support.served import copied_database

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
SOURCE = "/connectors/incoming"


@pytest.fixture
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    async with copied_database(pg_server_url, pg_template, f"t_{_db_names[0]}_dir") as url:
        yield url


def drop(folder: Path, name: str, content: bytes) -> None:
    """Write ``content`` beside the directory's files, then rename it in (atomic)."""
    partial = folder / f".{name}.part"
    partial.write_bytes(content)
    partial.rename(folder / name)


async def _of(http: httpx.AsyncClient, kind: str) -> list[dict[str, Any]]:
    return [e for e in await bus_events(http, "default") if e["type"] == kind]


async def test_files_in_events_out_each_file_moved_after_its_commit(
    database: str, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    drop(inbox, "order-1.json", json.dumps({"id": 1, "total": 10}).encode())
    drop(inbox, "ignored.txt", b"not an order")  # the pattern takes *.json only
    declared = {"connectors": [{
        "name": "incoming", "kind": "source", "type": "directory", "bus": "default",
        "config": {"path": str(inbox), "pattern": "*.json", "settle": 0, "interval": 0.1,
                   "maxBytes": 100},
        "mapping": '{type: "com.example.order"}',
    }]}  # fmt: skip
    connectors = tmp_path / "connectors.yaml"
    connectors.write_text(yaml.safe_dump(declared))
    flows = write_order_workflow(tmp_path / "flows", SOURCE)
    args = ("--workflows", str(flows), "--connectors", str(connectors))
    async with served(database, tmp_path, *args) as server, server.async_client() as http:
        drop(inbox, "order-2.json", json.dumps({"id": 2, "total": 20}).encode())
        drop(inbox, "huge.json", json.dumps({"id": 3, "pad": "x" * 200}).encode())

        async def accepted() -> list[dict[str, Any]] | None:
            found = await _of(http, "com.example.order.accepted")
            return found if len(found) >= 2 else None

        out = await eventually(accepted)
        assert sorted(e["data"]["orderId"] for e in out) == [1, 2]
        events = await _of(http, "com.example.order")
        assert {e["source"] for e in events} == {SOURCE}
        assert sorted(e["subject"] for e in events) == ["order-1.json", "order-2.json"]
        assert sorted(p.name for p in (inbox / ".done").iterdir()) == [
            "order-1.json", "order-2.json"
        ]  # fmt: skip
        assert [p.name for p in (inbox / ".rejected").iterdir()] == ["huge.json"]
        assert sorted(p.name for p in inbox.iterdir()) == [".done", ".rejected", "ignored.txt"]

        # The same file again (as after a crash before its move): the same event, not a new one.
        drop(inbox, "order-1.json", json.dumps({"id": 1, "total": 10}).encode())

        async def moved_again() -> bool:
            return not (inbox / "order-1.json").exists()

        await eventually(moved_again)
        shown = (await http.get("/connectors/incoming")).json()
        assert shown["activity"]["connected"] is True
        assert len(await _of(http, "com.example.order")) == 2

        refused = await http.post("/connectors", json={
            "name": "sneaky", "kind": "source", "type": "directory", "bus": "default",
            "config": {"path": "/etc"},
        })  # fmt: skip
        assert refused.status_code == 422, refused.text
        assert "operator" in refused.text
        assert (await http.get("/connectors/sneaky")).status_code == 404
