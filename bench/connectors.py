"""Connectors: throughput of a source into a bus against a loop of its raw client library.

Run by hand, on a machine with the services the connector tests use:
``python bench/connectors.py [--dsn URL] [--records 5000] [--rounds 3]``.
Without ``--dsn`` (or ``TIDEFLOW_BENCH_DATABASE_URL``) an embedded PostgreSQL is
started. Prints JSON.

For each source type measured, ``--records`` records are put in the external system
first; then, timed, (a) the connector's source (the class ``tideflow serve`` runs,
through :class:`~tideflow.connectors.runners.SourceRunner`: default mapping, append,
acknowledgement or position) moves them all onto a bus of its own, in scheduled mode
(it returns when caught up), and (b) the baseline, a plain loop of the same client
library does the same transfer: read a batch, build the same CloudEvents by hand,
append them to a bus of its own with the same event store, acknowledge. Rounds
alternate (a) and (b); the best of each is kept. Goal (issue 15): the source at
>= 0.5 of the loop for brokers, >= 0.3 for PostgreSQL row sources.

Measured: ``redis`` (Redis Streams, consumer group), ``nats`` (JetStream, durable pull
consumer), ``amqp`` (a RabbitMQ queue, prefetch 100) and ``postgres`` (a table by its
cursor column). Not measured yet: the MQTT source, the sinks, and the time from a
record published to a waiting instance resumed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import nats
import orjson
import redis.asyncio as aioredis

ROOT = str(Path(__file__).resolve().parents[1])
sys.path[:0] = [ROOT, str(Path(__file__).resolve().parent)]

from trigger import database  # noqa: E402

from tideflow import ids  # noqa: E402
from tideflow.clock import SYSTEM_CLOCK  # noqa: E402
from tideflow.connectors.base import SourceContext, source_factory  # noqa: E402
from tideflow.connectors.mapping import RecordMapping  # noqa: E402
from tideflow.connectors.runners import SourceRunner  # noqa: E402
from tideflow.db import create_pool  # noqa: E402
from tideflow.eventstore.gateway import PostgresEventStore  # noqa: E402

REDIS = "redis://127.0.0.1:6379"
NATS = "nats://127.0.0.1:4222"
AMQP = "amqp://guest:guest@127.0.0.1:5672/"
BATCH = 100


async def _connector(store: PostgresEventStore, kind: str, config: dict[str, Any]) -> float:
    """Seconds the connector's source takes to move everything there is onto a new bus."""
    name = f"bench-{ids.new_id()[:8]}"
    bus = f"b-{name}"
    await store.create_bus(bus)

    async def nothing(*_args: Any, **_kwargs: Any) -> None:
        return None

    context = SourceContext(
        name=name,
        config=config,
        position=None,
        clock=SYSTEM_CLOCK,
        scheduled=True,
        on_connection=lambda _up: None,
    )
    runner = SourceRunner(
        name=name,
        bus=bus,
        make=source_factory(kind),
        context=context,
        mapping=RecordMapping(name, kind, None, ids.new_id),
        store=store,
        save_position=nothing,
        progress=nothing,
        interval=1.0,
    )
    started = time.perf_counter()
    await source_factory(kind)(context).run(runner.emit)
    return time.perf_counter() - started


def _event(source: str, kind: str, record_id: str, channel: str, data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": record_id,
        "source": source,
        "type": f"tideflow.connector.{kind}",
        "subject": channel,
        "datacontenttype": "application/json",
        "data": data,
    }


# --- Redis Streams ---------------------------------------------------------------------


async def redis_fill(records: int) -> str:
    client: Any = aioredis.from_url(REDIS)
    stream = f"bench-{ids.new_id()[:8]}"
    try:
        pipe = client.pipeline()
        for i in range(records):
            pipe.xadd(stream, {"data": orjson.dumps({"i": i, "sku": "X-1"})})
        await pipe.execute()
    finally:
        await client.aclose()
    return stream


