"""DSL 1.0 workflows on the durable host: deploy, run, replay after a crash, listen."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
import yaml

from tests.integration.durable_support import Calls, runtime
from tests.integration.test_correlation import COMPLETED, System, running
from tideflow.db import create_pool
from tideflow.deploy import deploy_definition
from tideflow.errors import AlreadyExists, WorkflowValidationError, format_path
from tideflow.eventstore.store import DEFAULT_BUS
from tideflow.runtime.gateway import PostgresRegistry
from tideflow.runtime.hosts.durable import DurableRuntime, RuntimeOptions
from tideflow.workflow.dsl1 import normalize

SEQ = """
document: {dsl: '1.0.3', namespace: test, name: seq, version: '1.0.0'}
do:
  - a: {call: 'python:unused:inc', with: {n: '${ .n }'}, output: {as: '{ n: . }'}}
  - b: {call: 'python:unused:slow', with: {n: '${ .n }'}, output: {as: '{ n: . }'}}
  - c: {call: 'python:unused:inc', with: {n: '${ .n }'}, output: {as: '{ n: . }'}}
"""

APPROVAL = """
document: {dsl: '1.0.3', namespace: test, name: approval, version: '1.0.0'}
do:
  - ask: {set: {asked: true, n: '${ .n }'}}
  - wait:
      listen:
        to:
          one: {with: {type: approved, source: test}}
      output: {as: '{ ok: .[0] }'}
"""


def overrides(calls: Calls) -> dict[str, Any]:
    return {"python:unused:inc": calls.inc, "python:unused:slow": calls.slow}


class Calls1(Calls):
    """The durable tests' counters under the names 1.0 calls carry (``python:module:function``)."""

    def functions(self) -> dict[str, Any]:
        return overrides(self)


async def store(pool: asyncpg.Pool, text: str) -> None:
    """Deploy straight into the registry (the server's python: policy is not under test)."""
    doc = normalize(yaml.safe_load(text))  # YAML reads the key `on` as true
    name = f"{doc['document']['namespace']}.{doc['document']['name']}"
    version = doc["document"]["version"]
    await PostgresRegistry(pool).deploy(name, version, text, "application/yaml", doc)


