"""Tideflow's Temporal clients and workers carry the host's values with its data converter
(``_values.with_values``), whatever client they are given: the runtime's starts, the
worker's activities and workflow inputs, and :func:`connect`'s client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from temporalio.client import Client

from tests.support.temporal import DevServer
from tideflow import ids
from tideflow.runtime.functions import FunctionInvoker
from tideflow.runtime.gateway import PostgresRegistry
from tideflow.runtime.hosts.temporal import InstanceActivities, instance_worker
from tideflow.runtime.hosts.temporal._values import with_values
from tideflow.runtime.hosts.temporal.runtime import TemporalOptions, TemporalRuntime, connect


def _carries_values(client: Client) -> bool:
    converter = client.data_converter
    return with_values(converter) is converter


async def test_runtime_worker_and_connect_use_the_values_converter(
    pool: Any, temporal_server: DevServer, tmp_path: Path
) -> None:
    given = await Client.connect(temporal_server.address, namespace=temporal_server.namespace)
    assert not _carries_values(given)
    options = TemporalOptions(
        temporal_server.address,
        namespace=temporal_server.namespace,
        task_queue=f"values-{ids.new_id()}",
    )
    registry = PostgresRegistry(pool)

    async def publish(_: str, __: Any) -> None:
        return None

    async with FunctionInvoker() as invoker:
        activities = InstanceActivities(registry, invoker, publish, base_dir=tmp_path)
        runtime = TemporalRuntime(pool, given, options, registry=registry)
        assert _carries_values(runtime.client)
        assert runtime.client.service_client is given.service_client  # the same connection
        worker = instance_worker(given, options.task_queue, activities)
        assert _carries_values(worker.client)
    assert _carries_values(await connect(options))