async def redis_loop(store: PostgresEventStore, stream: str) -> float:
    """The baseline: XREADGROUP, append, XACK -- what the source does, by hand."""
    bus = f"b-raw-{ids.new_id()[:8]}"
    await store.create_bus(bus)
    client: Any = aioredis.from_url(REDIS)
    group = f"raw-{ids.new_id()[:8]}"
    await client.xgroup_create(stream, group, id="0")
    started = time.perf_counter()
    try:
        while True:
            found = await client.xreadgroup(group, "raw", {stream: ">"}, BATCH, None)
            entries = found[0][1] if found else []
            if not entries:
                break
            events = [
                _event("/raw", "redis", f"{stream}:{i.decode()}", stream, orjson.loads(f[b"data"]))
                for i, f in entries
            ]
            await store.append(bus, events)
            await client.xack(stream, group, *[i for i, _ in entries])
        return time.perf_counter() - started
    finally:
        await client.aclose()


async def redis_pair(store: PostgresEventStore, records: int) -> tuple[float, float]:
    stream = await redis_fill(records)
    try:
        config = {"url": REDIS, "stream": stream, "batch": BATCH, "interval": 0.05}
        connector = await _connector(store, "redis", config)
        raw = await redis_loop(store, stream)
        return connector, raw
    finally:
        client: Any = aioredis.from_url(REDIS)
        await client.delete(stream)
        await client.aclose()


# --- NATS JetStream --------------------------------------------------------------------


async def nats_pair(store: PostgresEventStore, records: int) -> tuple[float, float]:
    run = ids.new_id()[:8]
    stream, subject = f"BENCH_{run}", f"bench.{run}"
    nc = await nats.connect(NATS)
    js = nc.jetstream()
    try:
        await js.add_stream(name=stream, subjects=[subject])
        for i in range(records):
            await js.publish(subject, orjson.dumps({"i": i, "sku": "X-1"}))
        config = {"url": NATS, "subject": subject, "stream": stream, "batch": BATCH,
                  "interval": 0.2}  # fmt: skip
        connector = await _connector(store, "nats", config)
        raw = await nats_loop(store, stream, subject)
        return connector, raw
    finally:
        await js.delete_stream(stream)
        await nc.close()


async def nats_loop(store: PostgresEventStore, stream: str, subject: str) -> float:
    """The baseline: connect, pull a batch, append, ack -- what the source does, by hand."""
    bus = f"b-raw-{ids.new_id()[:8]}"
    await store.create_bus(bus)
    started = time.perf_counter()
    nc = await nats.connect(NATS)
    try:
        sub = await nc.jetstream().pull_subscribe(subject, durable="raw", stream=stream)
        while True:
            try:
                messages = await sub.fetch(BATCH, timeout=0.2)
            except TimeoutError:  # nats' own or asyncio's
                return time.perf_counter() - started
            events = [
                _event("/raw", "nats", f"{stream}:{m.metadata.sequence.stream}", m.subject, data)
                for m in messages
                for data in [orjson.loads(m.data)]
            ]
            await store.append(bus, events)
            for message in messages:
                await message.ack()
    finally:
        await nc.close()


# --- AMQP (RabbitMQ) -------------------------------------------------------------------


async def amqp_pair(store: PostgresEventStore, records: int) -> tuple[float, float]:
    queue_name = f"bench-{ids.new_id()[:8]}"
    connection = await aio_pika.connect(AMQP)
    try:
        channel = await connection.channel()
        await channel.declare_queue(queue_name, durable=True)
        for round_name in ("connector", "raw"):
            for i in range(records):
                body = orjson.dumps({"i": i, "sku": "X-1"})
                message = aio_pika.Message(body, message_id=f"{round_name}-{i}")
                await channel.default_exchange.publish(message, routing_key=queue_name)
            if round_name == "connector":
                config = {"url": AMQP, "queue": queue_name, "prefetch": BATCH, "interval": 0.2}
                connector = await _connector(store, "amqp", config)
            else:
                raw = await amqp_loop(store, queue_name)
        return connector, raw
    finally:
        channel = await connection.channel()
        await channel.queue_delete(queue_name)
        await connection.close()


