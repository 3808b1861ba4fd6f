"""Which partition of the workflow subscriber starts an instance (tideflow.triggers)."""

from __future__ import annotations

import zlib
from collections import Counter

from tideflow.triggers.correlation import (
    PARTITIONS,
    SUBSCRIPTION_ID,
    partition_subscription,
    start_instance_id,
)
from tideflow.triggers.workflow_events import EventMatch, StartSpec, partition_of

SPEC = StartSpec(
    workflow_id="greet",
    version="1.0",
    state="Wait",
    exclusive=True,
    events=(EventMatch(name="Hello", type="com.example.hello"),),
)


def test_the_partition_is_the_same_in_every_process() -> None:
    # CRC-32 of the id, not Python's hash(): that one differs between processes.
    instance_id = start_instance_id(SPEC, 42)
    assert partition_of(instance_id, 4) == zlib.crc32(instance_id.encode()) % 4
    assert partition_of(instance_id, 1) == 0


def test_the_starts_of_consecutive_events_spread_over_every_partition() -> None:
    counts = Counter(partition_of(start_instance_id(SPEC, o), PARTITIONS) for o in range(1000))
    assert set(counts) == set(range(PARTITIONS))
    assert min(counts.values()) > 1000 // PARTITIONS // 2  # no partition left nearly idle


def test_partition_zero_keeps_the_subscription_of_the_unpartitioned_subscriber() -> None:
    assert partition_subscription(0) == SUBSCRIPTION_ID == "tideflow.workflows"
    names = [partition_subscription(i) for i in range(PARTITIONS)]
    assert names[1:] == [f"tideflow.workflows.{i}" for i in range(1, PARTITIONS)]
