"""A runaway jq expression costs only its own instance, never the server.

A real ``tideflow serve``: instances whose data filter loops forever or
recurses without end fail with ``EXPRESSION_TIME_LIMIT`` /
``EXPRESSION_MEMORY_LIMIT`` while ``/healthz`` keeps answering from a second
client and a healthy workflow keeps completing; a restart afterwards starts
normally and does not run the bad expressions again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.served import LOCAL, HealthProber, auth_for, copied_database, serve_process
from tests.support.sink import ThreadedSink


def _definition(wf_id: str, output_filter: str) -> dict[str, Any]:
    return {
        "id": wf_id,
        "version": "1",
        "specVersion": "0.8",
        "start": "Only",
        "states": [
            {
                "name": "Only",
                "type": "inject",
                "data": {"injected": True},
                "stateDataFilter": {"output": output_filter},
                "end": True,
            }
        ],
    }


LOOPS = _definition("loops", "${ def f: f; f }")
BOMBS = _definition("bombs", "${ def f: [f]; f }")
HEALTHY = _definition("healthy", "${ reduce .items[] as $x (0; . + $x) }")


@pytest.fixture
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    name = f"t_{_db_names[0]}_serve_isolation"
    async with copied_database(pg_server_url, pg_template, name) as url:
        yield url


def _start(url: str, wf_id: str, data: Any) -> str:
    answer = httpx.post(
        f"{url}/workflows/{wf_id}/instances", json=data, timeout=10, headers=auth_for(url)
    )
    assert answer.status_code == 201, answer.text
    instance_id: str = answer.json()["id"]
    return instance_id


def _settled(url: str, instance_id: str, seconds: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        shown: dict[str, Any] = httpx.get(
            f"{url}/instances/{instance_id}", timeout=10, headers=auth_for(url)
        ).json()
        if shown["status"] in ("completed", "failed"):
            return shown
        assert time.monotonic() < deadline, f"{instance_id} never ended: {shown}"
        time.sleep(0.05)


@pytest.mark.timeout(180)
def test_runaway_expressions_fail_their_instances_and_nothing_else(
    database: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The time limit is wall time: on a loaded machine (two workers sharing two busy cores)
    # the memory bomb took over 5 s to reach 64 MiB and failed on time instead. 20 s leaves
    # the memory limit to hit first under any load seen here; only the looping instance waits.
    monkeypatch.setenv("TIDEFLOW_EXPRESSION_TIME_LIMIT", "20")
    monkeypatch.setenv("TIDEFLOW_EXPRESSION_MEMORY_LIMIT", str(64 * 1024 * 1024))
    with serve_process(database, tmp_path) as server:
        for definition in (LOOPS, BOMBS, HEALTHY):
            deployed = httpx.post(
                f"{server.url}/workflows", json=definition, timeout=30, headers=auth_for(server.url)
            )
            assert deployed.status_code == 201, deployed.text
        prober = HealthProber(server.url)
        prober.start()
        try:
            bad = [_start(server.url, "loops", {}), _start(server.url, "bombs", {})]
            good = [_start(server.url, "healthy", {"items": [1, 2, n]}) for n in range(5)]
            outcomes = [_settled(server.url, i) for i in good + bad]
        finally:
            prober.stop()
    assert [o["status"] for o in outcomes[:5]] == ["completed"] * 5
    assert [o["output"] for o in outcomes[:5]] == [3, 4, 5, 6, 7]
    looped, bombed = outcomes[5:]
    assert (looped["status"], looped["error"]["code"]) == ("failed", "EXPRESSION_TIME_LIMIT")
    assert (bombed["status"], bombed["error"]["code"]) == ("failed", "EXPRESSION_MEMORY_LIMIT")
    assert prober.answers
    assert set(prober.answers) == {200}
    print(prober.summary())
    with serve_process(database, tmp_path) as again:  # starts normally: nothing re-runs
        assert _settled(again.url, bad[0])["error"]["code"] == "EXPRESSION_TIME_LIMIT"
        after = _start(again.url, "healthy", {"items": [40, 2]})
        assert _settled(again.url, after)["output"] == 42


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_values_beyond_the_limits_are_refused_and_big_integers_stay_exact(
    database: str, tmp_path: Any
) -> None:
    structured = {"content-type": "application/cloudevents+json"}
    big = 123456789012345678901234567890
    with serve_process(database, tmp_path) as server:
        deployed = httpx.post(
            f"{server.url}/workflows", json=HEALTHY, timeout=30, headers=server.auth
        )
        assert deployed.status_code == 201, deployed.text
        deep_input = httpx.post(
            f"{server.url}/workflows/healthy/instances",
            content='{"items": ' + _nested(255) + "}",
            headers={"content-type": "application/json", **server.auth},
            timeout=10,
        )
        assert deep_input.status_code == 413
        assert deep_input.json()["detail"].startswith("VALUE_DEPTH_LIMIT")
        deep_event = httpx.post(
            f"{server.url}/events",
            content='{"specversion": "1.0", "id": "deep", "source": "/t", "type": "t", '
            '"data": ' + _nested(300) + "}",
            headers={**structured, **server.auth},
            timeout=10,
        )
        assert deep_event.status_code == 400
        assert deep_event.json()["detail"].startswith("VALUE_DEPTH_LIMIT")
        exact = httpx.post(
            f"{server.url}/events",
            content='{"specversion": "1.0", "id": "big", "source": "/t", "type": "t", '
            f'"data": {{"n": {big}}}}}',
            headers={**structured, **server.auth},
            timeout=10,
        )
        assert exact.status_code == 202, exact.text
        page = httpx.get(f"{server.url}/buses/default/events", timeout=10, headers=server.auth)
        assert page.status_code == 200
        assert f'"n":{big}' in page.text.replace(" ", "")
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        # the journal keeps it exact (jq's own arithmetic is in doubles)
        started = _start(server.url, "healthy", {"items": [1, 2], "id": big})
        assert _settled(server.url, started)["status"] == "completed"
        shown = httpx.get(f"{server.url}/instances/{started}", timeout=10, headers=server.auth)
        assert str(big) in shown.text


def test_a_server_killed_during_a_runaway_restarts_and_fails_only_that_instance(
    database: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIDEFLOW_LEASE_SECONDS", "2")  # the restart takes the instance over soon
    monkeypatch.setenv("TIDEFLOW_EXPRESSION_TIME_LIMIT", "60")
    with serve_process(database, tmp_path) as first:
        for definition in (LOOPS, HEALTHY):
            deployed = httpx.post(
                f"{first.url}/workflows", json=definition, timeout=30, headers=auth_for(first.url)
            )
            assert deployed.status_code == 201, deployed.text
        looping = _start(first.url, "loops", {})
        first.process.kill()  # SIGKILL while its worker spins (or is about to)
        first.process.wait(30)
    monkeypatch.setenv("TIDEFLOW_EXPRESSION_TIME_LIMIT", "1")
    with serve_process(database, tmp_path) as second:  # binds and answers at once
        healthy = _start(second.url, "healthy", {"items": [1, 2]})
        assert _settled(second.url, healthy)["output"] == 3
        failed = _settled(second.url, looping)
        assert (failed["status"], failed["error"]["code"]) == ("failed", "EXPRESSION_TIME_LIMIT")
        assert httpx.get(f"{second.url}/healthz", timeout=10).status_code == 200


@pytest.mark.timeout(240)
def test_a_step_that_keeps_killing_its_server_is_quarantined_not_run_again(
    database: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each start claims the instance left by the SIGKILLed one; the second time at the
    same step is the last: the third start fails it without calling anything."""
    monkeypatch.setenv("TIDEFLOW_LEASE_SECONDS", "2")  # a killed server's instance, soon
    monkeypatch.setenv("TIDEFLOW_QUARANTINE_AFTER", "2")
    sink = ThreadedSink()  # answers nothing under /hang: the step never ends by itself
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    calling = {
        "id": "calling",
        "version": "1",
        "specVersion": "0.8",
        "start": "Call",
        "functions": [
            {"name": "hang", "type": "custom", "operation": f"rest:post:{sink.url}/hang"}
        ],
        "states": [
            {"name": "Call", "type": "operation", "actions": [{"functionRef": "hang"}], "end": True}
        ],
    }
    try:
        instance = ""
        for run in (1, 2):
            with serve_process(database, tmp_path, *LOCAL) as server:
                if run == 1:
                    for definition in (calling, HEALTHY):
                        deployed = httpx.post(
                            f"{server.url}/workflows", json=definition, headers=server.auth
                        )
                        assert deployed.status_code == 201, deployed.text
                    instance = _start(server.url, "calling", {})
                deadline = time.monotonic() + 60
                while sink.paths().count("/hang") < run:  # inside the step (again)
                    assert time.monotonic() < deadline, "the step was not run"
                    time.sleep(0.05)
                server.process.kill()  # the step "kills" its server
                server.process.wait(30)
        with serve_process(database, tmp_path, *LOCAL) as third:
            failed = _settled(third.url, instance)
            healthy = _start(third.url, "healthy", {"items": [40, 2]})
            assert _settled(third.url, healthy)["output"] == 42
    finally:
        sink.release.set()
        sink.shutdown()
        sink.server_close()
    assert (failed["status"], failed["error"]["code"]) == ("failed", "QUARANTINED")
    assert "stopped 2 times" in failed["error"]["message"]
    assert sink.paths().count("/hang") == 2  # never a third time