async def amqp_loop(store: PostgresEventStore, queue_name: str) -> float:
    """The baseline: connect, consume with a prefetch, append a batch, ack it -- by hand."""
    bus = f"b-raw-{ids.new_id()[:8]}"
    await store.create_bus(bus)
    started = time.perf_counter()
    connection = await aio_pika.connect(AMQP)
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=BATCH)
        queue = await channel.declare_queue(queue_name, durable=True)
        arrived: asyncio.Queue[Any] = asyncio.Queue()
        await queue.consume(arrived.put, no_ack=False)
        while True:
            try:
                async with asyncio.timeout(0.2):
                    batch = [await arrived.get()]
            except TimeoutError:
                return time.perf_counter() - started
            while len(batch) < BATCH and not arrived.empty():
                batch.append(arrived.get_nowait())
            events = [
                _event("/raw", "amqp", m.message_id, queue_name, orjson.loads(m.body))
                for m in batch
            ]
            await store.append(bus, events)
            await batch[-1].ack(multiple=True)
    finally:
        await connection.close()


# --- PostgreSQL rows -------------------------------------------------------------------


async def postgres_pair(store: PostgresEventStore, dsn: str, records: int) -> tuple[float, float]:
    table = f"bench_{ids.new_id()[:8]}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, sku text, qty int)")
        await conn.copy_records_to_table(
            table, records=[(i, "X-1", i % 3) for i in range(1, records + 1)]
        )
        config = {"url": dsn, "table": table, "batch": 500, "interval": 0.05}
        connector = await _connector(store, "postgres", config)
        raw = await postgres_loop(store, dsn, table)
        return connector, raw
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()


async def postgres_loop(store: PostgresEventStore, dsn: str, table: str) -> float:
    """The baseline: connect, SELECT by the cursor, append -- what the source does, by hand."""
    bus = f"b-raw-{ids.new_id()[:8]}"
    await store.create_bus(bus)
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)  # the source connects in its timed run too
    try:
        cursor = 0
        while True:
            rows = await conn.fetch(  # the table's name is the bench's own
                f"SELECT id, sku, qty FROM {table} WHERE id > $1 ORDER BY id LIMIT 500",  # noqa: S608
                cursor,
            )
            if not rows:
                return time.perf_counter() - started
            cursor = rows[-1]["id"]
            events = [
                _event("/raw", "postgres", f"{table}:{r['id']}", table, dict(r)) for r in rows
            ]
            await store.append(bus, events)
    finally:
        await conn.close()


# --- the run ---------------------------------------------------------------------------


async def measure(
    pair: Callable[[], Awaitable[tuple[float, float]]], records: int, rounds: int
) -> dict[str, Any]:
    connector: list[float] = []
    raw: list[float] = []
    for _ in range(rounds):
        c, r = await pair()
        connector.append(c)
        raw.append(r)
    best_c, best_r = min(connector), min(raw)
    return {
        "records": records,
        "connector_per_s": round(records / best_c),
        "raw_loop_per_s": round(records / best_r),
        "ratio": round(best_r / best_c, 2),
        "connector_s": [round(x, 3) for x in connector],
        "raw_loop_s": [round(x, 3) for x in raw],
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"bench": "connectors", "python": platform.python_version()}
    async with database(args.dsn) as dsn:
        pool = await create_pool(dsn, min_size=2, max_size=8)
        try:
            async with PostgresEventStore(pool) as store:
                n, rounds = args.records, args.rounds
                out["redis"] = await measure(lambda: redis_pair(store, n), n, rounds)
                out["nats"] = await measure(lambda: nats_pair(store, n), n, rounds)
                out["amqp"] = await measure(lambda: amqp_pair(store, n), n, rounds)
                out["postgres"] = await measure(lambda: postgres_pair(store, dsn, n), n, rounds)
        finally:
            await pool.close()
    out["load_average"] = os.getloadavg()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("TIDEFLOW_BENCH_DATABASE_URL"))
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(orjson.dumps(asyncio.run(run(args)), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
