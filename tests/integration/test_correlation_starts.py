"""Non-exclusive start sets on real PostgreSQL: crash-safe, ``eventTimeout``, retention.

The chain is the one ``tideflow serve`` composes (see ``test_correlation``).
Batches are handed to :meth:`WorkflowSubscriber.consume` directly with offsets
the bus never reaches, so only the code under test can start an instance (the
dispatcher does not hand them over again). Times come from the events' ``time``
attributes or a :class:`~tideflow.testing.ManualClock`: nothing sleeps.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.test_correlation import COMPLETED, System, outputs, running
from tideflow.db import create_pool
from tideflow.runtime.hosts.durable import DurableRuntime
from tideflow.runtime.waits import EventWaits
from tideflow.testing import ManualClock
from tideflow.triggers.correlation import SUBSCRIPTION_ID
from tideflow.triggers.start_sets import StartSets
from tideflow.triggers.workflow_events import compile_workflow
from tideflow.workflow.loader import load_workflow

BASE = 10**12
"""Offsets handed to the subscriber directly (far past the bus head)."""

INSTANCES = "SELECT count(*) FROM tideflow_instances"
OPEN = "SELECT count(*) FROM tideflow_correlation_starts WHERE instance_id IS NULL"
TAKEN = "SELECT count(*) FROM tideflow_correlation_starts WHERE instance_id IS NOT NULL"


def paired(
    wf_id: str = "paired", *, state_timeout: str | None = None, top_timeout: str | None = None
) -> dict[str, Any]:
    """Starts once an ``test.app`` and a ``test.score`` with the same ``applicantid`` arrived."""
    corr = [{"contextAttributeName": "applicantid"}]
    state: dict[str, Any] = {
        "name": "Collect",
        "type": "event",
        "exclusive": False,
        "onEvents": [
            {
                "eventRefs": ["App", "Score"],
                "eventDataFilter": {"toStateData": "${ .got }"},
            }
        ],
        "end": True,
    }
    if state_timeout is not None:
        state["timeouts"] = {"eventTimeout": state_timeout}
    doc: dict[str, Any] = {
        "id": wf_id,
        "version": "1",
        "specVersion": "0.8",
        "start": "Collect",
        "events": [
            {"name": "App", "type": "test.app", "source": "/t", "correlation": corr},
            {"name": "Score", "type": "test.score", "source": "/t", "correlation": corr},
        ],
        "states": [state],
    }
    if top_timeout is not None:
        doc["timeouts"] = {"eventTimeout": top_timeout}
    return doc


def event(kind: str, applicant: str, time: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"{kind}-{applicant}",
        "source": "/t",
        "type": f"test.{kind}",
        "applicantid": applicant,
        "data": {kind: applicant},
    }
    if time is not None:
        found["time"] = time
    return found


async def deploy(system: System, doc: dict[str, Any]) -> None:
    await system.deploy(json.dumps(doc))


class SimulatedCrash(Exception):
    """Raised where the process would die: after the take, before the instance exists."""


async def test_a_crash_between_taking_a_set_and_starting_its_instance_loses_nothing(
    pg_url: str,
) -> None:
    app, score = event("app", "ann"), event("score", "ann")
    async with running(pg_url) as system:
        await deploy(system, paired())
        await system.subscriber.consume([(BASE + 1, app)])  # an earlier batch
        assert await system.count(OPEN) == 1

        async def crash(*_args: Any, **_kwargs: Any) -> Any:
            raise SimulatedCrash

        system.runtime.start_instance = crash  # type: ignore[method-assign]
        with pytest.raises(SimulatedCrash):
            await system.subscriber.consume([(BASE + 2, score)])
        # The set is taken and its events addressed to the instance; no instance yet.
        assert await system.count(INSTANCES) == 0
        assert await system.count(TAKEN) == 2
        assert await system.count("SELECT count(*) FROM tideflow_correlation_inbox") == 1
    async with running(pg_url) as system:  # the restart starts the taken set's instance
        assert await system.until(COMPLETED, 1) == 1
        # The last batch handed over again (its offset was never committed) adds nothing.
        await system.subscriber.consume([(BASE + 2, score)])
        await system.subscriber.consume([(BASE + 1, app), (BASE + 2, score)])
        assert await system.count(INSTANCES) == 1
        assert await system.count(OPEN) == 0
        [(status, output)] = (await outputs(system)).values()
        assert status == "completed"
        assert output == {"got": {"app": "ann", "score": "ann"}}


async def test_a_failed_start_is_repeated_when_its_last_event_is_handed_over_again(
    pg_url: str,
) -> None:
    async with running(pg_url) as system:
        await deploy(system, paired())
        started = system.runtime.start_instance
        failures = [SimulatedCrash()]

        async def fail_once(*args: Any, **kwargs: Any) -> Any:
            if failures:
                raise failures.pop()
            return await started(*args, **kwargs)

        system.runtime.start_instance = fail_once  # type: ignore[method-assign]
        await system.subscriber.consume([(BASE + 1, event("app", "bo"))])
        batch = [(BASE + 2, event("score", "bo"))]
        with pytest.raises(SimulatedCrash):
            await system.subscriber.consume(batch)
        assert await system.count(INSTANCES) == 0
        await system.subscriber.consume(batch)  # the dispatcher hands the batch over again
        assert await system.until(COMPLETED, 1) == 1
        await system.subscriber.consume(batch)
        assert await system.count(INSTANCES) == 1


@pytest.mark.parametrize(
    "doc",
    [paired(state_timeout="PT5S"), paired(top_timeout="PT5S")],
    ids=["state-eventTimeout", "inherited-from-workflow"],
)
async def test_events_further_apart_than_the_event_timeout_start_no_instance(
    pg_url: str, doc: dict[str, Any]
) -> None:
    async with running(pg_url) as system:
        await deploy(system, doc)
        # 10 s apart: the set is discarded, the later event begins a new one.
        await system.subscriber.consume([(BASE + 1, event("app", "far", "2026-01-01T12:00:00Z"))])
        await system.subscriber.consume([(BASE + 2, event("score", "far", "2026-01-01T12:00:10Z"))])
        assert await system.count(INSTANCES) == 0
        assert await system.count(OPEN) == 1
        # 3 s apart, either order: one instance.
        await system.subscriber.consume(
            [(BASE + 3, event("score", "near", "2026-01-01T12:00:03Z"))]
        )
        await system.subscriber.consume([(BASE + 4, event("app", "near", "2026-01-01T12:00:00Z"))])
        assert await system.until(COMPLETED, 1) == 1
        [(_, output)] = (await outputs(system)).values()
        assert output == {"got": {"app": "near", "score": "near"}}


async def test_an_exclusive_start_ignores_the_event_timeout_and_others_inherit_none() -> None:
    exclusive = paired(top_timeout="PT5S")
    exclusive["states"][0]["exclusive"] = True
    spec = compile_workflow(load_workflow(json.dumps(exclusive)), "1").start
    assert spec is not None
    assert spec.event_timeout is None
    spec = compile_workflow(load_workflow(json.dumps(paired())), "1").start
    assert spec is not None
    assert spec.event_timeout is None
    spec = compile_workflow(load_workflow(json.dumps(paired(state_timeout="PT1M"))), "1").start
    assert spec is not None
    assert spec.event_timeout == 60.0


async def test_the_sweep_discards_expired_sets_and_keeps_the_rest(pg_url: str) -> None:
    pool = await create_pool(pg_url, min_size=1, max_size=4)
    try:
        clock = ManualClock()
        # the runtime is not started: nothing is delivered
        waits = EventWaits(pool, DurableRuntime(pool).delivery)
        sets = StartSets(pool, waits, clock=clock, retention_seconds=3600)
        timed = compile_workflow(load_workflow(json.dumps(paired(state_timeout="PT5S"))), "1")
        kept = compile_workflow(load_workflow(json.dumps(paired("kept"))), "1")
        assert timed.start is not None
        assert kept.start is not None
        assert await sets.add(timed.start, 1, event("app", "x")) is None
        assert await sets.add(kept.start, 2, event("app", "x")) is None
        clock.advance(6)  # past eventTimeout, within the retention
        assert await sets.sweep(SUBSCRIPTION_ID) == (1, 0)
        async with pool.acquire() as conn:
            left = await conn.fetch("SELECT workflow_id FROM tideflow_correlation_starts")
        assert [r["workflow_id"] for r in left] == ["kept"]
        clock.advance(3600)  # past the retention of a set without eventTimeout
        assert await sets.sweep(SUBSCRIPTION_ID) == (1, 0)
        # A set completed later starts from scratch: the expired event is gone.
        assert await sets.add(kept.start, 3, event("score", "x")) is None
    finally:
        await pool.close()


async def test_a_taken_set_is_forgotten_once_its_instance_exists_and_is_committed(
    pg_url: str,
) -> None:
    async with running(pg_url) as system:
        await deploy(system, paired())
        await system.subscriber.consume([(5, event("app", "cy")), (6, event("score", "cy"))])
        assert await system.until(COMPLETED, 1) == 1
        sets = system.subscriber.start_sets
        async with system.pool.acquire() as conn:
            await conn.execute(
                "UPDATE tideflow_subscriptions SET committed_offset = 5 WHERE id = $1",
                SUBSCRIPTION_ID,
            )
        assert await sets.sweep(SUBSCRIPTION_ID) == (0, 1)  # 6 may still be handed over
        async with system.pool.acquire() as conn:
            await conn.execute(
                "UPDATE tideflow_subscriptions SET committed_offset = 6 WHERE id = $1",
                SUBSCRIPTION_ID,
            )
        assert await sets.sweep(SUBSCRIPTION_ID) == (0, 1)
        assert await system.count(TAKEN) == 0
        assert await system.count(INSTANCES) == 1


async def test_the_sweep_keeps_each_start_to_its_newest_open_events(pg_url: str) -> None:
    pool = await create_pool(pg_url, min_size=1, max_size=4)
    try:
        waits = EventWaits(pool, DurableRuntime(pool).delivery)
        sets = StartSets(pool, waits, clock=ManualClock(), open_events=3)
        flooded = compile_workflow(load_workflow(json.dumps(paired("flooded"))), "1")
        quiet = compile_workflow(load_workflow(json.dumps(paired("quiet"))), "1")
        assert flooded.start is not None
        assert quiet.start is not None
        for offset in range(1, 6):  # five sets that never complete, one event each
            assert await sets.add(flooded.start, offset, event("app", f"a{offset}")) is None
        assert await sets.add(quiet.start, 6, event("app", "q")) is None
        assert await sets.add(quiet.start, 7, event("app", "r")) is None
        assert await sets.sweep(SUBSCRIPTION_ID) == (2, 0)
        async with pool.acquire() as conn:
            left = await conn.fetch(
                "SELECT workflow_id, event_offset FROM tideflow_correlation_starts"
                " ORDER BY event_offset"
            )
        assert [(r["workflow_id"], r["event_offset"]) for r in left] == [
            ("flooded", 3), ("flooded", 4), ("flooded", 5), ("quiet", 6), ("quiet", 7)
        ]  # fmt: skip
        # The newest sets of the flooded start still complete.
        assert await sets.add(flooded.start, 8, event("score", "a5")) is not None
    finally:
        await pool.close()
