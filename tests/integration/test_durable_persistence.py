"""The registry and instance gateways against a real PostgreSQL."""

from __future__ import annotations

import asyncpg
import pytest

from tideflow.errors import AlreadyExists, InstanceNotFound, InvalidArgument, WorkflowNotFound
from tideflow.runtime.gateway import PostgresInstances, PostgresRegistry
from tideflow.runtime.status import InstanceStatus

SOURCE_V1 = "id: greet\nversion: '1'\n"
SOURCE_V2 = "id: greet\nversion: '2'\n"


async def test_registry_keeps_versions_side_by_side(pool: asyncpg.Pool) -> None:
    registry = PostgresRegistry(pool)
    v1 = await registry.deploy("greet", "1", SOURCE_V1, "application/yaml", {"id": "greet"})
    v2 = await registry.deploy("greet", "2", SOURCE_V2, "application/yaml", {"id": "greet"})
    assert (v1.seq, v2.seq) == (1, 2)
    assert (await registry.get("greet")).version == "2"
    assert (await registry.get("greet", "1")).source_text == SOURCE_V1
    assert [v.version for v in await registry.versions("greet")] == ["1", "2"]
    assert [w.workflow_id for w in await registry.list()] == ["greet"]
    same = await registry.deploy("greet", "1", SOURCE_V1, "application/yaml", {})
    assert same.seq == 1
    assert (await registry.get("greet")).version == "1"
    with pytest.raises(AlreadyExists, match="version '1'"):
        await registry.deploy("greet", "1", SOURCE_V2, "application/yaml", {})
    auto = await registry.deploy("other", None, "x", "application/json", {})
    assert auto.version == "1"


async def test_registry_delete_stops_latest_but_keeps_versions(pool: asyncpg.Pool) -> None:
    registry = PostgresRegistry(pool)
    await registry.deploy("greet", "1", SOURCE_V1, "application/yaml", {})
    await registry.delete("greet")
    with pytest.raises(WorkflowNotFound, match="greet"):
        await registry.get("greet")
    assert (await registry.get("greet", "1")).version == "1"
    assert await registry.list() == []
    with pytest.raises(WorkflowNotFound):
        await registry.delete("greet")
    with pytest.raises(WorkflowNotFound):
        await registry.versions("nothing")


async def test_registry_announces_deploys_and_deletes(pool: asyncpg.Pool) -> None:
    registry = PostgresRegistry(pool)
    heard: list[tuple[str, str | None]] = []

    async def listener(workflow_id: str) -> None:  # sees the change committed
        latest = [w.version for w in await registry.list() if w.workflow_id == workflow_id]
        heard.append((workflow_id, latest[0] if latest else None))

    stop = registry.on_change(listener)
    await registry.deploy("greet", "1", SOURCE_V1, "application/yaml", {})
    await registry.deploy("greet", "2", SOURCE_V2, "application/yaml", {})
    with pytest.raises(AlreadyExists):
        await registry.deploy("greet", "1", SOURCE_V2, "application/yaml", {})
    await registry.delete("greet")
    with pytest.raises(WorkflowNotFound):
        await registry.delete("greet")
    stop()
    await registry.deploy("greet", "1", SOURCE_V1, "application/yaml", {})
    assert heard == [("greet", "1"), ("greet", "2"), ("greet", None)]


async def test_instances_create_list_and_control(pool: asyncpg.Pool) -> None:
    instances = PostgresInstances(pool)
    with pytest.raises(WorkflowNotFound, match="greet"):
        await instances.create("greet", "1", {})
    await PostgresRegistry(pool).deploy("greet", "1", SOURCE_V1, "application/yaml", {})
    made = [await instances.create("greet", "1", {"n": n}) for n in range(3)]
    got = await instances.get(made[0].id)
    assert got.status == "running"
    assert got.input == {"n": 0}
    assert got.to_json()["workflowId"] == "greet"
    page, cursor = await instances.list(workflow="greet", limit=2)
    assert [r.id for r in page] == [made[0].id, made[1].id]
    rest, end = await instances.list(workflow="greet", limit=2, cursor=cursor)
    assert [r.id for r in rest] == [made[2].id]
    assert end is None
    with pytest.raises(InvalidArgument, match="cursor"):
        await instances.list(cursor="nope")
    suspended = await instances.request_suspend(made[0].id)
    assert suspended.status == "suspended"
    assert suspended.wake_at is None
    resumed = await instances.request_resume(made[0].id)
    assert resumed.status == "running"
    assert resumed.wake_at is not None
    cancelled = await instances.request_cancel(made[1].id)
    assert cancelled.status == "cancelled"
    assert cancelled.ended_at is not None
    assert (await instances.list(status=InstanceStatus.CANCELLED))[0][0].id == made[1].id
    assert await instances.timeline(made[2].id) == []
    with pytest.raises(InstanceNotFound):
        await instances.get("missing")
    with pytest.raises(InstanceNotFound):
        await instances.timeline("missing")
