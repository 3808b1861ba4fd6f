"""Issue 11's probes against one real ``tideflow serve``: each costs only itself.

One server (and one database) for the whole module, attacked probe after
probe. Throughout, a second client -- a process of its own, so the test's
work never counts as the server's latency -- asks ``/healthz``
(:class:`HealthProber`: every answer and its latency recorded, printed at the
end per probe). The test asserts that every request was answered 200; how
fast (issue 11: under 100 ms throughout) only with
``TIDEFLOW_PROBE_HEALTHZ_MS=100``, on a machine quiet enough for a latency to
mean something (CI's shared machine is not: no timing assertions there). After
-- or while --
each attack, a healthy workflow completes and a healthy subscription
delivers (:meth:`Probes.healthy`). The last test restarts the server on the
same database: it starts normally and runs nothing of the attacks again.

The probes and the tests that cover each are listed in ``docs/security.md``
("Probes").

``TIDEFLOW_PROBE_FULL=1`` runs the heavy probes at the issue's sizes (a
foreach against the default 10,000-item limit and its whole timeline).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import with_database
from tests.support.served import LOCAL, HealthProber, Served, serve_process
from tests.support.sink import ThreadedSink
from tideflow import limits
from tideflow.eventstore.gateway import PostgresEventStore
from tideflow.triggers.correlation import PARTITIONS, partition_subscription

FULL = os.environ.get("TIDEFLOW_PROBE_FULL") == "1"
HEALTHZ_MS = float(os.environ.get("TIDEFLOW_PROBE_HEALTHZ_MS") or 0)
"""When set: every ``/healthz`` answer during the probes must come within this many ms."""
FOREACH_LIMIT = 10_000 if FULL else 2_000
STRUCTURED = {"content-type": "application/cloudevents+json"}

HEALTHY = {
    "id": "healthy",
    "version": "1",
    "specVersion": "0.8",
    "start": "Sum",
    "states": [
        {
            "name": "Sum",
            "type": "inject",
            "data": {},
            "stateDataFilter": {"output": "${ reduce .items[] as $x (0; . + $x) }"},
            "end": True,
        }
    ],
}
STARTER = {
    "id": "starter",
    "version": "1",
    "specVersion": "0.8",
    "start": "Got",
    "events": [{"name": "Go", "type": "probe.go", "source": "/probe"}],
    "states": [{"name": "Got", "type": "event", "onEvents": [{"eventRefs": ["Go"]}], "end": True}],
}
EACH = {
    "id": "each",
    "version": "1",
    "specVersion": "0.8",
    "start": "Each",
    "functions": [{"name": "double", "type": "expression", "operation": "${ .item * 2 }"}],
    "states": [
        {
            "name": "Each",
            "type": "foreach",
            "inputCollection": "${ .items }",
            "iterationParam": "item",
            "outputCollection": "${ .out }",
            "actions": [{"functionRef": "double"}],
            "end": True,
        }
    ],
}


@dataclass
class Probes:
    """The server under attack and its healthy neighbours."""

    server: Served
    database: str
    home: Path
    sink: ThreadedSink
    silent: socket.socket
    prober: HealthProber
    healthy_runs: int = 0
    notes: list[str] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)
    """When each probe began (monotonic), to attribute the prober's latencies."""

    def begin(self, probe: str) -> None:
        self.marks.append((time.monotonic(), probe))

    @property
    def url(self) -> str:
        return self.server.url

    def http(self, timeout: float = 30) -> httpx.Client:
        return self.server.client(timeout)

    def healthy(self) -> None:
        """The healthy workflow completes and the healthy subscription delivers, now."""
        self.healthy_runs += 1
        n = self.healthy_runs
        with self.http() as http:
            started = http.post(
                "/workflows/healthy/instances", json={"items": [n, 1]}, params={"wait": 20}
            )
            assert started.status_code == 201, started.text
            assert (started.json()["status"], started.json()["output"]) == ("completed", n + 1)
            event = {"specversion": "1.0", "id": f"ok-{n}", "source": "/probe", "type": "ok"}
            sent = http.post("/buses/healthy/events", json=event, headers=STRUCTURED)
            assert sent.status_code == 202, sent.text
        _until(lambda: f"ok-{n}" in self.sink.ids("/healthy"), f"healthy delivery {n}")

    def subscribe(self, bus: str, path: str, **spec: Any) -> httpx.Response:
        """Create ``bus`` if it is new, then a subscription on it to the sink's ``path``."""
        with self.http() as http:
            if http.get(f"/buses/{bus}").status_code == 404:
                assert http.post("/buses", json={"name": bus}).status_code == 201
            return http.post(
                "/subscriptions", json={"bus": bus, "sink": f"{self.sink.url}{path}", **spec}
            )

    def publish(self, bus: str, *events: dict[str, Any]) -> None:
        """Send structured events to ``bus``, each acknowledged."""
        with self.http() as http:
            for event in events:
                sent = http.post(f"/buses/{bus}/events", json=event, headers=STRUCTURED)
                assert sent.status_code == 202, sent.text

    def dead_letters(self, bus: str) -> list[dict[str, Any]]:
        with self.http() as http:
            page = http.get(f"/buses/{bus}/events")
        if page.status_code == 404:
            return []
        assert page.status_code == 200, page.text
        return [record["event"] for record in page.json()["events"]]


