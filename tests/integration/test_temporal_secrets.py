"""Secrets under the Temporal engine: the call gets the values, Temporal's history never does.

A worker on the session's dev server runs a workflow that passes its secrets
to a function (``echo``, bound in process: it answers the arguments it got
and their digest) and then tries to leak them through its output and a
produced event. The digest proves the call received the real values; the
output and the event show ``***`` as under the PostgreSQL engine; and the
workflow's whole history, every payload decoded, holds no secret value -- only
the seals (``tideflow.secrets.sealed``). A definition that computes on a secret
is refused: at deploy under ``--engine temporal``, and at its run's start if it
got into the registry another way.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_secrets_served import _leaky
from tests.support.temporal import DevServer, record_history
from tideflow import ids
from tideflow.deploy import deploy_definition
from tideflow.errors import WorkflowValidationError
from tideflow.runtime.functions import FunctionInvoker, Invocation
from tideflow.runtime.gateway import PostgresRegistry
from tideflow.runtime.hosts.temporal import (
    WORKFLOW_TYPE,
    InstanceActivities,
    InstanceStart,
    instance_worker,
)
from tideflow.secrets import SecretAccess, SecretSource, parse_grants, seal

API_KEY = "sk-live-4242abcd"
DB_PASSWORD = "pg-pass-9f8e7d"
OTHER = "never-granted-5150"
ENV = {
    "TIDEFLOW_SECRET_API_KEY": API_KEY,
    "TIDEFLOW_SECRET_DB": DB_PASSWORD,
    "TIDEFLOW_SECRET_OTHER": OTHER,
}
GRANTS = parse_grants(["sealed-*=API_KEY,DB"])


def echo(args: dict[str, Any]) -> dict[str, Any]:
    """Answer the arguments back, and the digest of the secrets they carry."""
    seen = f"{args['key']}/{args['db']}".encode()
    return {"echoed": args, "digest": hashlib.sha256(seen).hexdigest()}


def refuse(args: dict[str, Any]) -> dict[str, Any]:
    """Fail, quoting the secret it was given."""
    raise ValueError(f"key {args['key']} refused")


def _workflow(wf_id: str, leak: str) -> dict[str, Any]:
    """The served secrets test's leaky workflow, with more ways to pass its secrets."""
    doc = _leaky(wf_id, leak)
    doc["secrets"] = ["API_KEY", "DB", "OTHER"]
    doc["states"][0]["actions"][0]["functionRef"]["arguments"] = {
        "key": "${ $SECRETS.API_KEY }",
        "header": '${ "Bearer " + $SECRETS.API_KEY }',
        "db": "${ $SECRETS.DB }",
        "other": "${ $SECRETS.OTHER }",
        "forged": "${ .forged }",
    }
    return doc


LEAKY = _workflow("sealed-leaky", "${ {x: $SECRETS, echoed: .echoed, digest: .digest} }")
COMPUTING = _workflow("sealed-computing", "${ {n: ($SECRETS.API_KEY | length)} }")
FAILING = {
    **_workflow("sealed-failing", "${ . }"),
    "functions": [
        {"name": "echo", "type": "custom", "operation": "rest:post:http://refuse.invalid/e"}
    ],
}


@pytest.fixture
def emitted() -> list[dict[str, Any]]:
    return []


@pytest.fixture
async def activities(
    pool: Any, tmp_path: Path, emitted: list[dict[str, Any]]
) -> AsyncIterator[InstanceActivities]:
    async def publish(_: str, batch: Sequence[dict[str, Any]]) -> None:
        emitted.extend(batch)

    access = SecretAccess(SecretSource(env=ENV), GRANTS)
    invoker = FunctionInvoker(overrides={"echo": echo})
    refusing = FunctionInvoker(overrides={"echo": refuse})

    async def invoke(invocation: Invocation) -> Any:
        chosen = refusing if "refuse.invalid" in invocation.operation else invoker
        return await chosen.invoke(invocation)

    yield InstanceActivities(
        PostgresRegistry(pool), invoker, publish, base_dir=tmp_path, invoke=invoke, secrets=access
    )
    await invoker.aclose()
    await refusing.aclose()


