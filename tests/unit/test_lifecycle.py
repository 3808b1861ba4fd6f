"""Lifecycle events: the CloudEvent built from a notice, and the publisher's appends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tideflow.errors import WorkflowNotFound
from tideflow.runtime.lifecycle import (
    LIFECYCLE_BUS,
    LifecycleNotice,
    LifecyclePublisher,
    lifecycle_event,
    standard_event,
)
from tideflow.testing import InMemoryEventStore

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def notice(kind: str, **extra: Any) -> LifecycleNotice:
    return LifecycleNotice(
        kind=kind, instance_id="i-1", workflow_id="hello", version="1.0", at=AT, **extra
    )


def test_started_event_has_the_cloudevent_attributes() -> None:
    event = lifecycle_event(notice("started"))
    assert event["specversion"] == "1.0"
    assert event["type"] == "io.tideflow.instance.started"
    assert event["source"] == "/tideflow/workflows/hello"
    assert event["subject"] == "i-1"
    assert event["time"].startswith("2026-03-01T12:00:00")
    assert event["data"] == {
        "instanceId": "i-1",
        "workflowId": "hello",
        "version": "1.0",
        "status": "running",
    }


def test_completed_carries_the_output_and_failed_the_error() -> None:
    done = lifecycle_event(notice("completed", output={"message": "hi"}))
    assert done["data"]["output"] == {"message": "hi"}
    assert lifecycle_event(notice("completed"))["data"]["output"] is None
    assert done["data"]["status"] == "completed"
    error = {"name": "error", "code": "500", "message": "boom", "state": "Charge"}
    failed = lifecycle_event(notice("failed", error=error, state="Charge", parent_id="p-1"))
    assert failed["data"]["error"] == error
    assert failed["data"]["state"] == "Charge"
    assert failed["data"]["parentId"] == "p-1"
    assert "output" not in failed["data"]


def test_ids_are_stable_and_tell_state_entries_apart() -> None:
    first = lifecycle_event(notice("state.entered", state="A", key="A#1"))
    again = lifecycle_event(notice("state.entered", state="A", key="A#1"))
    other = lifecycle_event(notice("state.entered", state="A", key="A#2"))
    assert first["id"] == again["id"]
    assert first["id"] != other["id"]
    assert first["type"] == "io.tideflow.instance.state.entered"


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown lifecycle kind 'exploded'"):
        notice("exploded")


async def test_publisher_creates_the_bus_and_dedups_replayed_notices() -> None:
    store = InMemoryEventStore()
    await store.start()
    publisher = LifecyclePublisher(store)
    await publisher.start()
    await publisher.start()  # a second start finds the bus
    await publisher(notice("started"), notice("state.entered", state="Greet", key="Greet"))
    await publisher(notice("started"))  # replayed: same id
    await publisher(notice("completed", output={"ok": True}))
    events = await store.read(LIFECYCLE_BUS)
    types = [stored.event["type"].rsplit(".", 1)[-1] for stored in events]
    assert types == ["started", "entered", "completed"]
    assert publisher.published == 4


async def test_publisher_logs_instead_of_raising_when_the_bus_is_gone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = InMemoryEventStore()
    await store.start()
    publisher = LifecyclePublisher(store)  # never started: no bus
    await publisher(notice("started"))
    assert publisher.published == 0
    assert "could not append 1 lifecycle events" in caplog.text


async def test_posted_notices_are_published_in_order_and_flushed_on_stop() -> None:
    store = InMemoryEventStore()
    await store.start()
    counted: list[int] = []
    publisher = LifecyclePublisher(store, on_publish=counted.append)
    await publisher.start()
    publisher.post(notice("started"))
    publisher.post(notice("state.entered", state="Greet", key="Greet"))
    publisher.post(notice("completed", output=1))
    await publisher.stop()
    events = await store.read(LIFECYCLE_BUS)
    assert [e.event["type"] for e in events] == [
        "io.tideflow.instance.started",
        "io.tideflow.instance.state.entered",
        "io.tideflow.instance.completed",
    ]
    assert sum(counted) == 3


def test_standard_events_name_the_instance_the_task_and_the_moment() -> None:
    started = standard_event(notice("started"))
    assert started["type"] == "io.serverlessworkflow.workflow.started.v1"
    assert started["data"] == {
        "startedAt": started["time"],
        "name": "i-1",
        "definition": {"id": "hello", "version": "1.0"},
    }
    assert started["id"] != lifecycle_event(notice("started"))["id"]
    error = {"type": "https://example.com/oops", "status": 503, "instance": "/do/0/x"}
    faulted = standard_event(notice("task.faulted", state="x", key="x", error=error))
    assert faulted["type"] == "io.serverlessworkflow.task.faulted.v1"
    assert faulted["data"] == {"faultedAt": faulted["time"], "workflow": "i-1", "task": "x",
                               "error": error}  # fmt: skip
    done = standard_event(notice("task.completed", reference="/do/0/x", key="x", output=2))
    assert (done["data"]["task"], done["data"]["output"]) == ("/do/0/x", 2)
    assert standard_event(notice("failed", error=error))["type"].endswith("workflow.faulted.v1")


async def test_publisher_adds_standard_events_for_dsl1_versions_only() -> None:
    store = InMemoryEventStore()
    await store.start()
    publisher = LifecyclePublisher(store)
    await publisher.start()

    async def is_dsl1(workflow_id: str, version: str) -> bool:
        if workflow_id == "gone":
            raise WorkflowNotFound("gone")
        return version == "1.0"

    publisher.is_dsl1 = is_dsl1
    gone = LifecycleNotice(kind="started", instance_id="g", workflow_id="gone", version="1.0",
                           at=AT)  # fmt: skip
    await publisher(notice("started"), notice("task.started", key="x", reference="/do/0/x"), gone)
    events = [e.event["type"] for e in await store.read(LIFECYCLE_BUS)]
    assert events == [
        "io.tideflow.instance.started",
        "io.tideflow.instance.started",
        "io.serverlessworkflow.workflow.started.v1",
        "io.serverlessworkflow.task.started.v1",
    ]
