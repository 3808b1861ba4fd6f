"""One suite, every host: the same workflows give the same observable results on each.

Every scenario runs on each :class:`Harness` -- the local host of ``tideflow
run`` and the durable host of ``tideflow serve`` (on a real PostgreSQL) --
and asserts what a user can observe: the outcome and output, the
idempotency keys a real HTTP service received, the events produced. A new
host (Temporal) or front end (DSL 1.0) joins by adding a harness to
``HARNESSES``: same scenarios, same results.

Events: a harness offers the scenario's events to the instance's event waits
in order (the local host from its ``--events`` feed, the durable host by
delivering each one to the next open wait); a wait no event answers runs
into its timeout.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from tests.support.services import Services, start_services
from tests.support.temporal import DevServer, record_history
from tideflow.runtime.result import Completed, Failed, Terminated

TIMEOUT = 30.0  # seconds a durable scenario may take before the test fails


@dataclass
class Outcome:
    """What a run of a scenario showed."""

    instance_id: str
    status: str
    """``completed`` or ``failed`` (``end.terminate`` completes)."""
    output: Any = None
    error_code: str | None = None
    emitted: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[tuple[str, str]] = field(default_factory=list)
    """``(kind, step key)`` of the interpreter's steps (of the last run), in order."""


def ident(doc: dict[str, Any]) -> str:
    """The registry id of a 0.8 (``id``) or DSL 1.0 (``namespace.name``) definition."""
    document = doc.get("document")
    if isinstance(document, dict):
        return f"{document['namespace']}.{document['name']}"
    return str(doc["id"])


class Harness(Protocol):
    """Runs a scenario on one host."""

    async def run(
        self, workflows: Sequence[dict[str, Any]], input: Any, events: Sequence[dict[str, Any]] = ()
    ) -> Outcome:
        """Run the first of ``workflows`` (the others: sub-flows, continuations) to its end."""