def _until(check: Any, what: str, seconds: float = 30.0) -> None:
    """Poll the server's state (over HTTP, not a clock) until ``check()`` holds."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def _admin(url: str, statement: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(scope="module")
def probes(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]], tmp_path_factory: Any
) -> Iterator[Probes]:
    name = f"t_{_db_names[0]}_probes"
    _admin(pg_server_url, f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    database = with_database(pg_server_url, name)
    home = tmp_path_factory.mktemp("probes")
    sink = ThreadedSink()
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    silent = socket.socket()  # accepts connections (the backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TIDEFLOW_FOREACH_ITEMS_LIMIT", str(FOREACH_LIMIT))
        env.setenv("TIDEFLOW_SINK_TIMEOUT_LIMIT", "60")
        try:
            with serve_process(database, home, *LOCAL) as server:
                prober = HealthProber(server.url)
                probes = Probes(server, database, home, sink, silent, prober)
                with probes.http() as http:
                    for definition in (HEALTHY, STARTER, EACH):
                        deployed = http.post("/workflows", json=definition)
                        assert deployed.status_code == 201, deployed.text
                    assert http.post("/buses", json={"name": "healthy"}).status_code == 201
                    made = http.post(
                        "/subscriptions", json={"bus": "healthy", "sink": f"{sink.url}/healthy"}
                    )
                    assert made.status_code == 201, made.text
                prober.start()
                try:
                    yield probes
                finally:
                    prober.stop()
                    sink.release.set()
        finally:
            sink.release.set()
            sink.shutdown()
            sink.server_close()
            silent.close()
            _admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


async def _store_poisoned(database: str) -> None:
    """Append an event nested 300 deep the way a server without the depth limit did."""
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    try:
        limits.configure(limits.Limits(value_depth=1000))
        async with PostgresEventStore(pool, retention_interval=None) as store:
            event = {
                "specversion": "1.0",
                "id": "poisoned",
                "source": "/probe",
                "type": "probe.go",
                "data": _nested(300),
            }
            await store.append("default", [event])
    finally:
        limits.configure(limits.Limits())
        await pool.close()


@pytest.mark.timeout(120)
def test_a_poisoned_start_event_is_dead_lettered_and_later_starts_go_on(probes: Probes) -> None:
    probes.begin("a_poisoned_start_event_is_dead_lettered_and_later_starts_go_on")
    asyncio.run(_store_poisoned(probes.database))
    go = {"specversion": "1.0", "id": "go-1", "source": "/probe", "type": "probe.go"}
    with probes.http() as http:
        assert http.post("/events", json=go, headers=STRUCTURED).status_code == 202

        def started() -> bool:
            page = http.get("/instances", params={"workflow": "starter"})
            return len(page.json()["instances"]) == 1

        _until(started, "the start event behind the poisoned one starts its instance")
        page = http.get("/buses/default/events")  # holds the event nested 300 deep
        assert page.status_code == 200, page.text
        assert "poisoned" in page.text
    letters = probes.dead_letters("default.deadletter")
    assert [letter["deadletterid"] for letter in letters] == ["poisoned"]
    reason = letters[0]["deadletterreason"]
    assert reason.startswith("VALUE_DEPTH_LIMIT: the event is nested deeper than 128")
    assert "data dropped" in reason  # the store no longer takes it whole
    # the partition of the workflow subscriber that makes this event's start
    assert letters[0]["deadlettersub"] in {partition_subscription(i) for i in range(PARTITIONS)}
    probes.healthy()


@pytest.mark.timeout(120)
def test_a_runaway_transform_costs_only_its_subscription(probes: Probes) -> None:
    probes.begin("a_runaway_transform_costs_only_its_subscription")
    made = probes.subscribe("loops", "/loops", transform="def f: f; f", delivery={"retry": 0})
    assert made.status_code == 201, made.text
    probes.publish("loops", {"specversion": "1.0", "id": "loop-1", "source": "/p", "type": "t"})
    probes.healthy()  # while the transform runs away (or after it was stopped)
    _until(lambda: probes.dead_letters("loops.deadletter"), "the looping event dead-lettered")
    [letter] = probes.dead_letters("loops.deadletter")
    assert "EXPRESSION_TIME_LIMIT" in letter["deadletterreason"]
    assert probes.sink.ids("/loops") == []


@pytest.mark.timeout(120)
def test_a_reference_that_never_answers_stalls_only_its_deploy(probes: Probes) -> None:
    probes.begin("a_reference_that_never_answers_stalls_only_its_deploy")
    port = probes.silent.getsockname()[1]
    definition = {**HEALTHY, "id": "referencing", "functions": f"http://127.0.0.1:{port}/f.json"}
    answer: list[httpx.Response] = []

    def deploy() -> None:
        with probes.http(timeout=60) as http:
            answer.append(http.post("/workflows", json=definition))

    deploying = threading.Thread(target=deploy)
    deploying.start()
    probes.healthy()  # while the deploy waits for the silent port
    with probes.http() as http:
        assert http.get("/workflows").status_code == 200
    deploying.join(60)
    [refused] = answer
    assert refused.status_code == 422, refused.text
    assert f"127.0.0.1:{port}/f.json" in refused.text
    assert "no complete answer within" in refused.text


def test_a_yaml_alias_bomb_is_refused(probes: Probes) -> None:
    probes.begin("a_yaml_alias_bomb_is_refused")
    lol = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    rows = "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
        f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
        f"*{chr(97 + i)}]\n"
        for i in range(8)
    )
    bomb = lol + rows + "id: bomb\nspecVersion: '0.8'\nstart: X\nstates: *i\n"
    with probes.http() as http:
        refused = http.post(
            "/workflows", content=bomb, headers={"content-type": "application/yaml"}
        )
        assert refused.status_code == 400, refused.text  # unreadable, as a YAML syntax error
        assert refused.json()["detail"].endswith(
            "DEFINITION_NODES_LIMIT: the definition expands to more than 100000 values "
            "(YAML aliases counted each time they are used)"
        )
        assert http.get("/workflows/bomb").status_code == 404
    probes.notes.append(f"alias bomb: {len(bomb.encode())} bytes")
    probes.healthy()


@pytest.mark.timeout(120)
def test_a_like_pattern_against_a_megabyte_attribute_stalls_nothing(probes: Probes) -> None:
    probes.begin("a_like_pattern_against_a_megabyte_attribute_stalls_nothing")
    pattern = "%a" + "_" * 5000 + "b%"
    made = probes.subscribe("likes", "/likes", filters=[{"sql": f"big LIKE '{pattern}'"}])
    assert made.status_code == 201, made.text
    sub_id = made.json()["id"]
    probes.publish(
        "likes",
        *(
            {"specversion": "1.0", "id": f"big-{i}", "source": "/p", "type": "t", "big": big}
            for i, big in enumerate(["a" * 1_000_000, "a" * 6000 + "b"])
        ),
    )
    probes.healthy()
    with probes.http() as http:

        def passed() -> bool:
            return int(http.get(f"/subscriptions/{sub_id}").json()["committedOffset"]) >= 2

        _until(passed, "both events filtered")
    assert probes.sink.ids("/likes") == ["big-1"]  # the megabyte of a is no match


@pytest.mark.timeout(120)
def test_a_sink_that_never_answers_holds_only_its_subscription(probes: Probes) -> None:
    probes.begin("a_sink_that_never_answers_holds_only_its_subscription")
    forever = probes.subscribe("hangs", "/hang", delivery={"timeout": "P365D"})
    assert forever.status_code == 422, forever.text
    assert "delivery.timeout" in forever.text
    made = probes.subscribe(
        "hangs", "/hang", delivery={"timeout": "PT2S", "retry": 0, "maxInFlight": 4}
    )
    assert made.status_code == 201, made.text
    probes.publish(
        "hangs",
        *({"specversion": "1.0", "id": f"hang-{i}", "source": "/p", "type": "t"} for i in range(8)),
    )
    _until(lambda: len(probes.sink.ids("/hang")) >= 4, "the hanging sink holds its deliveries")
    probes.healthy()  # while every connection of the other subscription hangs
    _until(lambda: len(probes.dead_letters("hangs.deadletter")) == 8, "each one timed out")
    reasons = {letter["deadletterreason"] for letter in probes.dead_letters("hangs.deadletter")}
    assert all("timeout" in reason for reason in reasons), reasons


def _declared_body(url: str, path: str, token: str, size: int) -> tuple[int, bytes]:
    """POST declaring ``size`` bytes but sending a few: the answer without the rest."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as conn:
        conn.sendall(
            f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\nauthorization: Bearer {token}\r\n"
            f'content-type: application/json\r\ncontent-length: {size}\r\n\r\n{{"items": ['.encode()
        )
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ")[1]), answer.partition(b"\r\n\r\n")[2]


