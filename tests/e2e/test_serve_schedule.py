"""Scheduled starts in a real ``tideflow serve`` process on the test database.

A workflow deployed with ``start.schedule`` gets one instance per tick; a
cron schedule keeps its ticks across a restart (the server is stopped, time
passes, a new server deploys the same folder): the ticks missed meanwhile run
per the catch-up policy -- here within the grace period, so every one -- and
each at most once. Wall-clock time passes here (a real server); the catch-up
policy itself is tested on an injected clock in
``tests/integration/test_workflow_schedules.py``.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.served import auth_for, copied_database, serve_process, stop
from tideflow.isotime import parse_timestamp
from tideflow.runtime.after_schedules import chain_id, chain_instance_id, start_timer_id
from tideflow.runtime.start_schedules import (
    EVENT_START_WARNING,
    WORKFLOW_START_KIND,
    instance_id_for,
)

TICKER = {
    "id": "ticker",
    "version": "1",
    "specVersion": "0.8",
    "start": {"stateName": "Tick", "schedule": "R/PT1S"},
    "states": [{"name": "Tick", "type": "inject", "data": {"ticked": True}, "end": True}],
}

CRON_TICKER = """\
id: cron-ticker
version: "1"
specVersion: "0.8"
start:
  stateName: Tick
  schedule:
    cron: 0/2 * * * * ?
    timezone: Europe/Paris
states:
  - name: Tick
    type: inject
    data:
      ticked: true
    end: true
"""

TICKER_10 = """\
document: {dsl: '1.0.3', namespace: test, name: ticker, version: '1.0.0'}
schedule:
  every: {seconds: 1}
do:
  - tick: {set: {ticked: true}}
