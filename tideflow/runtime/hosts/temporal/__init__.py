"""The Temporal host: Tideflow instances as Temporal workflows (``docs/temporal.md``)."""

from __future__ import annotations

from tideflow.runtime.hosts.temporal._values import (
    SIGNAL_EVENT,
    SIGNAL_RESUME,
    SIGNAL_SUSPEND,
    WORKFLOW_TYPE,
    InstanceStart,
)
from tideflow.runtime.hosts.temporal._workflow import InstanceWorkflow
from tideflow.runtime.hosts.temporal.activities import DefinitionSource, InstanceActivities
from tideflow.runtime.hosts.temporal.worker import instance_worker, workflow_runner

__all__ = [
    "SIGNAL_EVENT",
    "SIGNAL_RESUME",
    "SIGNAL_SUSPEND",
    "WORKFLOW_TYPE",
    "DefinitionSource",
    "InstanceActivities",
    "InstanceStart",
    "InstanceWorkflow",
    "instance_worker",
    "workflow_runner",
]
