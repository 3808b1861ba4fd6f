"""Audit entries as CloudEvents (pure), and the trail that appends them (to a fake store)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tideflow.auth.audit import AuditEntry, AuditTrail, audit_event
from tideflow.auth.scopes import AUDIT_BUS
from tideflow.auth.tokens import Principal
from tideflow.errors import StoreError
from tideflow.testing import InMemoryEventStore, ManualClock

NOW = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
OPS = Principal("0123456789ab", "ops", ("deploy",))


def test_an_entry_is_a_cloudevent_naming_its_actor_by_token_id_and_name() -> None:
    entry = AuditEntry(
        id="e-1",
        action="workflow.deployed",
        actor=OPS,
        target="/workflows/orders",
        at=NOW,
        detail={"workflowId": "orders", "version": "2", "actor": "forged"},
    )
    assert audit_event(entry) == {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/tideflow/audit",
        "type": "io.tideflow.audit.workflow.deployed",
        "subject": "/workflows/orders",
        "time": "2026-12-06T06:00:00Z",
        "datacontenttype": "application/json",
        "data": {
            "workflowId": "orders",
            "version": "2",
            "action": "workflow.deployed",
            "target": "/workflows/orders",
            "actor": {"tokenId": "0123456789ab", "name": "ops"},  # detail cannot override it
        },
    }


@pytest.mark.parametrize("action", ["deployed", "Workflow.Deployed", "workflow.", "a.b c"])
def test_an_action_is_resource_dot_verb(action: str) -> None:
    with pytest.raises(ValueError, match=r"<resource>\.<verb>"):
        AuditEntry(id="e", action=action, actor=OPS, target="/x", at=NOW)


async def test_the_trail_makes_its_bus_and_appends_one_event_per_record() -> None:
    store = InMemoryEventStore()
    trail = AuditTrail(store, ManualClock(NOW))
    await trail.start()
    await trail.start()  # a second server on the same store: the bus exists
    await trail.record(OPS, "secret.granted", "/secrets/API_KEY", workflow="orders")
    [stored] = await store.read(AUDIT_BUS, 0, 10)
    assert stored.event["type"] == "io.tideflow.audit.secret.granted"
    assert stored.event["data"]["workflow"] == "orders"
    assert stored.event["time"] == "2026-12-06T06:00:00Z"


class _Down(InMemoryEventStore):
    async def append(self, bus, events):
        raise StoreError("the database is unreachable")


async def test_a_lost_entry_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    trail = AuditTrail(_Down(), ManualClock(NOW))
    await trail.record(OPS, "bus.deleted", "/buses/orders")
    assert "audit entry lost: bus.deleted /buses/orders by token 0123456789ab (ops)" in caplog.text