@pytest.mark.timeout(180)
def test_huge_bodies_and_foreach_collections_are_bounded(probes: Probes) -> None:
    probes.begin("huge_bodies_and_foreach_collections_are_bounded")
    status, body = _declared_body(
        probes.url, "/workflows/healthy/instances", probes.server.token, 100_000_000
    )
    assert status == 413
    assert b"VALUE_BYTES_LIMIT" in body
    with probes.http(timeout=120) as http:
        too_many = http.post(
            "/workflows/each/instances", json={"items": list(range(200_000))}, params={"wait": 60}
        )
        assert too_many.status_code == 201, too_many.text
        failed = too_many.json()
        assert (failed["status"], failed["error"]["code"]) == ("failed", "FOREACH_ITEMS_LIMIT")
        assert str(FOREACH_LIMIT) in failed["error"]["message"]
        probes.healthy()
        most = http.post(
            "/workflows/each/instances",
            json={"items": list(range(FOREACH_LIMIT))},
            params={"wait": 60},  # the longest wait; a loaded machine may need a second one
        )
        assert most.status_code == 201, most.text
        instance_id = most.json()["id"]
        shown = most.json()
        for _ in range(3):
            if shown["status"] != "running":
                break
            again = http.get(f"/instances/{instance_id}", params={"wait": 60})
            assert again.status_code == 200, again.text
            shown = again.json()
        assert shown["status"] == "completed", shown
        pages, entries, after = 0, 0, None
        while True:
            params: dict[str, Any] = {"limit": 500} | ({"after": after} if after else {})
            page = http.get(f"/instances/{instance_id}/timeline", params=params)
            assert page.status_code == 200, page.text
            assert len(page.json()["entries"]) <= 500
            pages, entries = pages + 1, entries + len(page.json()["entries"])
            after = page.json()["next"]
            if after is None:
                break
    assert pages > 1
    assert entries >= FOREACH_LIMIT  # at least a step per item, never in one answer
    probes.notes.append(f"foreach of {FOREACH_LIMIT}: timeline of {entries} in {pages} pages")
    probes.healthy()


