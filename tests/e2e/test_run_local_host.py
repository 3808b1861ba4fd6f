"""The local host in-process: event feed, sub-workflow index, auth secrets, reuse."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import Services, start_services
from tideflow.errors import EventsExhausted, FunctionCallError, TideflowError
from tideflow.runtime.effects import EventSpec, EventWait
from tideflow.runtime.hosts.local import (
    EventFeed,
    LocalHost,
    LocalOptions,
    SubflowIndex,
    TimelinePrinter,
    load_functions_file,
)
from tideflow.runtime.hosts.plumbing import idempotency_key
from tideflow.runtime.result import Step
from tideflow.testing import ManualClock
from tideflow.workflow import load_workflow

A = EventSpec(name="A", type="a")
B = EventSpec(name="B", type="b", source="/b")


def _ev(type_: str, **attrs: str) -> dict[str, str]:
    return {"specversion": "1.0", "id": type_, "type": type_, **attrs}


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with start_services() as running:
        yield running


def test_feed_takes_the_earliest_matching_event_and_keeps_the_others() -> None:
    feed = EventFeed([_ev("x"), _ev("b", source="/other"), _ev("b", source="/b"), _ev("a")])
    got = feed.take(EventWait(key="k", events=(A, B)))
    assert got == [_ev("b", source="/b")]  # file order decides, not the order of the specs
    assert [e["type"] for e in feed.pending] == ["x", "b", "a"]
    assert feed.take(EventWait(key="k", events=(B, A))) == [_ev("a")]


def test_feed_all_needs_every_event() -> None:
    feed = EventFeed([_ev("b", source="/b")])
    assert feed.take(EventWait(key="k", events=(A, B), all=True, timeout_seconds=1)) is None
    assert len(feed.pending) == 1  # nothing consumed by a wait that timed out
    with pytest.raises(EventsExhausted, match="waits for A"):
        feed.take(EventWait(key="k", events=(A, B), all=True, state="S"))
    feed.pending.append(_ev("a"))
    taken = feed.take(EventWait(key="k", events=(A, B), all=True))
    assert taken is not None
    assert [e["type"] for e in taken] == ["a", "b"]


def test_feed_binds_correlation_values_from_the_first_event() -> None:
    spec = EventSpec(name="R", type="r", correlation=(("room", None),))
    fixed = EventSpec(name="R", type="r", correlation=(("room", "9"),))
    feed = EventFeed([_ev("r"), _ev("r", room="1"), _ev("r", room="2"), _ev("r", room="1")])
    first = feed.take(EventWait(key="k", events=(spec,)))
    assert first == [_ev("r", room="1")]  # an event without the attribute never matches
    second = feed.take(EventWait(key="k", events=(spec,), timeout_seconds=1))
    assert second == [_ev("r", room="1")]
    assert feed.take(EventWait(key="k", events=(fixed,), timeout_seconds=1)) is None


def test_subflow_index_by_id_and_version(tmp_path: Path) -> None:
    for version in ("1", "2"):
        (tmp_path / f"child{version}.yaml").write_text(
            f"id: child\nversion: '{version}'\nspecVersion: '0.8'\nstates: []\n"
        )
    (tmp_path / "notes.yaml").write_text("just: notes\n")
    (tmp_path / "broken.yaml").write_text("id: [unclosed\n")
    index = SubflowIndex([tmp_path, tmp_path / "missing"])
    assert index.find("child", "2").name == "child2.yaml"
    assert index.find("child", None).name == "child1.yaml"
    with pytest.raises(FunctionCallError, match="'child version 3'") as info:
        index.find("child", "3")
    assert info.value.code == "SubflowNotFound"


def test_functions_file_and_idempotency_keys(tmp_path: Path) -> None:
    (tmp_path / "f.py").write_text("import json\nX = 1\ndef go(a):\n    return a\n")
    assert set(load_functions_file(tmp_path / "f.py")) == {"go"}
    (tmp_path / "bad.py").write_text("raise RuntimeError('no')\n")
    with pytest.raises(TideflowError, match="RuntimeError: no"):
        load_functions_file(tmp_path / "bad.py")
    assert idempotency_key("i1", "S/action:0/attempt:3") == "i1/S/action:0"
    assert idempotency_key("i1", "S/iter:2/action:0/attempt:1") == "i1/S/iter:2/action:0"
    assert idempotency_key("i1", "S/action:0/attempt:2", run_no=3) == "i1/run:3/S/action:0"


def test_timeline_printer_stamps_durations() -> None:
    clock, out = ManualClock(), io.StringIO()
    printer = TimelinePrinter(out, clock)
    printer(Step(kind="action.started", key="S/action:0/attempt:1", state="S"))
    clock.advance(0.25)
    printer(Step(kind="action.completed", key="S/action:0/attempt:1", state="S", detail={"a": 1}))
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("action.started [S] S/action:0/attempt:1")
    assert "(250.0 ms) a=1" in lines[1]


AUTH_WF = """
id: secure
specVersion: '0.8'
start: S
secrets: [petsToken]
auth:
  - name: pets
    scheme: bearer
    properties:
      token: ${ $SECRETS.petsToken }
