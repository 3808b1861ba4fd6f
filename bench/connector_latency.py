"""Connectors (issue 15): the time from a record published to a waiting instance resumed.

The user's path, end to end: a real ``tideflow serve`` runs the MQTT example
(``examples/connectors/workflows/sensor-report.yaml``) with the example's MQTT source
(on a topic of this run's own). ``--sensors`` sensors come online (one instance each,
started by its ``online`` record, then waiting for that sensor's ``reading``, correlated
by the extension the source's mapping sets). Then, one sensor at a time, the bench
publishes the ``reading`` (QoS 1) and times until ``GET /instances/{id}?wait=`` shows the
instance completed: broker -> source -> bus -> correlation -> resume -> the last state ->
the end seen by the client.

Then a sink from zero (issue 15's "starts within 1 s of the first event"): an MQTT sink
with a 0.2 s idle period; ``--cold`` times, once it has closed its connection, an event is
POSTed and timed until a subscriber of the sink's topic has the message.

Baseline in the same run: the broker alone -- a subscribed MQTT client and the time from
a publish to its receipt, the same number of times.

Prints JSON. ``python bench/connector_latency.py [--server URL] [--sensors 200]``;
``--server`` is a PostgreSQL server (default ``TIDEFLOW_TEST_DATABASE_URL`` or
``postgresql://postgres@127.0.0.1:5432/postgres``; a fresh database is made on it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster import ROOT, Server, fresh_database, token

MQTT_HOST = "127.0.0.1"
WORKFLOWS = ROOT / "examples" / "connectors" / "workflows"


def _connectors_file(home: Path, run: str) -> Path:
    """The example's MQTT source, on this run's topics (``bench/<run>/<sensor>/<what>``)."""
    path = home / "connectors.yaml"
    path.write_text(
        "connectors:\n"
        "  - name: sensors\n    kind: source\n    type: mqtt\n    bus: default\n"
        f"    config: {{url: 'mqtt://{MQTT_HOST}:1883', topic: 'bench/{run}/+/+'}}\n"
        "    mapping: >-\n"
        '      (.channel | split("/")) as $t\n'
        '      | {type: "com.example.sensor.\\($t[3])", sensor: $t[2], subject: $t[2]}\n'
    )
    return path


def _summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "max_ms": round(ordered[-1], 2),
        "n": len(ordered),
    }


async def _instances_by_sensor(http: httpx.AsyncClient, sensors: int) -> dict[str, str]:
    """Wait for every sensor's instance to wait for its reading: sensor -> instance id."""
    found: dict[str, str] = {}
    deadline = time.monotonic() + 120
    while len(found) < sensors:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(found)} of {sensors} instances are waiting")
        listed = await http.get("/instances", params={"workflow": "sensor-report", "limit": 1000})
        listed.raise_for_status()
        for item in listed.json()["instances"]:
            if item.get("currentState") == "Wait for reading":
                found[item["data"]["online"]["sensor"]] = item["id"]
        await asyncio.sleep(0.2)
    return found


async def tideflow_path(server: Server, run: str, sensors: int) -> dict[str, Any]:
    async with (
        httpx.AsyncClient(base_url=server.url, headers=token([server]), timeout=90) as http,
        aiomqtt.Client(MQTT_HOST, 1883, identifier=f"bench-lat-{run}") as mqtt,
    ):
        # the source has subscribed once its status says connected
        for _ in range(600):
            shown = (await http.get("/connectors/sensors")).json()
            if shown.get("activity", {}).get("connected"):
                break
            await asyncio.sleep(0.1)
        else:
            raise TimeoutError(f"the MQTT source did not connect: {shown}")
        for i in range(sensors):
            body = orjson.dumps({"sensor": f"s{i}", "location": f"room {i}"})
            await mqtt.publish(f"bench/{run}/s{i}/online", body, qos=1)
        waiting = await _instances_by_sensor(http, sensors)
        latencies: list[float] = []
        for i in range(sensors):
            instance = waiting[f"s{i}"]
            started = time.perf_counter()
            body = orjson.dumps({"celsius": 20 + i % 7})
            await mqtt.publish(f"bench/{run}/s{i}/reading", body, qos=1)
            shown = (await http.get(f"/instances/{instance}", params={"wait": 30})).json()
            if shown["status"] != "completed":
                raise RuntimeError(f"instance {instance} is {shown['status']}: {shown}")
            latencies.append((time.perf_counter() - started) * 1000)
        return _summary(latencies)