class LocalHarness:
    """The local host: definitions as files, events from the feed."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def run(
        self, workflows: Sequence[dict[str, Any]], input: Any, events: Sequence[dict[str, Any]] = ()
    ) -> Outcome:
        from tideflow.runtime.hosts.local import LocalHost, LocalOptions

        for doc in workflows:
            (self.folder / f"{ident(doc)}.json").write_text(json.dumps(doc))
        host = LocalHost(LocalOptions(events=list(events), log=lambda _: None))
        run = await host.run_file(self.folder / f"{ident(workflows[0])}.json", input)
        result = run.result
        timeline = [(step.kind, step.key) for step in result.timeline]
        if isinstance(result, Failed):
            code = result.error.code
            return Outcome(run.instance_id, result.status, error_code=code, timeline=timeline)
        assert isinstance(result, Completed | Terminated), result
        return Outcome(
            run.instance_id, result.status, result.output, emitted=run.emitted, timeline=timeline
        )


class DurableHarness:
    """The durable host: definitions deployed, events delivered to the open waits."""

    def __init__(self, pool: Any, folder: Path) -> None:
        self.pool = pool
        self.folder = folder

    async def run(
        self, workflows: Sequence[dict[str, Any]], input: Any, events: Sequence[dict[str, Any]] = ()
    ) -> Outcome:
        from tideflow.runtime.gateway import PostgresRegistry
        from tideflow.runtime.hosts.durable import DurableRuntime, RuntimeOptions

        registry = PostgresRegistry(self.pool)
        for doc in workflows:
            await registry.deploy(ident(doc), "1", json.dumps(doc), "application/json", doc)
        options = RuntimeOptions(base_dir=self.folder, lease_seconds=10)
        async with DurableRuntime(self.pool, options) as rt:
            row = await rt.start_instance(ident(workflows[0]), input)
            for event in events:
                wait_key = await _open_wait(rt, row.id)
                assert await rt.deliver_events(row.id, wait_key, [event])
            done = await rt.wait_for_completion(row.id, TIMEOUT)
            emitted = list(rt.emitted)
            steps = await rt.instances.timeline(row.id)
        assert done.final, f"{done.status}: the scenario did not end"
        last = [(t.kind, t.step_key) for t in steps if t.run_no == done.run_no]
        timeline = [(kind, key) for kind, key in last if not kind.startswith(_HOST_ROWS)]
        if done.status == "failed":
            code = (done.error or {}).get("code")
            return Outcome(row.id, "failed", error_code=code, timeline=timeline)
        return Outcome(row.id, done.status, done.output, emitted=emitted, timeline=timeline)


_HOST_ROWS = ("timer.", "instance.")  # the durable host's own timeline rows


class TemporalHarness:
    """The Temporal host: definitions deployed, a worker on a task queue of its own on the
    session's dev server, events signalled at the start (buffered until a wait takes them)."""

    def __init__(self, pool: Any, folder: Path, server: DevServer, name: str) -> None:
        self.pool = pool
        self.folder = folder
        self.server = server
        self.name = name

    async def run(
        self, workflows: Sequence[dict[str, Any]], input: Any, events: Sequence[dict[str, Any]] = ()
    ) -> Outcome:
        from temporalio.client import Client, WorkflowFailureError
        from temporalio.exceptions import ApplicationError

        from tideflow import ids
        from tideflow.runtime.functions import FunctionInvoker
        from tideflow.runtime.gateway import PostgresRegistry
        from tideflow.runtime.hosts.temporal import (
            SIGNAL_EVENT,
            WORKFLOW_TYPE,
            InstanceActivities,
            InstanceStart,
            instance_worker,
        )

        registry = PostgresRegistry(self.pool)
        for doc in workflows:
            await registry.deploy(ident(doc), "1", json.dumps(doc), "application/json", doc, doc)
        emitted: list[dict[str, Any]] = []

        async def publish(_: str, batch: Sequence[dict[str, Any]]) -> None:
            emitted.extend(batch)

        client = await Client.connect(self.server.address, namespace=self.server.namespace)
        queue, instance_id = f"contract-{ids.new_id()}", ids.new_id()
        invoker = FunctionInvoker()
        activities = InstanceActivities(registry, invoker, publish, base_dir=self.folder)
        start = InstanceStart(workflow_id=ident(workflows[0]), input=input, instance_id=instance_id)
        try:
            async with instance_worker(client, queue, activities, sandboxed=True):
                handle = await client.start_workflow(
                    WORKFLOW_TYPE, start, id=instance_id, task_queue=queue
                )
                for event in events:
                    await handle.signal(SIGNAL_EVENT, event)
                try:
                    async with asyncio.timeout(TIMEOUT):
                        done = await handle.result()
                finally:
                    await record_history(client, instance_id, f"contract-{self.name}")
        except WorkflowFailureError as exc:
            cause = exc.cause
            if not isinstance(cause, ApplicationError):
                raise AssertionError(f"not an instance failure: {cause!r}") from exc
            failure = cause.details[0]
            timeline = [(s["kind"], s["key"]) for s in failure["timeline"]]
            code = failure["error"]["code"]
            return Outcome(instance_id, "failed", error_code=code, timeline=timeline)
        finally:
            await invoker.aclose()
        timeline = [(s["kind"], s["key"]) for s in done["timeline"]]
        return Outcome(
            instance_id, done["status"], done["output"], emitted=emitted, timeline=timeline
        )


async def _open_wait(rt: Any, instance_id: str) -> str:
    """The key of the instance's next open event wait (polled: progress lives in the database)."""
    async with asyncio.timeout(TIMEOUT):
        while not (waits := await rt.instances.waits(instance_id)):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return str(waits[0]["wait_key"])


HARNESSES = ["local", "durable", "temporal"]


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with start_services() as running:
        yield running


@pytest.fixture(params=HARNESSES)
def host(request: pytest.FixtureRequest, tmp_path: Path, services: Services) -> Harness:
    services.state.reset()
    if request.param == "local":
        return LocalHarness(tmp_path)
    if request.param == "temporal":
        server = request.getfixturevalue("temporal_server")
        name = request.node.originalname.removeprefix("test_")
        return TemporalHarness(request.getfixturevalue("pool"), tmp_path, server, name)
    return DurableHarness(request.getfixturevalue("pool"), tmp_path)


# --- workflow builders --------------------------------------------------------------


def workflow(wf_id: str, states: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": wf_id,
        "version": "1",
        "specVersion": "0.8",
        "start": states[0]["name"],
        "states": states,
        **extra,
    }


