"""Workflows as subscribers on real PostgreSQL: correlation, early events, event starts.

The whole chain runs in-process as ``tideflow serve`` composes it: the event
store, the dispatcher, the durable runtime and the
:class:`~tideflow.triggers.correlation.WorkflowSubscriber` (the e2e tests run
the same chain in a real server process).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from tests.integration.durable_support import Calls
from tideflow.db import create_pool
from tideflow.errors import StoreError
from tideflow.eventstore.gateway import PostgresEventStore
from tideflow.eventstore.store import DEFAULT_BUS
from tideflow.runtime.gateway import PostgresRegistry
from tideflow.runtime.hosts.durable import DurableRuntime, RuntimeOptions
from tideflow.triggers.correlation import (
    PARTITIONS,
    WorkflowSubscriber,
    partition_subscription,
)
from tideflow.triggers.dispatcher import Dispatcher
from tideflow.triggers.gateway import PostgresSubscriptions

KEYED = "test.keyed"


def keyed_workflow(wf_id: str = "keyed", *, gate_first: bool = False) -> str:
    """Waits for one ``test.keyed`` event whose ``orderkey`` is the input's ``key``."""
    wait = {
        "name": "Wait",
        "type": "event",
        "onEvents": [{"eventRefs": ["Keyed"], "eventDataFilter": {"toStateData": "${ .got }"}}],
        "end": True,
    }
    # The start state is no event state: events resume these instances, they start none.
    gate: dict[str, Any] = {"name": "Gate", "type": "inject", "data": {}, "transition": "Wait"}
    if gate_first:
        gate = {
            "name": "Gate",
            "type": "operation",
            "actions": [
                {
                    "functionRef": {"refName": "slow", "arguments": {"n": 1}},
                    "actionDataFilter": {"toStateData": "${ .gated }"},
                }
            ],
            "transition": "Wait",
        }
    doc = {
        "id": wf_id,
        "version": "1",
        "specVersion": "0.8",
        "start": "Gate",
        "functions": [{"name": "slow", "type": "custom", "operation": "python:unused:slow"}],
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
        "states": [gate, wait],
    }
    return json.dumps(doc)


def keyed_event(key: str, n: int = 0, source: str = "/test") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"ev-{key}-{n}",
        "source": source,
        "type": KEYED,
        "orderkey": key,
        "data": {"key": key, "n": n},
    }


