"""DSL 1.0 task lifecycle events through a real server: a suspend, a resume and a cancel reach
every task still open (``task.suspended``/``resumed``/``cancelled`` with their phase changes)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.e2e.test_api_workflows import YAML, client

__all__ = ["client"]  # the served app, shared with test_api_workflows

HELD = """
document: {dsl: '1.0.3', namespace: test, name: held, version: '1.0.0'}
do:
  - first: {set: {ready: true}}
  - outer:
      do:
        - hold:
            listen:
              to:
                one: {with: {type: test.never, source: /t}}
"""
OPEN = ["/do/1/outer", "/do/1/outer/do/0/hold"]


async def status_becomes(client: httpx.AsyncClient, instance_id: str, status: str) -> None:
    async with asyncio.timeout(20):
        while (await client.get(f"/instances/{instance_id}")).json()["status"] != status:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def standard_of(client: httpx.AsyncClient, instance_id: str) -> list[dict[str, Any]]:
    """The instance's standard lifecycle events, once its cancel has been published."""
    async with asyncio.timeout(20):
        while True:
            page = await client.get("/buses/tideflow.lifecycle/events", params={"limit": 1000})
            mine = [r["event"] for r in page.json()["events"]
                    if r["event"]["subject"] == instance_id]  # fmt: skip
            types = [e["type"] for e in mine]
            if "io.serverlessworkflow.workflow.cancelled.v1" in types and (
                "io.serverlessworkflow.task.cancelled.v1" in types
            ):
                return [e for e in mine if e["type"].startswith("io.serverlessworkflow.")]
            await asyncio.sleep(0.05)


async def test_suspend_resume_and_cancel_reach_every_open_task(client: httpx.AsyncClient) -> None:
    assert (await client.post("/workflows", content=HELD, headers=YAML)).status_code == 201
    started = await client.post("/workflows/test.held/instances", json={})
    assert started.status_code == 201, started.text
    instance_id = started.json()["id"]
    await status_becomes(client, instance_id, "waiting")
    for action, status in (("suspend", "suspended"), ("resume", "waiting"),
                           ("cancel", "cancelled")):  # fmt: skip
        answer = await client.post(f"/instances/{instance_id}/{action}")
        assert answer.status_code == 200, answer.text
        await status_becomes(client, instance_id, status)
    events = await standard_of(client, instance_id)
    by_type: dict[str, list[Any]] = {}
    for event in events:
        name = event["type"].split(".", 2)[2].removesuffix(".v1")
        by_type.setdefault(name, []).append(event["data"])
    for what in ("suspended", "resumed", "cancelled"):
        assert [d["task"] for d in by_type[f"task.{what}"]] == OPEN, what
        assert all(f"{what}At" in d and d["workflow"] == instance_id
                   for d in by_type[f"task.{what}"])  # fmt: skip
    assert [d["task"] for d in by_type["task.completed"]] == ["/do/0/first"]
    workflow_phases = [d["status"] for d in by_type["workflow.status-changed"]]
    assert workflow_phases == ["running", "suspended", "running", "cancelled"]
    hold_phases = [d["status"] for d in by_type["task.status-changed"] if d["task"] == OPEN[1]]
    assert hold_phases == ["pending", "running", "suspended", "running", "cancelled"]