def keyed_function(services: Services) -> dict[str, Any]:
    """``keyed``: GET /api/keyed (records the Idempotency-Key; fails ``failures`` times)."""
    url = f"{services.base_url}/api/keyed"
    return {"name": "keyed", "type": "custom", "operation": f"rest:get:{url}"}


def call(name: str, args: dict[str, Any], into: str, **extra: Any) -> dict[str, Any]:
    action = {
        "functionRef": {"refName": name, "arguments": args},
        "actionDataFilter": {"toStateData": f"${{ .{into} }}"},
        **extra,
    }
    return action


def operation(name: str, *actions: dict[str, Any], **rest: Any) -> dict[str, Any]:
    """An operation state running ``actions`` (it ends unless ``rest`` says otherwise)."""
    return {"name": name, "type": "operation", "actions": list(actions), **_exit(rest)}


def inject(name: str, data: dict[str, Any], **rest: Any) -> dict[str, Any]:
    return {"name": name, "type": "inject", "data": data, **_exit(rest)}


def _exit(rest: dict[str, Any]) -> dict[str, Any]:
    """``rest`` with ``end: true`` unless it transitions or ends otherwise."""
    return rest if "transition" in rest or "end" in rest else {"end": True, **rest}


def _keys(services: Services, tag: str) -> list[str | None]:
    return [key for t, key in services.state.keyed if t == tag]


# --- function calls and idempotency keys ---------------------------------------------


async def test_a_call_carries_the_key_of_the_logical_call(
    host: Harness, services: Services
) -> None:
    wf = workflow(
        "call",
        [
            operation("Call", call("keyed", {"tag": "one"}, "first"), transition="Again"),
            operation("Again", call("keyed", {"tag": "two"}, "second")),
        ],
        functions=[keyed_function(services)],
    )
    outcome = await host.run([wf], {})
    assert outcome.status == "completed"
    one, two = outcome.output["first"]["key"], outcome.output["second"]["key"]
    assert one == f"{outcome.instance_id}/Call/action:0"
    assert two == f"{outcome.instance_id}/Again/action:0"
    assert _keys(services, "one") == [one]


async def test_retries_back_off_and_keep_the_same_key(host: Harness, services: Services) -> None:
    wf = workflow(
        "retry",
        [operation("Call", call("keyed", {"tag": "flaky", "failures": 2}, "r", retryRef="twice"))],
        functions=[keyed_function(services)],
        retries=[{"name": "twice", "maxAttempts": 3, "delay": "PT0.05S", "multiplier": 2}],
        autoRetries=True,
    )
    outcome = await host.run([wf], {})
    assert outcome.status == "completed"
    assert outcome.output["r"]["attempts"] == 3
    key = f"{outcome.instance_id}/Call/action:0"
    assert _keys(services, "flaky") == [key, key, key]
    retries = [step for kind, step in outcome.timeline if kind == "retry"]
    assert retries == ["Call/action:0/attempt:1", "Call/action:0/attempt:2"]


async def test_retries_run_out_and_the_instance_fails_with_the_code(
    host: Harness, services: Services
) -> None:
    wf = workflow(
        "exhausted",
        [operation("Call", call("keyed", {"tag": "down", "failures": 9}, "r", retryRef="once"))],
        functions=[keyed_function(services)],
        retries=[{"name": "once", "maxAttempts": 2, "delay": "PT0.01S"}],
        autoRetries=True,
    )
    outcome = await host.run([wf], {})
    assert (outcome.status, outcome.error_code) == ("failed", "503")
    assert len(_keys(services, "down")) == 2
    assert len(set(_keys(services, "down"))) == 1


async def test_a_step_timeout_cuts_a_slow_call(host: Harness, services: Services) -> None:
    url = f"{services.base_url}/api/slow"
    wf = workflow(
        "timeout",
        [
            {
                "name": "Slow",
                "type": "operation",
                "actions": [call("slow", {"seconds": 3}, "r")],
                "timeouts": {"actionExecTimeout": "PT0.2S"},
                "onErrors": [{"errorRef": "timeout", "transition": "TimedOut"}],
                "transition": "Done",
            },
            inject("Done", {"timedOut": False}),
            inject("TimedOut", {"timedOut": True}),
        ],
        functions=[{"name": "slow", "type": "custom", "operation": f"rest:get:{url}"}],
        errors=[{"name": "timeout", "code": "TIMEOUT"}],
    )
    outcome = await host.run([wf], {})
    assert outcome.status == "completed"
    assert outcome.output["timedOut"] is True