@dataclass
class System:
    pool: asyncpg.Pool
    store: PostgresEventStore
    runtime: DurableRuntime
    registry: PostgresRegistry
    subscriber: WorkflowSubscriber
    calls: Calls

    async def deploy(self, source: str) -> None:
        doc = json.loads(source)
        await self.registry.deploy(doc["id"], doc["version"], source, "application/json", doc)

    async def count(self, sql: str, *args: Any) -> int:
        async with self.pool.acquire() as conn:
            return int(await conn.fetchval(sql, *args))

    async def until(self, sql: str, expected: int, *args: Any, seconds: float = 120) -> int:
        """Poll a count until it reaches ``expected`` (the runtime runs on the real clock)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            found = await self.count(sql, *args)
            if found >= expected or loop.time() > deadline:
                return found
            await asyncio.sleep(0.05)


@asynccontextmanager
async def running(pg_url: str, pool_size: int = 12) -> AsyncIterator[System]:
    pool = await create_pool(pg_url, min_size=2, max_size=pool_size)
    calls = Calls()
    try:
        async with PostgresEventStore(pool) as store:

            async def emit(event: dict[str, Any]) -> None:
                await store.append(DEFAULT_BUS, [event])

            options = RuntimeOptions(functions=calls.functions(), max_running=20_000)
            async with DurableRuntime(pool, options, emit=emit) as runtime:
                dispatcher = Dispatcher(store, PostgresSubscriptions(pool))
                await dispatcher.start()
                subscriber = WorkflowSubscriber(pool, runtime, dispatcher)
                await subscriber.start()
                system = System(pool, store, runtime, runtime.registry, subscriber, calls)
                try:
                    yield system
                finally:
                    await system.subscriber.stop()
                    await system.subscriber.dispatcher.stop()
    finally:
        await pool.close()


WAITING = "SELECT count(*) FROM tideflow_correlation_keys WHERE event_type = $1"
COMPLETED = "SELECT count(*) FROM tideflow_instances WHERE status = 'completed'"


async def start_many(runtime: DurableRuntime, wf_id: str, keys: list[str]) -> dict[str, str]:
    """Instance id -> its key."""
    rows = await asyncio.gather(*(runtime.start_instance(wf_id, {"key": k}) for k in keys))
    return {row.id: k for row, k in zip(rows, keys, strict=True)}


async def outputs(system: System) -> dict[str, Any]:
    async with system.pool.acquire() as conn:
        rows = await conn.fetch("SELECT id, status, output FROM tideflow_instances")
    return {r["id"]: (r["status"], json.loads(r["output"] or "null")) for r in rows}


async def test_each_event_resumes_exactly_the_instance_with_its_key(pg_url: str) -> None:
    async with running(pg_url) as system:
        await system.deploy(keyed_workflow())
        keys = [f"k{i}" for i in range(40)]
        started = await start_many(system.runtime, "keyed", keys)
        assert await system.until(WAITING, len(keys), KEYED) == len(keys)
        # An event of another source or key resumes nobody.
        await system.store.append(
            DEFAULT_BUS, [keyed_event("k1", 9, source="/other"), keyed_event("nobody")]
        )
        shuffled = random.Random(7).sample(keys, len(keys))
        await system.store.append(DEFAULT_BUS, [keyed_event(k) for k in shuffled])
        assert await system.until(COMPLETED, len(keys)) == len(keys)
        for instance_id, (status, output) in (await outputs(system)).items():
            assert status == "completed"
            assert output == {
                "key": started[instance_id],
                "got": {"key": started[instance_id], "n": 0},
            }
        assert await system.count(WAITING, KEYED) == 0


@pytest.mark.timeout(600)
async def test_ten_thousand_instances_each_resumed_by_their_own_event(pg_url: str) -> None:
    count = 10_000
    async with running(pg_url, pool_size=16) as system:
        await system.deploy(keyed_workflow())
        keys = [f"key-{i:05d}" for i in range(count)]
        started: dict[str, str] = {}
        for chunk in range(0, count, 1000):
            started |= await start_many(system.runtime, "keyed", keys[chunk : chunk + 1000])
        assert await system.until(WAITING, count, KEYED, seconds=400) == count
        shuffled = random.Random(11).sample(keys, count)
        for chunk in range(0, count, 500):
            batch = [keyed_event(k) for k in shuffled[chunk : chunk + 500]]
            await system.store.append(DEFAULT_BUS, batch)
        assert await system.until(COMPLETED, count, seconds=400) == count
        results = await outputs(system)
        assert len(results) == count
        wrong = [
            i
            for i, (status, output) in results.items()
            if status != "completed" or output["got"]["key"] != started[i]
        ]
        assert wrong == []


async def test_an_event_before_the_wait_is_kept_from_the_instance_start(pg_url: str) -> None:
    async with running(pg_url) as system:
        await system.deploy(keyed_workflow("gated", gate_first=True))
        # Before the instance exists: not for it (events are consumed from its start).
        await system.store.append(DEFAULT_BUS, [keyed_event("early", 1)])
        system.calls.gate = asyncio.Event()
        row = await system.runtime.start_instance("gated", {"key": "early"})
        await system.until("SELECT count(*) FROM tideflow_journal WHERE op = 'now'", 1)
        # After it started, before it waits (it is still in the gated function call).
        await system.store.append(DEFAULT_BUS, [keyed_event("early", 2)])
        pending = "SELECT count(*) FROM tideflow_correlation_pending WHERE corr->>'orderkey' = $1"
        assert await system.until(pending, 2, "early") == 2
        system.calls.gate.set()
        done = await system.runtime.wait_for_completion(row.id, 60)
        assert done.status == "completed"
        assert done.output == {"key": "early", "gated": 2, "got": {"key": "early", "n": 2}}
        assert await system.count(pending, "early") == 1  # the one from before stays unclaimed


def started_by(workflow_id: str, event_type: str) -> dict[str, Any]:
    """A workflow each event of ``event_type`` (source ``/t``) starts; its output is ``.go``."""
    return {
        "id": workflow_id,
        "version": "1",
        "specVersion": "0.8",
        "start": "Wait",
        "events": [{"name": "Go", "type": event_type, "source": "/t"}],
        "states": [
            {
                "name": "Wait",
                "type": "event",
                "onEvents": [{"eventRefs": ["Go"], "eventDataFilter": {"toStateData": "${ .go }"}}],
                "end": True,
            }
        ],
    }


async def test_a_start_event_creates_one_instance_per_event_and_redelivery_adds_none(
    pg_url: str,
) -> None:
    doc = started_by("started", "test.go")
    async with running(pg_url) as system:
        await system.deploy(json.dumps(doc))
        events = [
            {"specversion": "1.0", "id": f"g{i}", "source": "/t", "type": "test.go", "data": i}
            for i in range(3)
        ]
        appended = await system.store.append(DEFAULT_BUS, events)
        assert await system.until(COMPLETED, 3) == 3
        # A batch handed over again (at-least-once) starts nothing twice.
        batch = [(a.offset, e) for a, e in zip(appended, events, strict=True)]
        await system.subscriber.consume(batch)
        results = await outputs(system)
        assert sorted(output["go"] for _, output in results.values()) == [0, 1, 2]


async def test_a_start_the_journal_cannot_take_is_handed_over_again_not_dropped(
    pg_url: str,
) -> None:
    doc = started_by("started", "test.go")
    async with running(pg_url) as system:
        await system.deploy(json.dumps(doc))
        await system.subscriber.refresh("started")
        event = {"specversion": "1.0", "id": "g", "source": "/t", "type": "test.go", "data": 7}
        system.runtime.writer.close()  # as a database outage fails its commits
        with pytest.raises(StoreError):  # the dispatcher retries the batch until it goes in
            await system.subscriber.consume([(10**12, event)])
        assert await system.count("SELECT count(*) FROM tideflow_instances") == 0


async def compiled(system: System, workflow_id: str, *, present: bool = True) -> bool:
    """Whether the subscriber has (or, ``present=False``, has dropped) the workflow within 30 s."""
    for _ in range(1500):
        if (workflow_id in system.subscriber.index.compiled) == present:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_a_deploy_by_another_process_subscribes_its_workflow(pg_url: str) -> None:
    doc = started_by("elsewhere", "test.elsewhere")
    started = "SELECT count(*) FROM tideflow_instances WHERE workflow_id = 'elsewhere'"
    async with running(pg_url) as system:
        other = PostgresRegistry(system.pool)  # another process's registry: no callback here
        assert other is not system.runtime.registry
        await other.deploy("elsewhere", "1", json.dumps(doc), "application/json", doc)
        assert await compiled(system, "elsewhere")  # the NOTIFY reached the subscriber
        event = {"specversion": "1.0", "id": "e1", "source": "/t", "type": "test.elsewhere"}
        await system.store.append(DEFAULT_BUS, [{**event, "data": {"go": 1}}])
        assert await system.until(started, 1) == 1
        await other.delete("elsewhere")
        assert await compiled(system, "elsewhere", present=False)


async def test_an_event_right_after_a_deploy_elsewhere_is_handled_with_it_without_a_query(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry's NOTIFY is heard on the event store's LISTEN connection, which delivers
    in commit order: the bus's notification of an event appended after a deploy by another
    process comes after the deploy's, so the consumer recompiles the announced workflow
    before that batch (the loop that would otherwise recompile it is held back here) and
    reads no fingerprint of the registry for a batch within that fence."""
    doc = started_by("fenced", "test.fenced")
    started = "SELECT count(*) FROM tideflow_instances WHERE workflow_id = 'fenced'"
    async with running(pg_url) as system:
        subscriber = system.subscriber
        for n in range(3):  # the first batches compare the fingerprint: the fence is new
            await system.store.append(DEFAULT_BUS, [event(f"warm{n}", "test.warm")])
            assert await settled(system, n + 1)
        looks: list[str] = []
        fingerprint = system.runtime.registry.fingerprint

        async def counted() -> str:
            looks.append("fingerprint")
            return await fingerprint()

        async def held() -> None:
            return None

        monkeypatch.setattr(system.runtime.registry, "fingerprint", counted)
        monkeypatch.setattr(subscriber, "_refresh_redeployed", held)
        other = PostgresRegistry(system.pool)  # another process's registry: no callback here
        await other.deploy("fenced", "1", json.dumps(doc), "application/json", doc)
        await system.store.append(DEFAULT_BUS, [{**event("e1", "test.fenced"), "data": {}}])
        assert await system.until(started, 1) == 1
        assert looks == []


