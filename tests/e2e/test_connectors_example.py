"""The connectors example (examples/connectors) as its README runs it: MQTT sensor
topics -> the default bus -> the correlated ``sensor-report`` workflow -> a PostgreSQL
table, through ``tideflow serve --connectors`` on the machine's Mosquitto."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import asyncpg
import pytest
import yaml

from tests.support.brokers import end_mqtt_session
from tests.support.connectors import eventually, served
from tests.support.served import ROOT, copied_database
from tideflow import ids

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
EXAMPLE = ROOT / "examples" / "connectors"


@pytest.fixture
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    async with copied_database(pg_server_url, pg_template, f"t_{_db_names[0]}_example") as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute((EXAMPLE / "schema.sql").read_text())
        finally:
            await conn.close()
        yield url


async def _rows(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT sensor, location, celsius FROM sensor_reports")
    finally:
        await conn.close()
    return {r["sensor"]: (r["location"], float(r["celsius"])) for r in rows}


async def test_sensor_readings_reach_the_table_through_the_correlated_workflow(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIDEFLOW_SECRET_SENSORS_DB", database)
    ours, other = f"s-{ids.new_id()[:8]}", f"o-{ids.new_id()[:8]}"
    # The example's declarations with a client id of this run's own: the broker is shared
    # (other runs of this test), and a second connection with one client id takes the
    # session over from the first, messages and all.
    declared = yaml.safe_load((EXAMPLE / "connectors.yaml").read_text())
    (source,) = (c for c in declared["connectors"] if c["name"] == "sensors")
    source["config"]["clientId"] = client_id = f"tideflow-sensors-{ids.new_id()[:8]}"
    connectors = tmp_path / "connectors.yaml"
    connectors.write_text(yaml.safe_dump(declared))
    args = ("--workflows", str(EXAMPLE / "workflows"), "--connectors", str(connectors))
    try:
        await _readings_reach_the_table(database, tmp_path, args, ours, other)
    finally:
        await end_mqtt_session(client_id)


async def _readings_reach_the_table(
    database: str, tmp_path: Path, args: tuple[str, ...], ours: str, other: str
) -> None:
    async with served(database, tmp_path, *args) as server, server.async_client() as http:

        async def connected() -> bool:
            shown = (await http.get("/connectors/sensors")).json()
            return bool(shown["activity"]["connected"])

        await eventually(connected)
        async with aiomqtt.Client("127.0.0.1", 1883) as mqtt:
            await mqtt.publish(
                f"sensors/{ours}/online", json.dumps({"sensor": ours, "location": "attic"}), qos=1
            )
            await mqtt.publish(f"sensors/{other}/reading", json.dumps({"celsius": 99}), qos=1)
            await mqtt.publish(f"sensors/{ours}/reading", json.dumps({"celsius": 21.5}), qos=1)

        async def written() -> dict[str, Any] | None:
            rows = await _rows(database)
            return rows if ours in rows else None

        rows = await eventually(written)
        assert rows[ours] == ("attic", 21.5)
        assert other not in rows
        sink = (await http.get("/connectors/sensor-reports")).json()
        assert sink["config"]["url"] == {"secret": "SENSORS_DB"}