# --- waiting ---------------------------------------------------------------------


def _approval(timeout: str | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "name": "Wait",
        "type": "event",
        "onEvents": [{"eventRefs": ["approved"], "eventDataFilter": {"toStateData": "${ .ok }"}}],
        "end": True,
    }
    if timeout is not None:
        state["timeouts"] = {"eventTimeout": timeout}
    return workflow(
        "approval",
        [inject("Start", {"ok": None}, transition="Wait"), state],
        events=[{"name": "approved", "type": "approved", "source": "test"}],
    )


def _event(data: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": "e1", "source": "test", "type": "approved", "data": data}


async def test_an_event_wait_gets_its_event(host: Harness) -> None:
    outcome = await host.run([_approval()], {}, events=[_event({"by": "ada"})])
    assert outcome.status == "completed"
    assert outcome.output == {"ok": {"by": "ada"}}
    assert ("event.received", "Wait/events") in outcome.timeline


async def test_an_event_wait_times_out_without_its_event(host: Harness) -> None:
    outcome = await host.run([_approval("PT0.2S")], {})
    assert outcome.status == "completed"
    assert outcome.output == {"ok": None}  # the timeout moves on without the event's data
    assert ("event.timeout", "Wait/events") in outcome.timeline


async def test_a_sleep_ends_and_the_run_goes_on(host: Harness) -> None:
    wf = workflow(
        "sleeper",
        [
            {"name": "Nap", "type": "sleep", "duration": "PT0.1S", "transition": "After"},
            inject("After", {"woke": True}),
        ],
    )
    outcome = await host.run([wf], {"n": 1})
    assert outcome.status == "completed"
    assert outcome.output == {"n": 1, "woke": True}


# --- events, sub-flows, continueAs -------------------------------------------------


async def test_produced_events_get_source_and_time(host: Harness) -> None:
    wf = workflow(
        "producer",
        [
            {
                "name": "Make",
                "type": "inject",
                "data": {"total": 3},
                "end": {"produceEvents": [{"eventRef": "made", "data": "${ .total }"}]},
            }
        ],
        events=[{"name": "made", "type": "thing.made", "kind": "produced"}],
    )
    outcome = await host.run([wf], {})
    assert outcome.status == "completed"
    [event] = outcome.emitted
    assert (event["type"], event["data"]) == ("thing.made", 3)
    assert event["source"] == "/tideflow/producer"
    assert event["time"]


async def test_a_subflow_returns_its_output(host: Harness, services: Services) -> None:
    child = workflow(
        "child",
        [operation("Work", call("keyed", {"tag": "child"}, "r"))],
        functions=[keyed_function(services)],
    )
    parent = workflow(
        "parent",
        [
            {
                "name": "Delegate",
                "type": "operation",
                "actions": [
                    {
                        "subFlowRef": "child",
                        "actionDataFilter": {"toStateData": "${ .fromChild }"},
                    }
                ],
                "end": True,
            }
        ],
    )
    outcome = await host.run([parent, child], {"x": 1})
    assert outcome.status == "completed"
    assert outcome.output["x"] == 1
    assert outcome.output["fromChild"]["r"]["tag"] == "child"
    [key] = _keys(services, "child")
    assert key is not None
    assert key.endswith("/Work/action:0")
    assert not key.startswith(outcome.instance_id)  # the child is an instance of its own


async def test_continue_as_runs_the_next_workflow_with_new_keys(
    host: Harness, services: Services
) -> None:
    second = workflow(
        "second",
        [operation("Call", call("keyed", {"tag": "run"}, "r"))],
        functions=[keyed_function(services)],
    )
    first = workflow(
        "first",
        [
            operation(
                "Call",
                call("keyed", {"tag": "run"}, "r"),
                end={"continueAs": {"workflowId": "second", "data": "${ {n: (.n + 1)} }"}},
            )
        ],
        functions=[keyed_function(services)],
    )
    outcome = await host.run([first, second], {"n": 1})
    assert outcome.status == "completed"
    assert outcome.output["n"] == 2
    assert outcome.output["r"]["tag"] == "run"
    one, two = _keys(services, "run")
    assert one == f"{outcome.instance_id}/Call/action:0"
    assert two is not None
    assert two.endswith("/Call/action:0")
    assert one != two  # the same step of another run is another call


# --- DSL 1.0 ------------------------------------------------------------------------
# The same hosts run 1.0 definitions (registry id ``namespace.name``). In 1.0 a retry
# re-runs a ``try`` block: each attempt's call is a new logical call with its own
# idempotency key (``guard/try:2/...``), the same on every host.


def dsl1(name: str, do: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    document = {"dsl": "1.0.3", "namespace": "contract", "name": name, "version": "1.0.0"}
    return {"document": document, "do": do, **extra}


def keyed_task(services: Services, task: str, tag: str, failures: int = 0) -> dict[str, Any]:
    """A ``call: http`` task asking ``/api/keyed`` (it records the Idempotency-Key it gets)."""
    query = {"tag": tag, "failures": str(failures)}
    url = f"{services.base_url}/api/keyed"
    return {task: {"call": "http", "with": {"method": "get", "endpoint": url, "query": query}}}


async def test_a_10_call_carries_the_key_of_its_task(host: Harness, services: Services) -> None:
    wf = dsl1("call", [keyed_task(services, "first", "one"), keyed_task(services, "second", "two")])
    outcome = await host.run([wf], {})
    assert outcome.status == "completed"
    assert outcome.output["key"] == f"{outcome.instance_id}/second/call"
    assert _keys(services, "one") == [f"{outcome.instance_id}/first/call"]


async def test_a_10_retry_reruns_the_try_block_with_new_keys(
    host: Harness, services: Services
) -> None:
    retry = {"delay": {"milliseconds": 50}, "backoff": {"constant": {}},
             "limit": {"attempt": {"count": 3}}}  # fmt: skip
    guard = {
        "guard": {
            "try": [keyed_task(services, "fetch", "flaky", failures=2)],
            "catch": {"errors": {"with": {"status": 503}}, "retry": retry},
        }
    }
    outcome = await host.run([dsl1("retry", [guard])], {})
    assert outcome.status == "completed"
    assert outcome.output["attempts"] == 3
    prefix = f"{outcome.instance_id}/guard"
    assert _keys(services, "flaky") == [f"{prefix}/try:{n}/fetch/call" for n in (1, 2, 3)]
    retries = [key for kind, key in outcome.timeline if kind == "retry"]
    assert retries == ["guard", "guard"]


async def test_a_10_listen_gets_its_event_and_an_emit_is_produced(host: Harness) -> None:
    wf = dsl1(
        "listen",
        [
            {"tell": {"emit": {"event": {"with": {"source": "/contract", "type": "asked",
                                                  "data": {"q": "${ .q }"}}}}}},
            {"hear": {"listen": {"to": {"one": {"with": {"type": "approved"}}}},
                      "output": {"as": ".[0]"}}},
            {"nap": {"wait": {"milliseconds": 100}}},
        ],
    )  # fmt: skip
    event = {"specversion": "1.0", "id": "e1", "source": "test", "type": "approved",
             "data": {"by": "ada"}}  # fmt: skip
    outcome = await host.run([wf], {"q": "ok?"}, events=[event])
    assert outcome.status == "completed"
    assert outcome.output == {"by": "ada"}
    assert [(e["type"], e["data"], e["source"]) for e in outcome.emitted] == [
        ("asked", {"q": "ok?"}, "/contract")
    ]
    assert "time" in outcome.emitted[0]
    started = [key for kind, key in outcome.timeline if kind == "task.started"]
    assert started == ["tell", "hear", "nap"]


async def test_a_10_fault_fails_the_instance_with_its_status(host: Harness) -> None:
    wf = dsl1("raise", [{"boom": {"raise": {"error": {"type": "https://x/e", "status": 418}}}}])
    outcome = await host.run([wf], {})
    assert (outcome.status, outcome.error_code) == ("failed", "418")