async def settled(system: System, offset: int) -> bool:
    """Whether every partition of the workflow subscriber committed ``offset`` within 30 s."""
    dispatcher = system.subscriber.dispatcher
    names = [partition_subscription(i) for i in range(system.subscriber.partitions)]
    for _ in range(1500):
        if all((dispatcher.committed(name) or 0) >= offset for name in names):
            return True
        await asyncio.sleep(0.02)
    return False


def event(event_id: str, event_type: str) -> dict[str, Any]:
    return {"specversion": "1.0", "id": event_id, "source": "/t", "type": event_type}


async def test_a_produced_event_resumes_the_instance_waiting_for_it(pg_url: str) -> None:
    producer = {
        "id": "producer",
        "version": "1",
        "specVersion": "0.8",
        "start": "Make",
        "events": [{"name": "Made", "type": KEYED, "source": "/test", "kind": "produced"}],
        "states": [
            {
                "name": "Make",
                "type": "inject",
                "data": {"key": "p-1"},
                "end": {
                    "produceEvents": [
                        {
                            "eventRef": "Made",
                            "data": "${ {key: .key, n: 5} }",
                            "contextAttributes": {"orderkey": "p-1"},
                        }
                    ]
                },
            }
        ],
    }
    async with running(pg_url) as system:
        await system.deploy(keyed_workflow())
        await system.deploy(json.dumps(producer))
        waiting = await system.runtime.start_instance("keyed", {"key": "p-1"})
        assert await system.until(WAITING, 1, KEYED) == 1
        await system.runtime.start_instance("producer", {})
        done = await system.runtime.wait_for_completion(waiting.id, 60)
        assert done.status == "completed"
        assert done.output == {"key": "p-1", "got": {"key": "p-1", "n": 5}}