"""


@pytest.fixture
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    name = f"t_{_db_names[0]}_serve_schedule"
    async with copied_database(pg_server_url, pg_template, name) as url:
        yield url


def instances(url: str, workflow: str) -> list[dict[str, Any]]:
    body = httpx.get(
        f"{url}/instances",
        params={"workflow": workflow, "limit": 1000, "order": "asc"},  # in the order they ran
        timeout=10,
        headers=auth_for(url),
    )
    found: list[dict[str, Any]] = body.json()["instances"]
    return found


def fired_ticks(url: str, workflow: str) -> list[dict[str, Any]]:
    params: dict[str, str | int] = {"kind": WORKFLOW_START_KIND, "state": "fired", "limit": 1000}
    timers = httpx.get(f"{url}/timers", params=params, timeout=10, headers=auth_for(url)).json()[
        "timers"
    ]
    return [t for t in timers if t["scheduleId"] == f"workflow:{workflow}"]


def wait_until(what: str, check: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def due_times(ticks: list[dict[str, Any]]) -> list[datetime]:
    return sorted(parse_timestamp(t["dueAt"]) for t in ticks)


def assert_one_instance_per_tick(url: str, workflow: str, step: timedelta) -> list[datetime]:
    """Every fired tick started exactly its instance; ticks are ``step`` apart, none missing."""
    ticks = fired_ticks(url, workflow)
    started = {i["id"]: i for i in instances(url, workflow)}
    expected = {instance_id_for(t["id"]) for t in ticks}
    assert expected <= started.keys()
    # An instance beyond the fired ticks would be a second start of some tick.
    assert len(started) - len(expected) <= 1  # at most a tick firing between the two reads
    dues = due_times(ticks)
    assert len(set(dues)) == len(dues)
    assert all(later - earlier == step for earlier, later in itertools.pairwise(dues))
    assert {json.dumps(started[i]["input"]) for i in expected} == {"{}"}
    return dues


def test_interval_schedule_starts_an_instance_every_second(database: str, tmp_path: Path) -> None:
    with serve_process(database, tmp_path) as server:
        deployed = httpx.post(
            f"{server.url}/workflows", json=TICKER, timeout=10, headers=auth_for(server.url)
        )
        assert deployed.status_code == 201, deployed.text
        assert deployed.json()["warnings"] == []
        wait_until("3 scheduled instances", lambda: len(fired_ticks(server.url, "ticker")) >= 3)
        assert_one_instance_per_tick(server.url, "ticker", timedelta(seconds=1))
        first = instances(server.url, "ticker")[0]
        wait_until(
            "the first instance to complete",
            lambda: (
                httpx.get(
                    f"{server.url}/instances/{first['id']}", headers=auth_for(server.url)
                ).json()["status"]
                == "completed"
            ),
        )
        assert (
            httpx.delete(
                f"{server.url}/workflows/ticker", timeout=10, headers=auth_for(server.url)
            ).status_code
            == 204
        )
        time.sleep(0.5)  # a tick planned just before the delete settles
        count = len(fired_ticks(server.url, "ticker"))
        _deploy_event_start_and_unusable(server.url)
        time.sleep(2.5)  # real time: ticks would have come
        assert len(fired_ticks(server.url, "ticker")) == count
        assert fired_ticks(server.url, "on-event") == []
        assert instances(server.url, "on-event") == []


def _deploy_event_start_and_unusable(url: str) -> None:
    """An event start state's schedule is a warning; an unusable schedule a 422."""
    waits: dict[str, Any] = {"name": "Tick", "type": "event", "end": True}
    waits["onEvents"] = [{"eventRefs": ["Go"]}]
    on_event = {
        **TICKER,
        "id": "on-event",
        "events": [{"name": "Go", "type": "go", "source": "test"}],
        "states": [waits],
    }
    deployed = httpx.post(f"{url}/workflows", json=on_event, timeout=10, headers=auth_for(url))
    assert deployed.status_code == 201, deployed.text
    assert [w["path"] for w in deployed.json()["warnings"]] == ["start.schedule"]
    never = {
        **TICKER,
        "id": "never",
        "start": {"stateName": "Tick", "schedule": {"cron": "0 0 30 2 *"}},
    }
    rejected = httpx.post(f"{url}/workflows", json=never, timeout=10, headers=auth_for(url))
    assert rejected.status_code == 422, rejected.text
    assert [e["path"] for e in rejected.json()["errors"]] == ["start.schedule.cron"]
    assert httpx.get(f"{url}/workflows/never", timeout=10, headers=auth_for(url)).status_code == 404


def test_two_servers_on_one_database_start_each_tick_once(database: str, tmp_path: Path) -> None:
    with (
        serve_process(database, tmp_path) as one,
        serve_process(database, tmp_path) as other,
    ):
        deployed = httpx.post(
            f"{one.url}/workflows", json=TICKER, timeout=10, headers=auth_for(one.url)
        )
        assert deployed.status_code == 201, deployed.text
        wait_until("5 ticks", lambda: len(fired_ticks(other.url, "ticker")) >= 5)
        assert_one_instance_per_tick(other.url, "ticker", timedelta(seconds=1))


def test_cron_schedule_across_a_restart_runs_each_tick_once(database: str, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "cron-ticker.yaml").write_text(CRON_TICKER)
    with serve_process(database, tmp_path, "--workflows", str(flows)) as first:
        wait_until("2 ticks", lambda: len(fired_ticks(first.url, "cron-ticker")) >= 2)
        assert stop(first.process) == 0
    time.sleep(5)  # the server is down: two or three ticks are missed
    with serve_process(database, tmp_path, "--workflows", str(flows)) as second:
        wait_until("6 ticks", lambda: len(fired_ticks(second.url, "cron-ticker")) >= 6)
        # Contiguous ticks (none skipped), each fired once with its own instance.
        dues = assert_one_instance_per_tick(second.url, "cron-ticker", timedelta(seconds=2))
        ticks = fired_ticks(second.url, "cron-ticker")
    assert all(d.second % 2 == 0 and d.microsecond == 0 for d in dues)
    late = [
        t["id"]
        for t in ticks
        if parse_timestamp(t["firedAt"]) - parse_timestamp(t["dueAt"]) >= timedelta(seconds=1)
    ]
    assert late, f"no tick was caught up after the restart: {ticks}"


