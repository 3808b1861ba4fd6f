"""Helpers for the durable runtime tests: workflows, function counters, runtimes."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tideflow.runtime.gateway import PostgresRegistry
from tideflow.runtime.hosts.durable import DurableRuntime, RuntimeOptions


def workflow(wf_id: str, states: list[dict[str, Any]], **extra: Any) -> str:
    """A JSON workflow definition with python: functions ``inc`` and ``boom``."""
    doc = {
        "id": wf_id,
        "version": "1",
        "specVersion": "0.8",
        "start": states[0]["name"],
        "functions": [
            {"name": "inc", "type": "custom", "operation": "python:unused:inc"},
            {"name": "slow", "type": "custom", "operation": "python:unused:slow"},
        ],
        "states": states,
        **extra,
    }
    return json.dumps(doc)


def call_state(name: str, function: str, nxt: str | None) -> dict[str, Any]:
    """An operation state calling ``function`` with ``{n: .n}`` into ``.n``."""
    state: dict[str, Any] = {
        "name": name,
        "type": "operation",
        "actions": [
            {
                "functionRef": {"refName": function, "arguments": {"n": "${ .n }"}},
                "actionDataFilter": {"toStateData": "${ .n }"},
            }
        ],
    }
    state.update({"transition": nxt} if nxt else {"end": True})
    return state


class Calls:
    """Function replacements that count their calls per idempotency key."""

    def __init__(self) -> None:
        self.by_key: Counter[str] = Counter()
        self.gate: Any = None

    def inc(self, args: dict[str, Any], idempotency_key: str | None = None) -> int:
        self.by_key[idempotency_key or ""] += 1
        return int(args["n"]) + 1

    async def slow(self, args: dict[str, Any], idempotency_key: str | None = None) -> int:
        self.by_key[idempotency_key or ""] += 1
        if self.gate is not None:
            await self.gate.wait()
        return int(args["n"]) + 1

    def functions(self) -> dict[str, Any]:
        return {"inc": self.inc, "slow": self.slow}


def approval_workflow(wf_id: str) -> str:
    """A call, a wait for the event ``approved`` (its ``ok`` into the data), a call."""
    return workflow(
        wf_id,
        [
            call_state("A", "inc", "Wait"),
            {
                "name": "Wait",
                "type": "event",
                "onEvents": [
                    {"eventRefs": ["approved"], "eventDataFilter": {"toStateData": "${ .ok }"}}
                ],
                "transition": "C",
            },
            call_state("C", "inc", None),
        ],
        events=[{"name": "approved", "type": "approved", "source": "test"}],
    )


async def deploy(pool: Any, source: str) -> None:
    doc = json.loads(source)
    await PostgresRegistry(pool).deploy(doc["id"], doc["version"], source, "application/json", doc)


@asynccontextmanager
async def runtime(pool: Any, calls: Calls, **options: Any) -> AsyncIterator[DurableRuntime]:
    rt = DurableRuntime(pool, RuntimeOptions(functions=calls.functions(), **options))
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()
