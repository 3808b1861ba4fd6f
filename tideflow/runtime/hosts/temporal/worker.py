"""A Temporal worker running Tideflow instances: the workflow type and its activities.

``tideflow worker --engine temporal`` runs these; so does ``tideflow serve
--engine temporal`` beside the gateway. Any number of workers share a task
queue: Temporal hands each workflow task and activity to one of them.

The workflow runs in Temporal's sandbox. ``tideflow`` and the libraries its
pure modules use are *passed through* (imported once, outside the sandbox):
they read no clock and keep no state that changes what a run does (the
compiled-definition cache is a pure function of the document), and ``jq`` is
a C extension that could not be re-imported per run anyway.
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from tideflow.runtime.hosts.temporal._workflow import InstanceWorkflow
from tideflow.runtime.hosts.temporal.activities import InstanceActivities

__all__ = ["PASSTHROUGH", "instance_worker", "workflow_runner"]

PASSTHROUGH = (
    "tideflow",
    "jq",
    "jsonpath_ng",
    "ply",
    "yaml",
    "jsonschema",
    "jsonschema_specifications",
    "referencing",
    "rpds",
    "isodate",
    "orjson",
    "croniter",
    "dateutil",
    "httpx",
    "httpcore",
    "anyio",
    "asyncpg",
    "pydantic",
    "pydantic_core",
    "cloudevents",
    "prometheus_client",
    "platformdirs",
    "uvloop",
    "idna",
    "certifi",
    "sniffio",
    "h11",
    "jwt",
    "cryptography",
)
"""Modules the sandbox takes from outside instead of re-importing them for each run."""


def workflow_runner() -> SandboxedWorkflowRunner:
    """Temporal's sandbox with Tideflow's modules passed through (see the module docs)."""
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    return SandboxedWorkflowRunner(restrictions=restrictions)


def instance_worker(
    client: Client,
    task_queue: str,
    activities: InstanceActivities,
    *,
    max_concurrent_activities: int = 100,
) -> Worker:
    """A worker running ``tideflow.instance`` workflows and their activities on ``task_queue``."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[InstanceWorkflow],
        activities=activities.all(),
        workflow_runner=workflow_runner(),
        max_concurrent_activities=max_concurrent_activities,
    )