def test_small_probes_are_clear_4xx_answers(probes: Probes) -> None:
    probes.begin("small_probes_are_clear_4xx_answers")
    with probes.http() as http:
        for bus in ("tideflow.lifecycle", "default"):
            assert http.delete(f"/buses/{bus}").status_code == 409
        assert http.delete("/subscriptions/tideflow.workflows").status_code == 409
        for bad_id in ("a/b", "x\r\ny"):
            refused = http.post("/workflows", json={**HEALTHY, "id": bad_id})
            assert refused.status_code == 422, refused.text
        big = 123456789012345678901234567890
        exact = http.post(
            "/buses/healthy/events",
            content='{"specversion": "1.0", "id": "big", "source": "/p", "type": "t", '
            f'"data": {{"n": {big}}}}}',
            headers=STRUCTURED,
        )
        assert exact.status_code == 202, exact.text
        assert f'"n":{big}' in http.get("/buses/healthy/events").text.replace(" ", "")
        for attribute, value in (("deliverytime", "soon"), ("delay", "-5"), ("delay", 7)):
            event = {
                "specversion": "1.0",
                "id": "odd",
                "source": "/p",
                "type": "t",
                attribute: value,
            }
            odd = http.post("/events", json=event, headers=STRUCTURED)
            assert odd.status_code == 400, odd.text
            assert attribute in odd.json()["detail"] or odd.json().get("path") == attribute
            assert "Traceback" not in odd.text
        secret = "https://alice:s3cret@hooks.example/in"
        refused = http.post("/subscriptions", json={"bus": "healthy", "sink": secret})
        assert refused.status_code == 422, refused.text  # never stored in clear
        assert refused.json()["path"] == "sink"
        assert "s3cret" not in refused.text
        assert "s3cret" not in http.get("/subscriptions").text
    probes.healthy()