async def test_waits_and_events_survive_a_restart_of_the_subscriber(pg_url: str) -> None:
    async with running(pg_url) as system:
        await system.deploy(keyed_workflow())
        started = await start_many(system.runtime, "keyed", ["r-1", "r-2"])
        assert await system.until(WAITING, 2, KEYED) == 2
        # The dispatcher and the subscriber stop (as in a restart); events arrive meanwhile.
        await system.subscriber.stop()
        await system.subscriber.dispatcher.stop()
        await system.store.append(DEFAULT_BUS, [keyed_event("r-2"), keyed_event("r-1")])
        dispatcher = Dispatcher(system.store, PostgresSubscriptions(system.pool))
        await dispatcher.start()
        subscriber = WorkflowSubscriber(system.pool, system.runtime, dispatcher)
        await subscriber.start()
        system.subscriber = subscriber
        assert await system.until(COMPLETED, 2) == 2
        results = await outputs(system)
        assert {results[i][1]["got"]["key"] for i in started} == {"r-1", "r-2"}
        assert all(results[i][1]["got"]["key"] == k for i, k in started.items())


async def test_partitions_new_to_a_database_start_where_the_one_subscriber_stood(
    pg_url: str,
) -> None:
    """An upgrade from the unpartitioned subscriber: partitions 1-3 do not exist yet, and
    start events arrive while no subscriber runs. The new partitions start at partition 0's
    committed offset, so every one of those events starts its instance (partition 0 no
    longer makes the others' starts), and none twice."""
    doc = started_by("split", "test.split")
    async with running(pg_url) as system:
        await system.deploy(json.dumps(doc))
        await system.subscriber.stop()
        await system.subscriber.dispatcher.stop()
        async with system.pool.acquire() as conn:  # the database of the previous release
            await conn.execute(
                "DELETE FROM tideflow_subscriptions WHERE id LIKE 'tideflow.workflows.%'"
            )
            stood = await conn.fetchval(
                "SELECT committed_offset FROM tideflow_subscriptions WHERE id = $1",
                partition_subscription(0),
            )
        events = [
            {"specversion": "1.0", "id": f"s{i}", "source": "/t", "type": "test.split", "data": i}
            for i in range(20)
        ]
        appended = await system.store.append(DEFAULT_BUS, events)
        dispatcher = Dispatcher(system.store, PostgresSubscriptions(system.pool))
        subscriber = WorkflowSubscriber(system.pool, system.runtime, dispatcher)
        system.subscriber = subscriber
        await subscriber.start()  # attaches before its dispatcher runs: offsets as created
        async with system.pool.acquire() as conn:
            offsets = await conn.fetch(
                "SELECT id, committed_offset FROM tideflow_subscriptions"
                " WHERE id LIKE 'tideflow.workflows%' ORDER BY id"
            )
        assert {r["id"]: r["committed_offset"] for r in offsets} == {
            partition_subscription(i): stood for i in range(PARTITIONS)
        }
        await dispatcher.start()
        assert await system.until(COMPLETED, 20) == 20
        assert await settled(system, appended[-1].offset)
        results = await outputs(system)
    assert sorted(output["go"] for _, output in results.values()) == list(range(20))


