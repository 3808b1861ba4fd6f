"""A Temporal worker running Tideflow instances: the workflow type and its activities.

``tideflow worker --engine temporal`` runs these; so does ``tideflow serve
--engine temporal`` beside the gateway. Any number of workers share a task
queue: Temporal hands each workflow task and activity to one of them.

Workers run the workflow **outside** Temporal's sandbox (``UnsandboxedWorkflowRunner``).
The sandbox guards hand-written workflow code against non-deterministic calls and
module state shared between runs; it costs every workflow activation an entry into
it and every payload a call into it (``get_serialization_context``: about a fifth of
a worker's CPU per seq3 instance, ``bench/RESULTS.md``). Tideflow's one workflow type
needs neither guard at run time, because both are checked before it ships:

- no user Python runs in it (functions, scripts are activities); the interpreter is
  pure -- no clock, random source or I/O (ruff bans the calls, an architecture test
  the imports) -- and every effect goes through ``workflow.*`` APIs;
- the modules it uses were passed through the sandbox already (imported once,
  shared between runs): the only state they keep between runs, the compiled
  definitions, is a pure function of the document;
- the Effects contract suite and the replay of the golden histories run it *in*
  the sandbox (:func:`workflow_runner` with ``sandboxed=True``), with
  :data:`PASSTHROUGH`, so a change that reaches a restricted call fails CI.
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from tideflow.runtime.hosts.temporal._values import with_values
from tideflow.runtime.hosts.temporal._workflow import InstanceWorkflow
from tideflow.runtime.hosts.temporal.activities import InstanceActivities

__all__ = ["PASSTHROUGH", "carrying_values", "instance_worker", "workflow_runner"]

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


def workflow_runner(*, sandboxed: bool = False) -> WorkflowRunner:
    """How a worker runs ``tideflow.instance``: outside the sandbox (see the module docs),
    or with ``sandboxed`` in Temporal's sandbox with Tideflow's modules passed through --
    what the tests run, to catch a call that would make a run non-deterministic."""
    if not sandboxed:
        return UnsandboxedWorkflowRunner()
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    return SandboxedWorkflowRunner(restrictions=restrictions)


def carrying_values(client: Client) -> Client:
    """``client`` (its connection, namespace, interceptors, codec) with the data converter of
    the host's values (:func:`._values.with_values`); ``client`` itself if it has it."""
    config = client.config()
    converter = with_values(config["data_converter"])
    if converter is config["data_converter"]:
        return client
    config["data_converter"] = converter
    return Client(**config)


def instance_worker(
    client: Client,
    task_queue: str,
    activities: InstanceActivities,
    *,
    max_concurrent_activities: int = 100,
    sandboxed: bool = False,
) -> Worker:
    """A worker running ``tideflow.instance`` workflows and their activities on ``task_queue``
    (in Temporal's sandbox with ``sandboxed``: :func:`workflow_runner`), on ``client``'s
    connection with the data converter of the host's values (:func:`carrying_values`)."""
    return Worker(
        carrying_values(client),
        task_queue=task_queue,
        workflows=[InstanceWorkflow],
        activities=activities.all(),
        workflow_runner=workflow_runner(sandboxed=sandboxed),
        max_concurrent_activities=max_concurrent_activities,
    )