async def sink_from_zero(server: Server, run: str, count: int) -> dict[str, Any]:
    """An MQTT sink scaled to zero (no connection): the time from an event POSTed to the
    bus until a subscriber of the sink's topic has the message (the sink connects first)."""
    topic = f"bench/{run}/out"
    async with (
        httpx.AsyncClient(base_url=server.url, headers=token([server]), timeout=90) as http,
        aiomqtt.Client(MQTT_HOST, 1883, identifier=f"bench-out-{run}") as sub,
    ):
        await sub.subscribe(topic, qos=1)
        created = await http.post("/connectors", json={
            "name": "out", "kind": "sink", "type": "mqtt", "bus": "default",
            "config": {"url": f"mqtt://{MQTT_HOST}:1883", "topic": topic, "idle": 0.2},
            "mapping": ".data",
            "subscription": {"filters": [{"exact": {"type": "bench.out"}}]},
        })  # fmt: skip
        created.raise_for_status()
        latencies: list[float] = []
        messages = sub.messages
        for i in range(count):
            while (await http.get("/connectors/out")).json()["activity"]["connected"]:  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # until its idle period closed the connection
            event = {"specversion": "1.0", "id": f"out-{i}", "source": "/bench",
                     "type": "bench.out", "data": {"i": i}}  # fmt: skip
            started = time.perf_counter()
            posted = await http.post(
                "/events", content=orjson.dumps(event),
                headers={"content-type": "application/cloudevents+json"},
            )  # fmt: skip
            posted.raise_for_status()
            await anext(messages)
            latencies.append((time.perf_counter() - started) * 1000)
        return _summary(latencies)


async def broker_alone(run: str, count: int) -> dict[str, Any]:
    topic = f"bench/{run}/echo"
    async with (
        aiomqtt.Client(MQTT_HOST, 1883, identifier=f"bench-sub-{run}") as sub,
        aiomqtt.Client(MQTT_HOST, 1883, identifier=f"bench-pub-{run}") as pub,
    ):
        await sub.subscribe(topic, qos=1)
        latencies: list[float] = []
        messages = sub.messages
        for i in range(count):
            started = time.perf_counter()
            await pub.publish(topic, orjson.dumps({"i": i}), qos=1)
            await anext(messages)
            latencies.append((time.perf_counter() - started) * 1000)
        return _summary(latencies)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    run_id = os.urandom(4).hex()
    dsn = await fresh_database(args.server, "bench_connector_latency")
    out: dict[str, Any] = {"bench": "connector_latency", "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as root:
        home = Path(root)
        extra = ("--workflows", str(WORKFLOWS), "--connectors", str(_connectors_file(home, run_id)))
        server = Server(dsn, "n0", home, extra)
        await server.start()
        try:
            out["broker_alone"] = await broker_alone(run_id, args.sensors)
            out["published_to_completed"] = await tideflow_path(server, run_id, args.sensors)
            out["sink_from_zero"] = await sink_from_zero(server, run_id, args.cold)
        finally:
            server.stop()
    out["load_average"] = os.getloadavg()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get(
        "TIDEFLOW_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--server", default=default)
    parser.add_argument("--sensors", type=int, default=200)
    parser.add_argument("--cold", type=int, default=30, help="sink starts from zero timed")
    args = parser.parse_args()
    print(orjson.dumps(asyncio.run(run(args)), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