functions:
  - name: whoAmI
    operation: http://localhost:8080/openapi/pets.yaml#whoAmI
    authRef: pets
states:
  - name: S
    type: operation
    actions:
      - functionRef: whoAmI
    end: true
"""


async def test_auth_properties_read_secrets_and_the_host_runs_again(
    services: Services, tmp_path: Path
) -> None:
    workflow = load_workflow(AUTH_WF)
    options = LocalOptions(
        secrets={"petsToken": "T-1"}, redirects={"http://localhost:8080": services.base_url}
    )
    async with LocalHost(options) as host:
        first = await host.run(workflow, {}, tmp_path)
        second = await host.run(workflow, {"again": True}, tmp_path)
    assert first.result.status == "completed"
    assert getattr(first.result, "output", None) == {"authorization": "Bearer T-1"}
    assert getattr(second.result, "output", None) == {
        "again": True,
        "authorization": "Bearer T-1",
    }
    assert first.instance_id != second.instance_id


async def test_async_subflow_that_terminates_with_the_parent_is_cancelled(tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text(
        "id: child\nspecVersion: '0.8'\nstart: Nap\nstates:\n"
        "  - {name: Nap, type: sleep, duration: PT30S, end: true}\n"
    )
    parent = load_workflow(
        "id: parent\nspecVersion: '0.8'\nstart: P\nstates:\n  - name: P\n    type: operation\n"
        "    actions:\n      - subFlowRef: {workflowId: child, invoke: async}\n    end: true\n"
    )
    async with LocalHost() as host:
        run = await host.run(parent, {"p": 1}, tmp_path)
    assert getattr(run.result, "output", None) == {"p": 1}
    assert run.result.status == "completed"


def test_feed_all_takes_distinct_events_for_alike_specs() -> None:
    again = EventSpec(name="A2", type="a")
    feed = EventFeed([_ev("a")])
    assert feed.take(EventWait(key="k", events=(A, again), all=True, timeout_seconds=1)) is None
    feed.pending.append(_ev("a"))
    assert feed.take(EventWait(key="k", events=(A, again), all=True)) == [_ev("a"), _ev("a")]
    assert feed.pending == []


async def test_auth_properties_may_be_one_secret_holding_them_all(
    services: Services, tmp_path: Path
) -> None:
    text = AUTH_WF.replace("secrets: [petsToken]", "secrets: [petsAuth]").replace(
        "    properties:\n      token: ${ $SECRETS.petsToken }",
        "    properties: ${ $SECRETS.petsAuth }",
    )
    options = LocalOptions(
        secrets={"petsAuth": {"token": "T-2"}},
        redirects={"http://localhost:8080": services.base_url},
    )
    async with LocalHost(options) as host:
        run = await host.run(load_workflow(text), {}, tmp_path)
    assert getattr(run.result, "output", None) == {"authorization": "Bearer T-2"}