async def _until(predicate: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not await predicate():  # noqa: ASYNC110 -- progress lives in the database
            await asyncio.sleep(0.02)


async def test_a_10_workflow_runs_to_completion_with_its_journal(pool: asyncpg.Pool) -> None:
    calls = Calls1()
    await store(pool, SEQ)
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("test.seq", {"n": 1})
        done = await rt.wait_for_completion(row.id, 10)
        journal = await rt.instances.journal(row.id, 1)
        timeline = await rt.instances.timeline(row.id)
    assert done.status == "completed"
    assert done.output == {"n": 4}
    assert [e["op"] for e in journal].count("call") == 3
    assert [t.state for t in timeline if t.kind == "task.started"] == ["a", "b", "c"]
    assert sorted(calls.by_key.values()) == [1, 1, 1]


async def test_replay_after_a_crash_calls_only_the_call_in_flight_again(
    pool: asyncpg.Pool,
) -> None:
    calls = Calls1()
    calls.gate = asyncio.Event()
    await store(pool, SEQ)
    options = RuntimeOptions(functions=overrides(calls), lease_seconds=0.5)
    first = DurableRuntime(pool, options)
    await first.start()
    row = await first.start_instance("test.seq", {"n": 1})

    async def b_called() -> bool:
        return any("/b/" in key for key in calls.by_key)

    await _until(b_called)
    await first.kill()
    calls.gate.set()
    async with runtime(pool, calls, lease_seconds=5) as second:
        done = await second.wait_for_completion(row.id, 10)
    assert done.status == "completed"
    assert done.output == {"n": 4}
    counts = {key.split("/")[1]: n for key, n in calls.by_key.items()}
    assert counts == {"a": 1, "b": 2, "c": 1}


async def test_a_listen_parks_the_instance_until_its_event_is_delivered(
    pool: asyncpg.Pool,
) -> None:
    calls = Calls1()
    await store(pool, APPROVAL)
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("test.approval", {"n": 5})

        async def parked() -> bool:
            return rt.running == 0 and (await rt.instances.get(row.id)).status == "waiting"

        await _until(parked)
        waits = await rt.instances.waits(row.id)
        assert [w["event_types"] for w in waits] == [["approved"]]
        event = {"specversion": "1.0", "id": "e1", "source": "test", "type": "approved",
                 "data": {"yes": True}}  # fmt: skip
        assert await rt.deliver_events(row.id, waits[0]["wait_key"], [event])
        done = await rt.wait_for_completion(row.id, 10)
    assert done.status == "completed"
    assert done.output == {"ok": {"yes": True}}


async def test_deploy_takes_10_definitions_by_namespace_and_name(pool: asyncpg.Pool) -> None:
    registry = PostgresRegistry(pool)
    deployed = await deploy_definition(registry, APPROVAL, "application/yaml")
    assert (deployed.version.workflow_id, deployed.version.version) == (
        "test.approval",
        "1.0.0",
    )
    broken = APPROVAL.replace("one: {with:", "one: {witth:")
    with pytest.raises(WorkflowValidationError) as caught:
        await deploy_definition(registry, broken.replace("1.0.0", "1.0.1"), "application/yaml")
    assert "do[1].wait.listen.to.one.witth" in [format_path(p.path) for p in caught.value.problems]


async def test_a_10_id_taken_by_a_08_workflow_is_refused(pool: asyncpg.Pool) -> None:
    registry = PostgresRegistry(pool)
    old = {"id": "test.approval", "version": "1", "specVersion": "0.8", "start": "S",
           "states": [{"name": "S", "type": "inject", "data": {}, "end": True}]}  # fmt: skip
    await registry.deploy("test.approval", "1", yaml.safe_dump(old), "application/yaml", old)
    with pytest.raises(AlreadyExists, match=r"0\.8"):
        await deploy_definition(registry, APPROVAL, "application/yaml")


async def test_a_python_call_the_server_policy_refuses_is_a_problem_at_its_path(
    pool: asyncpg.Pool,
) -> None:
    with pytest.raises(WorkflowValidationError) as caught:
        await deploy_definition(PostgresRegistry(pool), SEQ, "application/yaml")
    paths = [format_path(p.path) for p in caught.value.problems if p.severity == "error"]
    assert paths == ["do[0].a.call", "do[1].b.call", "do[2].c.call"]


GATHER = """
document: {dsl: '1.0.3', namespace: test, name: gather, version: '1.0.0'}
do:
  - gather:
      listen:
        to:
          any:
            - with: {type: test.tick, source: /t, data: '${ .keep }'}
          until: '${ length >= 3 }'
      output: {as: '{ got: map(.n) }'}
"""

ANYTHING = """
document: {dsl: '1.0.3', namespace: test, name: anything, version: '1.0.0'}
do:
  - gather:
      listen:
        to:
          any: []
          until: '${ length >= 2 }'
        read: envelope
      output: {as: '{ got: map(.type) }'}
"""

KEYS = "SELECT count(*) FROM tideflow_correlation_keys WHERE instance_id = $1"


def tick(n: int, *, keep: bool = True, kind: str = "test.tick") -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"{kind}-{n}", "source": "/t", "type": kind,
            "data": {"n": n, "keep": keep}}  # fmt: skip


async def started(system: System, text: str) -> str:
    """Deploy ``text``, start an instance, return its id once its first wait is indexed."""
    await store(system.pool, text)
    doc = yaml.safe_load(text)["document"]
    row = await system.runtime.start_instance(f"{doc['namespace']}.{doc['name']}", {})
    assert await system.until(KEYS, 1, row.id) == 1
    return row.id


async def test_a_listen_that_drops_an_event_and_waits_again_misses_none_kept_meanwhile(
    pg_url: str,
) -> None:
    async with running(pg_url) as system:
        instance_id = await started(system, GATHER)
        # One append: the first answers the wait, the rest are kept; the second fails
        # the data filter and is dropped, the listen waits again (twice more) and
        # each new wait takes the oldest kept event, not all of them at once.
        events = [tick(1), tick(2, keep=False), tick(3), tick(4), tick(5)]
        await system.store.append(DEFAULT_BUS, events)
        done = await system.runtime.wait_for_completion(instance_id, 60)
        timeline = await system.runtime.instances.timeline(instance_id)
        pending = await system.count("SELECT count(*) FROM tideflow_correlation_pending")
    assert done.status == "completed"
    assert done.output == {"got": [1, 3, 4]}
    assert [t.step_key for t in timeline if t.kind == "event.dropped"] == ["gather/events:2"]
    assert pending == 1  # the fifth, for a later wait


ORIGIN = "SELECT start_offset FROM tideflow_correlation_origins WHERE instance_id = $1"


