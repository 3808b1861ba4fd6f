"""Secrets under the Temporal engine: the call gets the values, Temporal's history never does.

A worker on the session's dev server runs a workflow that passes its secrets
to a function (``echo``, bound in process: it answers the arguments it got
and their digest) and then tries to leak them through its output and a
produced event. The digest proves the call received the real values; the
output and the event show ``***`` as under the PostgreSQL engine; and the
workflow's whole history, every payload decoded, holds no secret value -- only
the seals (``tideflow.secrets.sealed``). A definition that computes on a secret
is refused: at deploy under ``--engine temporal``, and at its run's start if it
got into the registry another way. The same for a DSL 1.0 workflow (``$secrets``
in an HTTP call's body and its bearer token), whose authentication policies read
from a secret are refused as well.
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
GRANTS = parse_grants(["sealed-*=API_KEY,DB", "sealed.*=API_KEY,DB"])


def echo(args: dict[str, Any]) -> dict[str, Any]:
    """Answer the arguments back, and the digest of the secrets they carry."""
    seen = f"{args['key']}/{args['db']}".encode()
    return {"echoed": args, "digest": hashlib.sha256(seen).hexdigest()}


def echo_http(args: dict[str, Any]) -> dict[str, Any]:
    """A 1.0 ``call: http`` bound in process: the body back, and the digest of the secrets in
    the body and the bearer token."""
    body, token = args["body"], args["authentication"]["bearer"]["token"]
    seen = f"{body['key']}/{body['db']}/{token}".encode()
    return {"echoed": body, "digest": hashlib.sha256(seen).hexdigest()}


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


def _dsl1(name: str, leak: Any, authentication: Any) -> dict[str, Any]:
    """A 1.0 workflow passing its secrets to ``echo`` (body and bearer token), then leaking."""
    endpoint = {"uri": "http://echo.invalid/e", "authentication": authentication}
    body = {
        "key": "${ $secrets.API_KEY }",
        "db": "${ $secrets.DB }",
        "other": "${ $secrets.OTHER }",
        "forged": "${ $workflow.input.forged }",
    }
    event = {"type": "com.example.leaked", "source": "test", "data": {"k": "${ $secrets.API_KEY }"}}
    return {
        "document": {"dsl": "1.0.0", "namespace": "sealed", "name": name, "version": "1.0.0"},
        "use": {"secrets": ["API_KEY", "DB", "OTHER"]},
        "do": [
            {"tell": {"emit": {"event": {"with": event}}}},  # its output: the event
            {
                "echo": {
                    "call": "http",
                    "with": {"method": "post", "endpoint": endpoint, "body": body},
                }
            },
            {"leak": {"set": leak}},
        ],
    }


BEARER = {"bearer": {"token": "${ $secrets.API_KEY }"}}
LEAKY1 = _dsl1(
    "dsl1-leaky", {"x": "${ $secrets }", "echoed": "${ .echoed }", "digest": "${ .digest }"}, BEARER
)
COMPUTING1 = _dsl1("dsl1-computing", {"n": "${ $secrets.API_KEY | length }"}, BEARER)
FROM_SECRET1 = _dsl1("dsl1-policy", {"done": True}, {"basic": {"use": "DB"}})


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
    http = FunctionInvoker(overrides={"echo": echo_http})
    refusing = FunctionInvoker(overrides={"echo": refuse})

    async def invoke(invocation: Invocation) -> Any:
        chosen = refusing if "refuse.invalid" in invocation.operation else invoker
        chosen = http if invocation.type == "http" else chosen
        return await chosen.invoke(invocation)

    yield InstanceActivities(
        PostgresRegistry(pool), invoker, publish, base_dir=tmp_path, invoke=invoke, secrets=access
    )
    for each in (invoker, refusing, http):
        await each.aclose()


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


@pytest.mark.parametrize(
    ("definition", "wf_id", "seen", "header"),
    [
        (LEAKY, "sealed-leaky", f"{API_KEY}/{DB_PASSWORD}", {"header": "Bearer ***"}),
        # 1.0: the body and the bearer token of the endpoint's policy are unsealed
        (LEAKY1, "sealed.dsl1-leaky", f"{API_KEY}/{DB_PASSWORD}/{API_KEY}", {}),
    ],
    ids=["0.8", "1.0"],
)
async def test_the_call_gets_the_values_and_the_history_only_seals(
    pool: Any,
    temporal_server: DevServer,
    activities: InstanceActivities,
    emitted: list[dict[str, Any]],
    definition: dict[str, Any],
    wf_id: str,
    seen: str,
    header: dict[str, str],
) -> None:
    await _deploy(pool, definition, engine="temporal")
    forged = seal("API_KEY", "0123abcd")  # data cannot ask for a secret with a seal of its own
    done, history = await _run(temporal_server, activities, wf_id, {"forged": forged})
    assert done["status"] == "completed", done
    output = done["output"]
    # the call got the real values (their digest), and null for the one not granted
    assert output["digest"] == hashlib.sha256(seen.encode()).hexdigest()
    echoed = {"key": "***", **header, "db": "***", "other": None, "forged": forged}
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


@pytest.mark.parametrize(
    ("definition", "path", "says"),
    [
        (COMPUTING1, ("do", 2, "leak", "set", "n"), "computes on a secret"),
        (
            FROM_SECRET1,
            ("do", 1, "echo", "with", "endpoint", "authentication", "basic"),
            "reads an authentication policy from a secret",
        ),
    ],
)
async def test_a_dsl1_workflow_that_cannot_run_on_seals_is_refused(
    pool: Any,
    temporal_server: DevServer,
    activities: InstanceActivities,
    definition: dict[str, Any],
    path: tuple[Any, ...],
    says: str,
) -> None:
    with pytest.raises(WorkflowValidationError) as refused:
        await _deploy(pool, definition, engine="temporal")
    (problem,) = refused.value.problems
    assert problem.path == path
    assert says in problem.message
    await _deploy(pool, definition)  # the PostgreSQL engine takes it; a Temporal run refuses
    wf_id = f"sealed.{definition['document']['name']}"
    failed, history = await _run(temporal_server, activities, wf_id)
    assert failed.cause.type == "SecretsUnsupported"
    assert says in failed.cause.message
    assert API_KEY not in history