def test_validate_checks_the_schedule_as_a_deploy_does(tmp_path: Path) -> None:
    never = CRON_TICKER.replace("cron: 0/2 * * * * ?", "cron: 0 0 30 2 *")
    (tmp_path / "never.yaml").write_text(never)
    waits = {"name": "Tick", "type": "event", "onEvents": [{"eventRefs": ["Go"]}], "end": True}
    go = {"name": "Go", "type": "go", "source": "test"}
    on_event = {**TICKER, "events": [go], "states": [waits]}
    (tmp_path / "on-event.json").write_text(json.dumps(on_event))
    result = subprocess.run(
        [sys.executable, "-m", "tideflow.cli", "validate", "never.yaml", "on-event.json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 1, result.stdout + result.stderr
    assert lines[0].startswith("never.yaml: start.schedule.cron: invalid cron expression")
    assert lines[1:] == ["on-event.json: ok", f"  warning: start.schedule: {EVENT_START_WARNING}"]


def test_a_10_every_schedule_starts_an_instance_per_interval(database: str, tmp_path: Path) -> None:
    yaml_media = {"content-type": "application/yaml"}
    with serve_process(database, tmp_path) as server:
        headers = {**auth_for(server.url), **yaml_media}
        deployed = httpx.post(
            f"{server.url}/workflows", content=TICKER_10, timeout=10, headers=headers
        )
        assert deployed.status_code == 201, deployed.text
        wait_until("3 ticks", lambda: len(fired_ticks(server.url, "test.ticker")) >= 3)
        assert_one_instance_per_tick(server.url, "test.ticker", timedelta(seconds=1))
        first = min(fired_ticks(server.url, "test.ticker"), key=lambda t: str(t["dueAt"]))
        shown = f"{server.url}/instances/{instance_id_for(first['id'])}"
        wait_until(
            "the first instance to complete",
            lambda: httpx.get(shown, headers=auth_for(server.url)).json()["status"]
            == "completed",
        )
        assert httpx.get(shown, headers=auth_for(server.url)).json()["output"] == {"ticked": True}
        never = TICKER_10.replace("name: ticker", "name: never").replace(
            "every: {seconds: 1}", "cron: 0 0 30 2 *"
        )
        rejected = httpx.post(f"{server.url}/workflows", content=never, timeout=10, headers=headers)
        assert rejected.status_code == 422, rejected.text
        assert [e["path"] for e in rejected.json()["errors"]] == ["schedule.cron"]


AGAIN_10 = """\
document: {dsl: '1.0.3', namespace: test, name: again, version: '1.0.0'}
schedule:
  after: PT1S
do:
  - tick: {set: {ticked: true}}
"""


def test_a_10_after_schedule_runs_again_a_delay_after_each_run_ends(
    database: str, tmp_path: Path
) -> None:
    yaml_media = {"content-type": "application/yaml"}
    with serve_process(database, tmp_path) as server:
        headers = {**auth_for(server.url), **yaml_media}
        deployed = httpx.post(
            f"{server.url}/workflows", content=AGAIN_10, timeout=10, headers=headers
        )
        assert deployed.status_code == 201, deployed.text
        assert deployed.json().get("warnings", []) == []
        wait_until("3 runs", lambda: len(instances(server.url, "test.again")) >= 3, seconds=40)
        runs = instances(server.url, "test.again")
    chain = chain_id("test.again", "1.0.0")
    assert [r["id"] for r in runs[:3]] == [
        chain_instance_id(start_timer_id(chain, n)) for n in range(3)
    ]
    for earlier, later in itertools.pairwise(runs[:3]):
        assert earlier["status"] == "completed"
        ended = parse_timestamp(earlier["endedAt"])
        assert parse_timestamp(later["startedAt"]) >= ended + timedelta(seconds=1)