def _probe_at(marks: list[tuple[float, str]], moment: float) -> str:
    """The probe running at ``moment`` (monotonic)."""
    running = [probe for began, probe in marks if began <= moment]
    return running[-1] if running else "(before the probes)"


@pytest.mark.timeout(180)
def test_every_probe_was_answered_and_a_restart_is_normal(probes: Probes) -> None:
    probes.prober.stop()
    print(probes.prober.summary())
    ends = [began for began, _ in probes.marks[1:]] + [time.monotonic()]
    for (began, probe), end in zip(probes.marks, ends, strict=True):
        print(f"  {probe}: {probes.prober.summary(began, end)}")
    for note in probes.notes:
        print(note)
    assert probes.prober.answers, "the prober never got an answer"
    assert set(probes.prober.answers) == {200}
    if HEALTHZ_MS:
        slow = [
            (_probe_at(probes.marks, sent), round(latency * 1000, 1))
            for sent, latency in zip(probes.prober.sent, probes.prober.latencies, strict=True)
            if latency * 1000 >= HEALTHZ_MS
        ]
        assert not slow, f"/healthz answers at or over {HEALTHZ_MS} ms (probe, ms): {slow}"
    letters = len(probes.dead_letters("default.deadletter"))
    probes.sink.release.set()  # the hanging deliveries end before the stop
    from tests.support.served import stop

    stop(probes.server.process)
    with serve_process(probes.database, probes.home, *LOCAL) as again:
        probes.server = again
        probes.healthy()
        with probes.http() as http:
            starters = http.get("/instances", params={"workflow": "starter"}).json()
        assert len(starters["instances"]) == 1  # the poisoned event started nothing, again
        assert len(probes.dead_letters("default.deadletter")) == letters  # nor was retried
