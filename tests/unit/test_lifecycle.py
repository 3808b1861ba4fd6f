"""Lifecycle events: the CloudEvent built from a notice, and the publisher's appends."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from tideflow.errors import WorkflowNotFound
from tideflow.runtime.lifecycle import (
    LIFECYCLE_BUS,
    LifecycleNotice,
    LifecyclePublisher,
    lifecycle_event,
    open_tasks_of,
    standard_event,
    standard_events,
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
    await publisher.stop()  # its task must not outlive the test (the loop is the session's)


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


async def test_a_correlation_has_standard_events_only_and_no_phase_change() -> None:
    began = notice("correlation.started", key="wait", reference="/do/1/wait")
    ended = notice("correlation.completed", key="wait", reference="/do/1/wait",
                   correlation_keys={"order": "o-7"})  # fmt: skip
    assert [e["type"] for e in standard_events(began)] == [
        "io.serverlessworkflow.workflow.correlation-started.v1"
    ]
    (done,) = standard_events(ended)
    assert done["data"] == {"completedAt": done["time"], "name": "i-1", "task": "/do/1/wait",
                            "definition": {"id": "hello", "version": "1.0"},
                            "correlationKeys": {"order": "o-7"}}  # fmt: skip
    store = InMemoryEventStore()
    await store.start()
    publisher = LifecyclePublisher(store)
    await publisher.start()

    async def dsl1(_workflow: str, _version: str) -> bool:
        return True

    publisher.is_dsl1 = dsl1
    await publisher(began, ended)
    # no io.tideflow.instance.* event of their own, no status-changed
    assert [e.event["type"] for e in await store.read(LIFECYCLE_BUS)] == [
        "io.serverlessworkflow.workflow.correlation-started.v1",
        "io.serverlessworkflow.workflow.correlation-completed.v1",
    ]
    await publisher.stop()


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
        "io.serverlessworkflow.workflow.status-changed.v1",
        "io.serverlessworkflow.task.created.v1",
        "io.serverlessworkflow.task.status-changed.v1",
        "io.serverlessworkflow.task.started.v1",
        "io.serverlessworkflow.task.status-changed.v1",
    ]
    await publisher.stop()


def named(events: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    """(event name, task, status) of standard events."""
    return [
        (e["type"].split(".", 2)[2].removesuffix(".v1"), e["data"].get("task"),
         e["data"].get("status"))
        for e in events
    ]  # fmt: skip


def test_a_task_is_created_as_it_starts_and_each_phase_change_is_told() -> None:
    events = standard_events(notice("task.started", key="x", reference="/do/0/x"))
    assert named(events) == [
        ("task.created", "/do/0/x", None),
        ("task.status-changed", "/do/0/x", "pending"),
        ("task.started", "/do/0/x", None),
        ("task.status-changed", "/do/0/x", "running"),
    ]
    assert events[0]["data"] == {"createdAt": events[0]["time"], "workflow": "i-1",
                                 "task": "/do/0/x"}  # fmt: skip
    assert events[3]["data"] == {"updatedAt": events[3]["time"], "status": "running",
                                 "workflow": "i-1", "task": "/do/0/x"}  # fmt: skip
    assert len({e["id"] for e in events}) == 4
    failed = standard_events(notice("failed", error={"status": 500}))
    assert named(failed)[1] == ("workflow.status-changed", None, "faulted")
    assert failed[1]["data"] == {"updatedAt": failed[1]["time"], "status": "faulted",
                                 "name": "i-1"}  # fmt: skip
    retried = standard_events(notice("task.retried", key="x", reference="/do/0/x"))
    assert named(retried) == [("task.retried", "/do/0/x", None)]  # no phase change


def test_a_suspend_resume_or_cancel_reaches_every_open_task() -> None:
    open_tasks = [("outer", "/do/0/outer"), ("outer/inner", "/do/0/outer/do/0/inner")]
    for kind, phase in (("suspended", "suspended"), ("resumed", "running"),
                        ("cancelled", "cancelled")):  # fmt: skip
        events = standard_events(notice(kind), open_tasks)
        task_events = [n for n in named(events) if n[0].startswith("task.")]
        assert task_events == [
            (f"task.{kind}", "/do/0/outer", None),
            ("task.status-changed", "/do/0/outer", phase),
            (f"task.{kind}", "/do/0/outer/do/0/inner", None),
            ("task.status-changed", "/do/0/outer/do/0/inner", phase),
        ]
        moment = f"{kind}At"
        assert events[2]["data"] == {moment: events[2]["time"], "workflow": "i-1",
                                     "task": "/do/0/outer"}  # fmt: skip
    first = standard_events(notice("suspended"), open_tasks)
    later = standard_events(
        replace(notice("suspended"), at=AT + timedelta(minutes=1)), open_tasks
    )
    assert not {e["id"] for e in first} & {e["id"] for e in later}  # a second suspend


def test_open_tasks_are_those_of_the_latest_run_started_and_not_ended() -> None:
    def row(run_no: int, kind: str, key: str, reference: str | None = None) -> Any:
        detail = {"reference": reference} if reference else {}
        return SimpleNamespace(run_no=run_no, kind=kind, step_key=key, state=key, detail=detail)

    timeline = [
        row(1, "task.started", "old", "/do/0/old"),
        row(2, "task.started", "a", "/do/0/a"),
        row(2, "task.started", "a/b", "/do/0/a/do/0/b"),
        row(2, "task.completed", "a/b"),
        row(2, "task.started", "a/c", "/do/0/a/do/1/c"),
        row(2, "task.started", "a/d", "/do/0/a/do/2/d"),
        row(2, "task.faulted", "a/d"),
        row(2, "state.entered", "ignored"),
    ]
    assert open_tasks_of(timeline) == [("a", "/do/0/a"), ("a/c", "/do/0/a/do/1/c")]
    assert open_tasks_of([]) == []


async def test_the_tasks_woken_with_a_notice_run_before_its_event_is_appended() -> None:
    # The runner posts its end's notice, then wakes the long polls waiting for that end:
    # they answer before the publisher builds and appends the event (it went first).
    store = InMemoryEventStore()
    await store.start()
    publisher = LifecyclePublisher(store)
    await publisher.start()
    order: list[str] = []
    ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def long_poll() -> None:
        await ended
        order.append(f"answered with {publisher.published} events appended")

    poll = asyncio.ensure_future(long_poll())
    await asyncio.sleep(0)  # the poll waits
    publisher.post(notice("completed", output=1))
    ended.set_result(None)
    await poll
    await publisher.stop()
    assert order == ["answered with 0 events appended"]
    assert publisher.published == 1