ASKER = {
    "id": "asker",
    "version": "1",
    "specVersion": "0.8",
    "start": "Ask",
    "events": [
        {"name": "Ask", "type": "test.ask", "source": "/asker", "kind": "produced"},
        {
            "name": "Answer",
            "type": "test.answer",
            "source": "/answerer",
            "correlation": [{"contextAttributeName": "rid", "contextAttributeValue": "${ .rid }"}],
        },
    ],
    "states": [
        {
            "name": "Ask",
            "type": "operation",
            "actions": [
                {
                    "eventRef": {
                        "triggerEventRef": "Ask",
                        "resultEventRef": "Answer",
                        "data": "${ {q: .q} }",
                        "contextAttributes": {"rid": "${ .rid }"},
                    },
                    "actionDataFilter": {"toStateData": "${ .answer }"},
                }
            ],
            "end": True,
        }
    ],
}

ANSWERER = {
    "id": "answerer",
    "version": "1",
    "specVersion": "0.8",
    "start": "Reply",
    "events": [
        {"name": "AskIn", "type": "test.ask", "source": "/asker", "dataOnly": False},
        {"name": "AnswerOut", "type": "test.answer", "source": "/answerer", "kind": "produced"},
    ],
    "states": [
        {
            "name": "Reply",
            "type": "event",
            "onEvents": [
                {
                    "eventRefs": ["AskIn"],
                    "eventDataFilter": {"data": "${ {rid: .rid, q: .data.q} }"},
                }
            ],
            "end": {
                "produceEvents": [
                    {
                        "eventRef": "AnswerOut",
                        "data": "${ {a: (.q * 10)} }",
                        "contextAttributes": {"rid": "${ .rid }"},
                    }
                ]
            },
        }
    ],
}


async def test_an_event_ref_action_gets_the_result_event_correlated_to_it(pg_url: str) -> None:
    async with running(pg_url) as system:
        await system.deploy(json.dumps(ASKER))
        await system.deploy(json.dumps(ANSWERER))
        first = await system.runtime.start_instance("asker", {"rid": "r-1", "q": 2})
        second = await system.runtime.start_instance("asker", {"rid": "r-2", "q": 3})
        one = await system.runtime.wait_for_completion(first.id, 60)
        two = await system.runtime.wait_for_completion(second.id, 60)
        assert (one.status, two.status) == ("completed", "completed")
        assert one.output == {"rid": "r-1", "q": 2, "answer": {"a": 20}}
        assert two.output == {"rid": "r-2", "q": 3, "answer": {"a": 30}}
        # Each question started one answerer instance.
        assert (
            await system.count(
                "SELECT count(*) FROM tideflow_instances WHERE workflow_id = $1", "answerer"
            )
            == 2
        )


