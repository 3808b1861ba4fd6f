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

Sources measured: ``redis`` (Redis Streams, consumer group), ``nats`` (JetStream, durable
pull consumer), ``amqp`` (a RabbitMQ queue, prefetch 100), ``postgres`` (a table by its
cursor column) and ``mqtt`` (a topic at QoS 1 over a persistent session; MQTT keeps
nothing for a client that never subscribed, so both sides subscribe first and the time
runs from the first publish until the bus holds every record).

Sinks (``--measure sinks``): ``--records`` events are appended to a bus first; timed,
(a) a sink connector created through the same :class:`ConnectorService` ``tideflow
serve`` runs (its internal subscription from the earliest offset, 64 in flight, the
mapping ``.data``) until its subscription has committed the last offset, and (b) a loop
reading the bus 500 at a time and writing each event's data with the raw client library,
64 writes in flight. Goal: >= 0.5 of the loop for brokers, >= 0.3 for PostgreSQL.

``--measure sources,sinks`` (default both).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aio_pika
import aiomqtt
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
from tideflow.connectors.gateway import PostgresConnectors  # noqa: E402
from tideflow.connectors.mapping import RecordMapping, encode_message  # noqa: E402
from tideflow.connectors.runners import SourceRunner  # noqa: E402
from tideflow.connectors.service import ConnectorService, subscription_id  # noqa: E402
from tideflow.db import create_pool  # noqa: E402
from tideflow.eventstore.gateway import PostgresEventStore  # noqa: E402
from tideflow.triggers.dispatcher import Dispatcher  # noqa: E402
from tideflow.triggers.gateway import PostgresSubscriptions  # noqa: E402

MQTT_HOST = "127.0.0.1"
MQTT = f"mqtt://{MQTT_HOST}:1883"
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


# --- MQTT (Mosquitto) ------------------------------------------------------------------


async def _bus_filled(store: PostgresEventStore, bus: str, records: int, seconds: float) -> bool:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        found = await store.read(bus, records - 1, 1)
        if found:
            return True
        await asyncio.sleep(0.01)
    return False


async def _publish_mqtt(topic: str, records: int, tag: str) -> float:
    """Publish ``records`` at QoS 1 (each acknowledged by the broker); the start time."""
    async with aiomqtt.Client(MQTT_HOST, 1883, identifier=f"bench-pub-{tag}") as client:
        started = time.perf_counter()
        for i in range(records):
            await client.publish(topic, orjson.dumps({"i": i, "sku": "X-1"}), qos=1)
    return started


async def mqtt_pair(store: PostgresEventStore, records: int) -> tuple[float, float]:
    run = ids.new_id()[:8]
    # the connector: its source runs continuously; its session subscribes before the publish
    name, bus = f"bench-{run}", f"b-bench-{run}"
    await store.create_bus(bus)
    subscribed = asyncio.Event()

    async def nothing(*_args: Any, **_kwargs: Any) -> None:
        return None

    context = SourceContext(
        name=name,
        config={"url": MQTT, "topic": f"bench/{run}/c", "qos": 1, "clientId": f"bench-c-{run}"},
        position=None,
        clock=SYSTEM_CLOCK,
        scheduled=False,
        on_connection=lambda up: subscribed.set() if up else None,
    )
    runner = SourceRunner(
        name=name, bus=bus, make=source_factory("mqtt"), context=context,
        mapping=RecordMapping(name, "mqtt", None, ids.new_id), store=store,
        save_position=nothing, progress=nothing, interval=1.0,
    )  # fmt: skip
    task = asyncio.create_task(source_factory("mqtt")(context).run(runner.emit))
    try:
        await asyncio.wait_for(subscribed.wait(), 10)
        started = await _publish_mqtt(f"bench/{run}/c", records, f"c-{run}")
        if not await _bus_filled(store, bus, records, 120):
            raise RuntimeError("the MQTT source did not receive every record (broker drops?)")
        connector = time.perf_counter() - started
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    raw = await mqtt_loop(store, f"bench/{run}/r", records, run)
    return connector, raw


