"""AsyncAPI calls end to end on a real ``tideflow serve``: a 0.8 ``asyncapi`` function
publishes to a RabbitMQ queue, a DSL 1.0 ``call: asyncapi`` receives from it.

The ``--workflows`` folder holds the AsyncAPI document and both definitions; the
machine's RabbitMQ carries the messages. A definition sent over HTTP may not name
a local AsyncAPI document.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import httpx
import pytest

from tests.support.brokers import AMQP
from tests.support.served import LOCAL, auth_for, copied_database, serve_process, start_and_wait
from tideflow.ids import new_id

DOC = """
asyncapi: 2.6.0
info: {title: Orders, version: 1.0.0}
servers:
  rabbit: {url: 'amqp://guest:guest@127.0.0.1:5672/', protocol: amqp}
channels:
  QUEUE:
    publish: {operationId: sendOrder}
    subscribe: {operationId: onOrder}
"""

ANNOUNCE = """
id: announce
version: '1.0'
specVersion: '0.8'
start: Send
functions:
  - name: sendOrder
    type: asyncapi
    operation: orders.asyncapi.yaml#sendOrder
states:
  - name: Send
    type: operation
    actions:
      - functionRef:
          refName: sendOrder
          arguments:
            n: ${ .n }
    end: true
"""

COLLECT = """
document: {dsl: '1.0.3', namespace: test, name: collect, version: '1.0.0'}
do:
  - receive:
      call: asyncapi
      with:
        document: {endpoint: orders.asyncapi.yaml}
        operation: onOrder
        subscription:
          consume: {amount: 2}
"""


@pytest.fixture
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    name = f"t_{_db_names[0]}_asyncapi_served"
    async with copied_database(pg_server_url, pg_template, name) as url:
        yield url


@pytest.fixture
async def queue() -> AsyncIterator[str]:
    name = f"orders-{new_id()[:12]}"
    yield name
    connection = await aio_pika.connect(AMQP)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(name)


def test_a_08_function_publishes_and_a_10_call_receives(
    database: str, queue: str, tmp_path: Path
) -> None:
    folder = tmp_path / "resources"
    folder.mkdir()
    (folder / "orders.asyncapi.yaml").write_text(DOC.replace("QUEUE", queue))
    (folder / "announce.sw.yaml").write_text(ANNOUNCE)
    (folder / "collect.yaml").write_text(COLLECT)
    home = tmp_path / "home"
    home.mkdir()
    with serve_process(database, home, "--workflows", str(folder), *LOCAL) as server:
        for n in (1, 2):
            sent = start_and_wait(server.url, "announce", {"n": n})
            assert sent["status"] == "completed", sent.get("error")
        received = start_and_wait(server.url, "test.collect", {})
        refused = httpx.post(
            f"{server.url}/workflows",
            content=ANNOUNCE.replace("id: announce", "id: sent"),
            headers={"content-type": "application/yaml", **auth_for(server.url)},
            timeout=30,
        )
    assert received["status"] == "completed", received
    assert received["output"] == [{"n": 1}, {"n": 2}]
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["errors"]
    assert error["path"] == "functions[0].operation"
    assert "local AsyncAPI document" in error["message"]