async def test_two_events_in_one_batch_answer_two_successive_waits(pg_url: str) -> None:
    doc = json.loads(keyed_workflow("twice"))
    (wait,) = (s for s in doc["states"] if s["name"] == "Wait")
    wait["transition"] = "Again"
    del wait["end"]
    again = {**wait, "name": "Again", "end": True}
    del again["transition"]
    again["onEvents"] = [
        {"eventRefs": ["Keyed"], "eventDataFilter": {"toStateData": "${ .again }"}}
    ]
    doc["states"].append(again)
    async with running(pg_url) as system:
        await system.deploy(json.dumps(doc))
        row = await system.runtime.start_instance("twice", {"key": "t"})
        assert await system.until(WAITING, 1, KEYED) == 1
        # Both in one append: the second is kept, not dropped, and answers the next wait.
        await system.store.append(DEFAULT_BUS, [keyed_event("t", 1), keyed_event("t", 2)])
        done = await system.runtime.wait_for_completion(row.id, 60)
        assert done.status == "completed"
        assert done.output == {
            "key": "t",
            "got": {"key": "t", "n": 1},
            "again": {"key": "t", "n": 2},
        }


async def test_a_wait_begun_while_no_subscriber_listened_gets_its_kept_event(
    pg_url: str,
) -> None:
    async with running(pg_url) as system:
        await system.deploy(keyed_workflow("gated", gate_first=True))
        system.calls.gate = asyncio.Event()
        row = await system.runtime.start_instance("gated", {"key": "s"})
        await system.until("SELECT count(*) FROM tideflow_journal WHERE op = 'now'", 1)
        await system.store.append(DEFAULT_BUS, [keyed_event("s", 3)])
        pending = "SELECT count(*) FROM tideflow_correlation_pending WHERE corr->>'orderkey' = $1"
        assert await system.until(pending, 1, "s") == 1
        # The subscriber stops; the instance starts waiting (its notification is lost).
        await system.subscriber.stop()
        system.calls.gate.set()
        assert await system.until(WAITING, 1, KEYED) == 1
        subscriber = WorkflowSubscriber(system.pool, system.runtime, system.subscriber.dispatcher)
        await subscriber.start()  # the sweep finds the wait and its kept event
        system.subscriber = subscriber
        done = await system.runtime.wait_for_completion(row.id, 60)
        assert done.status == "completed"
        assert done.output["got"] == {"key": "s", "n": 3}


ONLINE_THEN_READING = {
    "id": "sensor",
    "version": "1",
    "specVersion": "0.8",
    "start": "Online",
    "events": [
        {"name": "Online", "type": "test.online", "source": "/s"},
        {
            "name": "Reading",
            "type": "test.reading",
            "source": "/s",
            "correlation": [
                {"contextAttributeName": "sensor", "contextAttributeValue": "${ .online.id }"}
            ],
        },
    ],
    "states": [
        {
            "name": "Online",
            "type": "event",
            "onEvents": [
                {"eventRefs": ["Online"], "eventDataFilter": {"toStateData": "${ .online }"}}
            ],
            "transition": "Reading",
        },
        {
            "name": "Reading",
            "type": "event",
            "onEvents": [
                {"eventRefs": ["Reading"], "eventDataFilter": {"toStateData": "${ .reading }"}}
            ],
            "end": True,
        },
    ],
}
"""Started by ``test.online``; then waits for the ``test.reading`` of the same sensor."""


async def test_an_event_right_after_the_start_event_reaches_the_started_instance(
    pg_url: str,
) -> None:
    # The reading is committed before the subscriber starts the instance (one append: one
    # batch), as a source that outruns the subscriber under load commits it: the instance
    # consumes events from its start event's offset, not from the bus head at its creation.
    sensor = {"specversion": "1.0", "source": "/s", "sensor": "s1"}
    online = {**sensor, "id": "on", "type": "test.online", "data": {"id": "s1"}}
    reading = {**sensor, "id": "r", "type": "test.reading", "data": {"celsius": 21.5}}
    async with running(pg_url) as system:
        await system.deploy(json.dumps(ONLINE_THEN_READING))
        await system.store.append(DEFAULT_BUS, [online, reading])
        assert await system.until(COMPLETED, 1, seconds=20) == 1
        [(status, output)] = (await outputs(system)).values()
        assert status == "completed"
        assert output == {"online": {"id": "s1"}, "reading": {"celsius": 21.5}}