async def mqtt_loop(store: PostgresEventStore, topic: str, records: int, run: str) -> float:
    """The baseline: a persistent-session subscriber that appends what arrived, then acks."""
    bus = f"b-raw-{run}"
    await store.create_bus(bus)
    client = aiomqtt.Client(MQTT_HOST, 1883, identifier=f"bench-r-{run}", clean_session=False)
    client._client.manual_ack_set(True)  # as the source does: ack after the append
    async with client:
        await client.subscribe(topic, qos=1)
        publisher = asyncio.create_task(_publish_mqtt(topic, records, f"r-{run}"))
        got = 0
        messages = client.messages
        async for message in messages:
            batch = [message]
            while len(batch) < BATCH and len(messages):
                batch.append(await anext(messages))
            events = [
                _event("/raw", "mqtt", f"{run}:{got + n}", str(m.topic), orjson.loads(m.payload))  # type: ignore[arg-type]
                for n, m in enumerate(batch)
            ]
            await store.append(bus, events)
            for done in batch:
                client._client.ack(done.mid, done.qos)
            got += len(batch)
            if got >= records:
                break
        started = await publisher
    return time.perf_counter() - started


# --- sinks ------------------------------------------------------------------------------


class _Sinks:
    """A dispatcher and connector service as ``tideflow serve`` runs them, and raw writers."""

    def __init__(self, store: PostgresEventStore, pool: asyncpg.Pool, dsn: str) -> None:
        self.store, self.pool, self.dsn = store, pool, dsn

    async def fill(self, records: int) -> str:
        bus = f"s-{ids.new_id()[:8]}"
        await self.store.create_bus(bus)
        for first in range(0, records, 1000):
            await self.store.append(bus, [
                {"specversion": "1.0", "id": f"e-{i}", "source": "/bench", "type": "bench",
                 "data": {"i": i, "sku": "X-1", "qty": i % 3}}
                for i in range(first, min(records, first + 1000))
            ])  # fmt: skip
        return bus

    async def connector(self, kind: str, config: dict[str, Any], records: int) -> float:
        bus = await self.fill(records)
        name = f"sink-{ids.new_id()[:8]}"
        async with Dispatcher(self.store, PostgresSubscriptions(self.pool)) as dispatcher:
            service = ConnectorService(PostgresConnectors(self.pool), self.store, dispatcher)
            await service.start()
            try:
                started = time.perf_counter()
                await service.create({
                    "name": name, "kind": "sink", "type": kind, "bus": bus,
                    "config": config, "mapping": ".data",
                    "subscription": {"from": "earliest", "delivery": {"maxInFlight": 64}},
                })  # fmt: skip
                while (dispatcher.committed(subscription_id(name)) or 0) < records:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
                elapsed = time.perf_counter() - started
                await service.delete(name)
            finally:
                await service.stop()
        return elapsed

    async def raw(self, write: Callable[[Any], Awaitable[None]], records: int) -> float:
        """Read the bus 500 at a time; write each event's data, 64 writes in flight."""
        bus = await self.fill(records)
        started = time.perf_counter()
        lanes = asyncio.Semaphore(64)

        async def one(data: Any) -> None:
            async with lanes:
                await write(data)

        after = 0
        while after < records:
            batch = await self.store.read(bus, after, 500)
            await asyncio.gather(*(one(e.event["data"]) for e in batch))
            after = batch[-1].offset
        return time.perf_counter() - started


async def redis_sink_pair(sinks: _Sinks, records: int) -> tuple[float, float]:
    stream = f"bench-sink-{ids.new_id()[:8]}"
    client: Any = aioredis.from_url(REDIS)
    try:
        connector = await sinks.connector("redis", {"url": REDIS, "stream": stream}, records)

        async def write(data: Any) -> None:
            await client.xadd(stream + "-raw", {"data": encode_message(data)})

        raw = await sinks.raw(write, records)
        return connector, raw
    finally:
        await client.delete(stream, stream + "-raw")
        await client.aclose()


async def nats_sink_pair(sinks: _Sinks, records: int) -> tuple[float, float]:
    run = ids.new_id()[:8]
    stream, subject = f"BENCHSINK_{run}", f"benchsink.{run}"
    nc = await nats.connect(NATS)
    js = nc.jetstream()
    try:
        await js.add_stream(name=stream, subjects=[subject, subject + ".raw"])
        connector = await sinks.connector("nats", {"url": NATS, "subject": subject}, records)

        async def write(data: Any) -> None:
            await js.publish(subject + ".raw", encode_message(data))

        raw = await sinks.raw(write, records)
        return connector, raw
    finally:
        await js.delete_stream(stream)
        await nc.close()