async def _run(
    server: DevServer, activities: InstanceActivities, wf_id: str, data: Any = None
) -> tuple[Any, str]:
    """Run ``wf_id`` on ``data`` to its end: ``(result or the failure, the decoded history)``."""
    from temporalio.client import Client, WorkflowFailureError

    client = await Client.connect(server.address, namespace=server.namespace)
    queue, instance_id = f"secrets-{ids.new_id()}", ids.new_id()
    start = InstanceStart(workflow_id=wf_id, input=data or {}, instance_id=instance_id)
    async with instance_worker(client, queue, activities):
        handle = await client.start_workflow(WORKFLOW_TYPE, start, id=instance_id, task_queue=queue)
        try:
            async with asyncio.timeout(30):
                result: Any = await handle.result()
        except WorkflowFailureError as exc:
            result = exc
        history = await handle.fetch_history()
        await record_history(client, instance_id, f"secrets-{wf_id}")  # when recording
    return result, _decoded(history.to_json_dict())


def _decoded(value: Any) -> str:
    """The history as text with every payload's data decoded (payloads are base64 there)."""
    texts = [json.dumps(value)]

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            for key, inner in item.items():
                if key == "data" and isinstance(inner, str):
                    with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                        texts.append(base64.b64decode(inner, validate=True).decode())
                walk(inner)
        elif isinstance(item, list):
            for inner in item:
                walk(inner)

    walk(value)
    return "\n".join(texts)


async def _deploy(pool: Any, definition: dict[str, Any], engine: str = "postgres") -> None:
    registry = PostgresRegistry(pool)
    await deploy_definition(registry, json.dumps(definition), "application/json", engine=engine)


async def test_the_call_gets_the_values_and_the_history_only_seals(
    pool: Any,
    temporal_server: DevServer,
    activities: InstanceActivities,
    emitted: list[dict[str, Any]],
) -> None:
    await _deploy(pool, LEAKY, engine="temporal")
    forged = seal("API_KEY", "0123abcd")  # data cannot ask for a secret with a seal of its own
    done, history = await _run(temporal_server, activities, "sealed-leaky", {"forged": forged})
    assert done["status"] == "completed", done
    output = done["output"]
    # the call got the real values (their digest), and null for the one not granted
    assert output["digest"] == hashlib.sha256(f"{API_KEY}/{DB_PASSWORD}".encode()).hexdigest()
    echoed = {"key": "***", "header": "Bearer ***", "db": "***", "other": None, "forged": forged}
    assert output["echoed"] == echoed
    assert output["x"] == {"API_KEY": "***", "DB": "***", "OTHER": "***"}
    assert [event["data"] for event in emitted] == [{"k": "***"}]
    assert re.search(r"\[\[tideflow\.secret\.[0-9a-f]{32}:API_KEY\]\]", history)  # decoded
    for secret in (API_KEY, DB_PASSWORD, OTHER):
        assert secret not in history
        assert secret not in json.dumps(done)


async def test_computing_on_a_secret_is_refused_at_deploy_and_at_the_start(
    pool: Any, temporal_server: DevServer, activities: InstanceActivities
) -> None:
    with pytest.raises(WorkflowValidationError) as refused:
        await _deploy(pool, COMPUTING, engine="temporal")
    (problem,) = refused.value.problems
    assert problem.path == ("states", 1, "stateDataFilter", "output")
    assert "computes on a secret" in problem.message
    assert "$SECRETS.API_KEY | length" in problem.message
    await _deploy(pool, COMPUTING)  # the PostgreSQL engine runs it; then a Temporal worker:
    failed, history = await _run(temporal_server, activities, "sealed-computing")
    cause = failed.cause
    assert cause.type == "SecretsUnsupported"
    assert "states[1].stateDataFilter.output" in cause.message
    assert "$SECRETS.API_KEY | length" in cause.message
    assert API_KEY not in history


async def test_a_failed_call_quoting_a_secret_fails_with_the_mask(
    pool: Any, temporal_server: DevServer, activities: InstanceActivities
) -> None:
    await _deploy(pool, FAILING, engine="temporal")
    failed, history = await _run(temporal_server, activities, "sealed-failing")
    error = failed.cause.details[0]["error"]
    assert "key *** refused" in error["message"], error
    assert API_KEY not in history
