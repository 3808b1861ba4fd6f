"""Three ``tideflow serve`` processes on one database share 30 subscriptions.

Real processes, a real HTTP sink on 127.0.0.1 (it answers each delivery after
a short pause, so deliveries are in flight when a process dies). Each process
owns about a third of the units (``GET /cluster``); after a SIGKILL of one, the
others deliver its subscriptions: none lost, order kept (every subscription is
ordered), and repeats (counted by CloudEvent ``source``+``id``) only on the
subscriptions the killed process owned -- the deliveries in flight at the kill.
Restarted with the same ``--node-id``, it gets its share back. The workflow
subscriber's partitions are shared out too (each process owns at least one),
and start events posted around the kill start exactly one instance each: none
lost, none started twice. A workflow deployed through one process starts from
an event ingested through another.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.served import LOCAL, Served, serve_process
from tideflow.triggers.correlation import PARTITIONS, partition_subscription

pytestmark = pytest.mark.slow

SUBSCRIPTIONS = 30
BUS = "cluster-orders"
WORKFLOW_UNITS = {f"subscription:{partition_subscription(i)}" for i in range(PARTITIONS)}
GREET = """\
id: cluster-greet
version: '1.0'
specVersion: '0.8'
start: Wait
events:
  - name: Hello
    type: com.example.cluster.hello
    source: /cluster-test
states:
  - name: Wait
    type: event
    onEvents:
      - eventRefs: [Hello]
        eventDataFilter:
          toStateData: ${ .hello }
    end: true