async def amqp_sink_pair(sinks: _Sinks, records: int) -> tuple[float, float]:
    queue_name = f"bench-sink-{ids.new_id()[:8]}"
    connection = await aio_pika.connect(AMQP)
    try:
        connector = await sinks.connector("amqp", {"url": AMQP, "queue": queue_name}, records)
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(queue_name + "-raw", durable=True)

        async def write(data: Any) -> None:
            message = aio_pika.Message(
                encode_message(data), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
            )
            await channel.default_exchange.publish(message, routing_key=queue_name + "-raw")

        raw = await sinks.raw(write, records)
        return connector, raw
    finally:
        channel = await connection.channel()
        await channel.queue_delete(queue_name)
        await channel.queue_delete(queue_name + "-raw")
        await connection.close()


async def mqtt_sink_pair(sinks: _Sinks, records: int) -> tuple[float, float]:
    run = ids.new_id()[:8]
    config = {"url": MQTT, "topic": f"benchsink/{run}", "qos": 1}
    connector = await sinks.connector("mqtt", config, records)
    async with aiomqtt.Client(MQTT_HOST, 1883, identifier=f"bench-sink-{run}") as client:

        async def write(data: Any) -> None:
            await client.publish(f"benchsink/{run}/raw", encode_message(data), qos=1)

        raw = await sinks.raw(write, records)
    return connector, raw


async def postgres_sink_pair(sinks: _Sinks, records: int) -> tuple[float, float]:
    table = f"bench_sink_{ids.new_id()[:8]}"
    conn = await asyncpg.connect(sinks.dsn)
    raw_pool = await asyncpg.create_pool(sinks.dsn, min_size=1, max_size=8)
    try:
        for name in (table, table + "_raw"):
            await conn.execute(f"CREATE TABLE {name} (i bigint, sku text, qty int)")
        connector = await sinks.connector("postgres", {"url": sinks.dsn, "table": table}, records)
        insert = (  # the sink's statement: one row from a JSON object
            f"INSERT INTO {table}_raw (i, sku, qty) SELECT i, sku, qty"  # noqa: S608
            f" FROM jsonb_populate_record(NULL::{table}_raw, $1::jsonb)"
        )

        async def write(data: Any) -> None:
            async with raw_pool.acquire() as c:
                await c.execute(insert, orjson.dumps(data).decode())

        raw = await sinks.raw(write, records)
        return connector, raw
    finally:
        await raw_pool.close()
        await conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_raw")
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
                if "sources" in args.measure:
                    sources = out["sources"] = {}
                    sources["redis"] = await measure(lambda: redis_pair(store, n), n, rounds)
                    sources["nats"] = await measure(lambda: nats_pair(store, n), n, rounds)
                    sources["amqp"] = await measure(lambda: amqp_pair(store, n), n, rounds)
                    sources["postgres"] = await measure(
                        lambda: postgres_pair(store, dsn, n), n, rounds
                    )
                    sources["mqtt"] = await measure(lambda: mqtt_pair(store, n), n, rounds)
                if "sinks" in args.measure:
                    kit = _Sinks(store, pool, dsn)
                    sinks = out["sinks"] = {}
                    for kind, pair in (
                        ("redis", redis_sink_pair), ("nats", nats_sink_pair),
                        ("amqp", amqp_sink_pair), ("mqtt", mqtt_sink_pair),
                        ("postgres", postgres_sink_pair),
                    ):  # fmt: skip
                        sinks[kind] = await measure(lambda p=pair: p(kit, n), n, rounds)
        finally:
            await pool.close()
    out["load_average"] = os.getloadavg()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("TIDEFLOW_BENCH_DATABASE_URL"))
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--measure", type=lambda v: set(v.split(",")), default={"sources", "sinks"},
        help="sources, sinks, or both (comma-separated)",
    )  # fmt: skip
    args = parser.parse_args()
    print(orjson.dumps(asyncio.run(run(args)), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