async def test_an_event_arriving_as_a_wait_opens_is_taken_after_the_events_kept_before_it(
    pg_url: str,
) -> None:
    async with running(pg_url) as system:
        instance_id = await started(system, GATHER)
        subscriber = system.subscriber
        # keep() below stands in for the consumer, which follows deploys before it keeps;
        # a deploy by another registry is otherwise compiled on the next batch
        await subscriber.refresh("test.gather")
        origin = await system.count(ORIGIN, instance_id)
        # The state a listen is in when its wait opens while events that arrived
        # between its waits are kept, before they are handed to it: the wait is
        # open, two events are kept for it, and the bus brings a third.
        kept = [(origin + n, tick(n)) for n in (2, 3)]
        await subscriber.waits.keep([(kind, key, offset, "/t", event) for offset, event in kept
                                     for kind, key in subscriber.index.keys(event)])  # fmt: skip
        await subscriber.consume([(origin + 4, tick(4))])
        done = await system.runtime.wait_for_completion(instance_id, 60)
        pending = await system.count("SELECT count(*) FROM tideflow_correlation_pending")
    assert done.status == "completed"
    assert done.output == {"got": [2, 3, 4]}  # in the order they arrived
    assert pending == 0


async def test_an_any_listen_without_filters_takes_events_of_every_type(pg_url: str) -> None:
    async with running(pg_url) as system:
        instance_id = await started(system, ANYTHING)
        await system.store.append(DEFAULT_BUS, [tick(1, kind="test.one"), tick(2, kind="other")])
        done = await system.runtime.wait_for_completion(instance_id, 60)
    assert done.status == "completed"
    assert done.output == {"got": ["test.one", "other"]}


ON_ONE = """
document: {dsl: '1.0.3', namespace: test, name: on-one, version: '1.0.0'}
schedule:
  on:
    one: {with: {type: test.alarm, source: /t}}
do:
  - note: {set: {got: '${ $workflow.input | map(.data.n) }'}}
"""

ON_ALL = """
document: {dsl: '1.0.3', namespace: test, name: on-all, version: '1.0.0'}
schedule:
  on:
    all:
      - with: {type: test.left}
      - with: {type: test.right}
do:
  - note: {set: {got: '${ $workflow.input | map(.type) }'}}
"""

OF_WORKFLOW = "SELECT id FROM tideflow_instances WHERE workflow_id = $1"


async def test_schedule_on_starts_an_instance_per_event_with_the_events_as_input(
    pg_url: str,
) -> None:
    async with running(pg_url) as system:
        await store(system.pool, ON_ONE)
        await system.subscriber.refresh("test.on-one")
        await system.store.append(DEFAULT_BUS, [tick(1, kind="test.alarm"), tick(2)])
        await system.store.append(DEFAULT_BUS, [tick(3, kind="test.alarm")])
        assert await system.until(COMPLETED, 2) == 2
        async with system.pool.acquire() as conn:
            ids = [r["id"] for r in await conn.fetch(OF_WORKFLOW, "test.on-one")]
        rows = [await system.runtime.instances.get(i) for i in ids]
    assert sorted(json.dumps(r.output) for r in rows) == ['{"got": [1]}', '{"got": [3]}']
    assert all(r.status == "completed" for r in rows)


async def test_schedule_on_all_starts_one_instance_once_every_event_arrived(
    pg_url: str,
) -> None:
    async with running(pg_url) as system:
        await store(system.pool, ON_ALL)
        await system.subscriber.refresh("test.on-all")
        await system.store.append(DEFAULT_BUS, [tick(1, kind="test.right")])
        await system.store.append(DEFAULT_BUS, [tick(2, kind="test.left")])
        assert await system.until(COMPLETED, 1) == 1
        async with system.pool.acquire() as conn:
            (instance_id,) = [r["id"] for r in await conn.fetch(OF_WORKFLOW, "test.on-all")]
            inbox = await conn.fetchval("SELECT count(*) FROM tideflow_correlation_inbox")
        row = await system.runtime.instances.get(instance_id)
    assert row.output == {"got": ["test.left", "test.right"]}  # in the listed order
    assert inbox == 0


async def test_a_schedule_on_serve_cannot_start_is_refused_at_its_path(pg_url: str) -> None:
    pool = await create_pool(pg_url, min_size=1, max_size=2)
    try:
        registry = PostgresRegistry(pool)
        until = ON_ALL.replace("all:", "any:").replace("do:", "    until: '${ true }'\ndo:")
        expression = ON_ONE.replace("source: /t", "source: '${ .source }'")
        for text, path in ((until, "schedule.on.until"), (expression, "schedule.on.one")):
            with pytest.raises(WorkflowValidationError) as caught:
                await deploy_definition(registry, text, "application/yaml")
            assert [format_path(p.path) for p in caught.value.problems] == [path]
    finally:
        await pool.close()