"""


class SlowSink(http.server.ThreadingHTTPServer):
    """Records ``(path, ce-source, ce-id)`` of each delivery, answering after a pause."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def ids(self, path: str) -> list[str]:
        with self.lock:
            return [i for p, _, i in self.received if p == path]

    def keys(self, path: str) -> list[tuple[str, str]]:
        with self.lock:
            return [(s, i) for p, s, i in self.received if p == path]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: SlowSink

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        time.sleep(0.01)
        with self.server.lock:
            self.server.received.append(
                (self.path, self.headers.get("ce-source", ""), self.headers.get("ce-id", ""))
            )
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def slow_sink() -> Iterator[SlowSink]:
    sink = SlowSink()
    thread = threading.Thread(target=sink.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        sink.shutdown()
        sink.server_close()


def until(check: Callable[[], Any], seconds: float = 60.0, what: str = "") -> Any:
    """Poll ``check`` until it is truthy (a bound, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {seconds} s: {what}")
        time.sleep(0.05)
    return result


def events(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {"specversion": "1.0", "id": f"e-{i:03d}", "source": "/cluster", "type": "t", "data": i}
        for i in range(start, start + count)
    ]


def post_events(server: Served, batch: list[dict[str, Any]], bus: str = BUS) -> None:
    with server.client() as client:
        response = client.post(
            f"/buses/{bus}/events",
            content=json.dumps(batch),
            headers={"content-type": "application/cloudevents-batch+json"},
        )
        assert response.status_code in (200, 202), response.text


def cluster(server: Served) -> dict[str, Any]:
    with server.client() as client:
        response = client.get("/cluster")
        assert response.status_code == 200, response.text
        return dict(response.json())


def shares(server: Served) -> tuple[dict[str, set[str]], list[str]]:
    """node id -> every unit it owns; and the units nobody owns."""
    found = cluster(server)
    owned = {node["id"]: {u["unit"] for u in node["units"]} for node in found["nodes"]}
    return owned, [u["unit"] for u in found["unowned"]]


def balanced(server: Served, nodes: set[str]) -> dict[str, set[str]] | None:
    """The shares once exactly ``nodes`` own every unit (the 30 subscriptions and the
    workflow subscriber's partitions), fairly, and each node some partitions; else None."""
    found, unowned = shares(server)
    units = set().union(*found.values())
    if set(found) != nodes or unowned or len(units) != SUBSCRIPTIONS + PARTITIONS:
        return None
    low = len(units) // len(nodes)
    if not all(low <= len(s) <= low + 1 for s in found.values()):
        return None
    parts = [len(s & WORKFLOW_UNITS) for s in found.values()]
    return found if max(parts) - min(parts) <= 1 and min(parts) >= 1 else None


def post_greetings(server: Served, start: int, count: int) -> None:
    """``count`` events that each start an instance of cluster-greet (data ``{i}``, which
    its output has at ``hello``)."""
    batch = [
        {"specversion": "1.0", "id": f"hello-{i:03d}", "source": "/cluster-test",
         "type": "com.example.cluster.hello", "data": {"i": i}}
        for i in range(start, start + count)
    ]  # fmt: skip
    post_events(server, batch, "default")


def deploy_greet(server: Served) -> None:
    with server.client() as client:
        response = client.post(
            "/workflows", content=GREET, headers={"content-type": "application/yaml"}
        )
        assert response.status_code == 201, response.text


def greeted(server: Served, total: int) -> list[int] | None:
    """The ``i`` of every completed cluster-greet instance once ``total`` completed."""
    with server.client() as client:
        params: dict[str, str | int] = {"workflow": "cluster-greet", "limit": 1000}
        response = client.get("/instances", params=params)
        assert response.status_code == 200, response.text
        found = response.json()["instances"]
    done = [i for i in found if i["status"] == "completed"]
    if len(done) < total:
        return None
    assert len(found) == total, len(found)  # none started twice (and none more)
    return sorted(i["output"]["hello"]["i"] for i in done)


def check_delivered(sink: SlowSink, paths: dict[str, str], total: int) -> dict[str, int]:
    """Every event at every sink, in order; returns the repeats per subscription."""
    expected = [f"e-{i:03d}" for i in range(total)]
    repeats = {}
    for sid, path in paths.items():
        got = sink.ids(path)
        assert set(got) == set(expected), (sid, sorted(set(expected) - set(got)))
        highest = -1
        for event_id in got:  # ordered: never one past an event not delivered yet
            index = int(event_id[2:])
            assert index <= highest + 1, (sid, got)
            highest = max(highest, index)
        counts = Counter(sink.keys(path))
        repeats[sid] = sum(n - 1 for n in counts.values())
    return repeats


def all_delivered(sink: SlowSink, paths: dict[str, str], total: int) -> bool:
    return all(len(set(sink.ids(p))) == total for p in paths.values())


@pytest.mark.timeout(600)
def test_three_processes_share_thirty_subscriptions_and_survive_a_kill(
    pg_url: str, tmp_path: Path
) -> None:
    with slow_sink() as sink, ExitStack() as stack:
        homes = {n: tmp_path / n for n in "abc"}
        for home in homes.values():
            home.mkdir()
        a = stack.enter_context(serve_process(pg_url, homes["a"], *LOCAL, "--node-id", "a"))
        servers = {"a": a}
        for n in "bc":
            servers[n] = stack.enter_context(
                serve_process(pg_url, homes[n], *LOCAL, "--node-id", n, token=a.token)
            )
        with a.client() as client:
            assert client.post("/buses", json={"name": BUS}).status_code == 201
            paths = {}
            for i in range(SUBSCRIPTIONS):
                body = {
                    "bus": BUS,
                    "sink": f"{sink.url}/s{i:02d}",
                    "delivery": {"ordered": True},
                }
                response = client.post("/subscriptions", json=body)
                assert response.status_code == 201, response.text
                paths[f"subscription:{response.json()['id']}"] = f"/s{i:02d}"

        deploy_greet(a)
        # Each process owns about a third.
        before = until(lambda: balanced(a, {"a", "b", "c"}), what="a third each")
        post_events(servers["b"], events(0, 20))
        until(lambda: all_delivered(sink, paths, 20), what="first 20 delivered")

        # SIGKILL c while its deliveries are in flight; a and b take its subscriptions
        # and its partitions of the workflow subscriber.
        post_greetings(servers["b"], 0, 20)
        post_events(servers["b"], events(20, 20))
        theirs = [paths[unit] for unit in sorted(before["c"]) if unit in paths]
        until(
            lambda: any(len(sink.ids(path)) > 25 for path in theirs),
            what="c delivering the second batch",
        )
        servers["c"].process.kill()
        servers["c"].process.wait()
        killed = time.monotonic()
        until(lambda: balanced(a, {"a", "b"}), what="c's share taken over")
        print(f"takeover after SIGKILL: {time.monotonic() - killed:.2f} s")
        post_events(servers["a"], events(40, 20))
        post_greetings(servers["a"], 20, 20)
        until(lambda: all_delivered(sink, paths, 60), what="60 delivered after the kill")
        started = until(lambda: greeted(a, 40), what="an instance per start event")
        assert started == list(range(40))
        repeats = check_delivered(sink, paths, 60)
        repeated = {sid for sid, n in repeats.items() if n}
        print(f"repeats after the kill: {sum(repeats.values())} in {len(repeated)} subscriptions")
        assert repeated <= before["c"], repeated - before["c"]

        # c comes back under its identity and gets its share back.
        servers["c"] = stack.enter_context(
            serve_process(pg_url, homes["c"], *LOCAL, "--node-id", "c", token=a.token)
        )
        until(lambda: balanced(a, {"a", "b", "c"}), what="c's share back")
        post_events(servers["c"], events(60, 20))
        until(lambda: all_delivered(sink, paths, 80), what="80 delivered after the return")
        check_delivered(sink, paths, 80)


@pytest.mark.timeout(300)
def test_a_workflow_deployed_through_one_process_starts_from_an_event_through_another(
    pg_url: str, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        serve_process(pg_url, tmp_path / "a", "--node-id", "a") as a,
        serve_process(pg_url, tmp_path / "b", "--node-id", "b", token=a.token) as b,
    ):
        until(lambda: len(cluster(a)["nodes"]) == 2, what="both processes joined")
        deploy_greet(a)
        event = {
            "specversion": "1.0",
            "id": "hello-1",
            "source": "/cluster-test",
            "type": "com.example.cluster.hello",
            "data": {"hello": {"name": "Ada"}},
        }
        with b.client() as client:
            response = client.post(
                "/events",
                content=json.dumps(event),
                headers={"content-type": "application/cloudevents+json"},
            )
            assert response.status_code in (200, 202), response.text

        def started() -> list[Any]:
            response = httpx.get(
                f"{b.url}/instances", params={"workflow": "cluster-greet"}, headers=b.auth
            )
            return list(response.json()["instances"])

        found = until(started, seconds=30, what="an instance of cluster-greet")
        assert len(found) == 1

        code, out, err = asyncio.run(run_cli(b.url, "cluster", "status", token=b.token))
        assert code == 0, err
        lines = out.splitlines()
        assert [line.split("\t")[0] for line in lines if not line.startswith(" ")] == [
            "a",
            "b (this server)",
        ]
        assert "  subscription:tideflow.workflows\tlag 0" in "\n".join(lines)
