"""The lifecycle notices the Temporal engine derives from recorded progress (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from tideflow.runtime.hosts.temporal._values import Progress
from tideflow.runtime.hosts.temporal.activities import notices
from tideflow.runtime.lifecycle import lifecycle_event

AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def progress(**change: object) -> Progress:
    base = {"instance_id": "i-1", "run_no": 1, "workflow_id": "wf", "version": "1"}
    return Progress(**{**base, "status": "running", **change})  # type: ignore[arg-type]


def test_the_first_record_of_a_run_starts_the_instance_and_enters_its_states() -> None:
    steps = [
        {"kind": "state.entered", "key": "Hello/0", "state": "Hello"},
        {"kind": "state.left", "key": "Hello/0", "state": "Hello"},
    ]
    found = notices(progress(create=True, steps=steps, parent_id="p-1"), AT)
    assert [(n.kind, n.state, n.key) for n in found] == [
        ("started", None, ""),
        ("state.entered", "Hello", "Hello/0"),
    ]
    assert found[0].parent_id == "p-1"


def test_a_later_record_without_an_end_says_nothing() -> None:
    assert notices(progress(status="waiting"), AT) == []


def test_the_end_carries_the_output_or_the_error() -> None:
    done = notices(progress(status="completed", output={"x": 1}), AT)
    assert [(n.kind, n.output) for n in done] == [("completed", {"x": 1})]
    error = {"name": "e", "code": "E", "message": "boom", "state": None}
    failed = notices(progress(status="failed", state="Pay", error=error), AT)
    assert failed[0].kind == "failed"
    assert failed[0].error is not None
    assert failed[0].error["message"] == "boom"
    event = lifecycle_event(failed[0])
    assert event["type"] == "io.tideflow.instance.failed"
    assert event["subject"] == "i-1"


def test_a_notice_reported_again_makes_the_same_event() -> None:
    first = lifecycle_event(notices(progress(status="completed"), AT)[0])
    again = lifecycle_event(notices(progress(status="completed"), AT)[0])
    assert first["id"] == again["id"]
