"""The DSL 1.0 examples (``../shared/conformance/sw-1.0/examples``) through ``tideflow run``.

Every example is either run by the real CLI -- with an input, CloudEvents
(``--events``) and its public services played by local stand-ins
(``--server``) -- to a checked output, or listed in :data:`NOT_RUNNABLE`
with the reason. A new example in the corpus fails
:func:`test_every_example_is_run_or_has_a_reason` until it is placed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.agents import TOKEN, WORKFLOW, agents_in_thread
from tests.support.sw1 import EXAMPLES, example_files, needs_sw1
from tests.support.sw1_services import start_stand_ins

HOSPITAL = "com.fake-hospital.vitals.measurements."
RACE = "com.virtual-wf-powered-race.events.race.started.v1"
WAITS = "waits 30 s of real time (waits are run in tests/unit/test_dsl1_interpreter.py)"
TRIGGER = {"type": "io.serverlessworkflow.samples.events.trigger.v1", "id": "1", "source": "/s",
           "data": {"patient": {"id": 7, "name": "Jane", "room": {"number": 3},
                                "vitals": {"bpm": 38}}, "timestamp": "t"}}  # fmt: skip


def ev(kind: str, number: int, **data: Any) -> dict[str, Any]:
    return {"type": kind, "source": "/ward", "id": str(number), "data": data}


def pet(number: int, status: str = "available") -> dict[str, Any]:
    return {"id": number, "category": {"id": 1, "name": "dogs"}, "name": f"doggie-{number}",
            "photoUrls": [], "tags": [], "status": status}  # fmt: skip


LUKE = {"count": 1, "next": None, "previous": None, "results": [
    {"name": "Luke Skywalker", "homeworld": "https://swapi.dev/api/planets/1/"}]}  # fmt: skip

# example -> (input, events, expected output; a dict of expected top-level values for
# outputs with run-dependent parts, marked by the key "partial")
RUNNABLE: dict[str, tuple[Any, list[dict[str, Any]], Any]] = {
    "authentication-bearer.yaml": ({"token": "t"}, [], pet(1)),
    "authentication-bearer-uri-format.yaml": ({"token": "t", "petId": 2}, [], pet(2)),
    "authentication-reusable.yaml": ({"token": "t", "petId": 3}, [], pet(3)),
    "authentication-oauth2.yaml": ({"petId": 10}, [], pet(10)),
    "authentication-oidc.yaml": ({"petId": 11}, [], pet(11)),
    "authentication-oauth2-secret.yaml": ({"petId": 10}, [], pet(10)),
    "authentication-oidc-secret.yaml": ({"petId": 11}, [], pet(11)),
    "call-custom-function-inline.yaml": ({}, [], pet(69)),
    "call-http-endpoint-interpolation.yaml": ({"petId": 4}, [], pet(4)),
    "call-http-endpoint-interpolation-shorthand.yaml": ({"petId": 5}, [], pet(5)),
    "call-http-query-headers-expressions.yaml": ({"searchQuery": "luke"}, [], LUKE),
    "call-http-query-parameters.yaml": ({"searchQuery": "luke"}, [], LUKE),
    "call-http-redirect.yaml": ({"searchQuery": "skywalker"}, [], LUKE),
    "call-openapi.yaml": ({}, [], [pet(1), pet(2), pet(3)]),
    "call-openapi-redirect.yaml": ({}, [], [pet(1), pet(2), pet(3)]),
    "conditional-task.yaml": ({"customer": {"age": 30}}, [], {"placed": True}),
    "do-multiple.yaml": ({"petId": 6}, [], pet(6, "sold")),
    "do-single.yaml": ({"petId": 7}, [], pet(7)),
    "emit.yaml": ({}, [], {"partial": True, "type": "com.petstore.order.placed.v1",
                           "source": "https://petstore.com", "specversion": "1.0"}),
    "fork.yaml": ({"patient": {"fullName": "Jane Doe"}, "room": {"number": 12}}, [],
                  {"alerted": "nurses", "patientId": "Jane Doe", "room": 12}),
    "listen-to-all.yaml": ({}, [ev(HOSPITAL + "bpm", 1, bpm=45),
                                ev(HOSPITAL + "temperature", 2, temperature=39)],
                           [{"temperature": 39}, {"bpm": 45}]),
    "listen-to-all read-envelope.yaml": ({}, [ev(HOSPITAL + "temperature", 2, temperature=39),
                                              ev(HOSPITAL + "bpm", 1, bpm=120)],
                                         [ev(HOSPITAL + "temperature", 2, temperature=39),
                                          ev(HOSPITAL + "bpm", 1, bpm=120)]),
    "listen-to-any.yaml": ({}, [ev("com.anything", 3, x=1)], [{"x": 1}]),
    "listen-to-any-filter.yaml": ({}, [ev(HOSPITAL + "temperature", 1, temperature=37),
                                       ev(HOSPITAL + "bpm", 2, bpm=130)], [{"bpm": 130}]),
    "listen-to-any-until-condition.yaml": ({}, [ev(f"t{i}", i, n=i) for i in range(6)],
                                           [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}]),
    "listen-to-any-until-consumed.yaml": ({}, [ev(HOSPITAL + "temperature", 1, temperature=40),
                                               ev("com.fake-hospital.patient.checked-out", 2),
                                               ev(HOSPITAL + "temperature", 3, temperature=41)],
                                          [{"temperature": 40}]),
    "mock-service-extension.yaml": ({}, [], {"sample": True}),  # its mock is for another URI
    "run-subflow.yaml": ({"user": {"name": "ada"}}, [], {"registered": ".user"}),  # strict mode
    "run-script-with-stdin-and-arguments.yaml": ({}, [], "stdin >  Hello Workflow\n"
                                                 "arg >  hello\nenv >  bar\n"),  # Node.js
    "listen-to-one.yaml": ({"carId": "c3"}, [ev(RACE, 1)], {"car": "c3", "started": True}),
    "schedule-cron.yaml": ({}, [], {"started": True}),
    "schedule-event-driven.yaml": ([TRIGGER], [], {"notified": "Jane"}),
    "set.yaml": ([TRIGGER], [], {"startEvent": TRIGGER}),
    "set-expression.yaml": ([TRIGGER], [], TRIGGER),
    "switch-then-string.yaml": ({"orderType": "physical"}, [],
                                {"inventory": "clear", "items": 1, "address": "Elmer St"}),
    "try-catch.yaml": ({"petId": "unknown"}, [], {"petId": "unknown"}),
    "try-catch-retry-inline.yaml": ({"petId": 8}, [], pet(8)),
    "try-catch-retry-reusable.yaml": ({"petId": 9}, [], pet(9)),
    "try-catch-then.yaml": ({"petId": "unknown"}, [], {"error": "$error"}),
    "star-wars-homeworld.yaml": ({"id": 1}, [], {"name": "Tatooine", "climate": "arid"}),
}  # fmt: skip

FAULTING: dict[str, tuple[Any, str]] = {
    "raise-inline.yaml": ({}, "The workflow 'raise-not-implemented:0.1.0' is a work in progress"),
    "raise-reusable.yaml": ({}, "The workflow 'raise-not-implemented:0.1.0' is a work in progress"),
}
"""Examples that fault by design: input, the start of the error line's message."""

FAKE_ASYNCAPI = "its AsyncAPI document (https://fake.com/docs/asyncapi.json) is not in the corpus"
CONTAINER = "needs a container runtime (none here); run.container is off unless the host enables it"
NOT_RUNNABLE: dict[str, str] = {
    "accumulate-room-readings.yaml": "calls an OpenAPI document at myorg.io the corpus does not "
    "give; its output.as reads .data.reading from the listen's list of events",
    "call-asyncapi-publish.yaml": FAKE_ASYNCAPI,
    "call-asyncapi-subscribe-consume-amount.yaml": FAKE_ASYNCAPI,
    "call-asyncapi-subscribe-consume-forever-foreach.yaml": FAKE_ASYNCAPI,
    "call-asyncapi-subscribe-consume-until.yaml": FAKE_ASYNCAPI,
    "call-asyncapi-subscribe-consume-while.yaml": FAKE_ASYNCAPI,
    "call-custom-function-cataloged.yaml": "catalog functions (on GitHub) are not run yet",
    "call-grpc.yaml": "its proto (file://app/greet.proto) and gRPC server (localhost:5011) are "
    "not in the corpus; gRPC calls run in tests/e2e/test_grpc_served.py",
    "call-mcp.yaml": "its MCP server is started over stdio (npx slack-mcp-server), and Tideflow "
    "starts no process for MCP; MCP over HTTP runs in test_a2a_and_mcp_calls_run_against_local_"
    "servers and tests/unit/test_dsl1_agent_calls.py",
    "for.yaml": "its output.as reads .pets from the listen's output, a list of events",
    "listen-to-any-forever-foreach.yaml": "listens forever (until: false) by design",
    "run-container.yaml": CONTAINER,
    "run-container-cleanup-always.yaml": CONTAINER,
    "run-container-cleanup-eventually.yaml": CONTAINER,
    "run-container-stdin-and-arguments.yaml": CONTAINER,
    "run-container-with-name.yaml": CONTAINER,
    "run-container-with-pull-policy.yaml": CONTAINER,
    "run-return-all.yaml": CONTAINER,
    "run-return-code.yaml": CONTAINER,
    "run-return-none.yaml": CONTAINER,
    "run-return-stderr.yaml": CONTAINER,
    "run-shell-stdin-and-arguments.yaml": "run.shell is off unless the host enables it",
    "wait-duration-inline.yaml": WAITS,
    "wait-duration-iso8601.yaml": WAITS,
}  # fmt: skip


AUTHORITY = {
    "authority": "http://keycloak/realms/fake-authority",
    "grant": "client_credentials",
    "client": {"id": "workflow-runtime-id", "secret": "workflow-runtime-secret"},
}
SECRETS = {"TIDEFLOW_SECRET_mySecret": json.dumps(AUTHORITY)}
"""The policy the ``*-secret`` examples read from their secret ``mySecret``."""


CHILD = """\
document: {dsl: '1.0.3', namespace: test, name: register-customer, version: '0.1.0'}
do:
  - register: {set: {registered: '${ .customer }'}}
"""
"""The sub-workflow ``run-subflow.yaml`` runs (the corpus does not define it)."""


@pytest.fixture(scope="module")
def servers() -> Iterator[list[str]]:
    with start_stand_ins() as redirects:
        yield [arg for origin, to in redirects.items() for arg in ("--server", f"{origin}={to}")]


def tideflow_run(
    name: str, data: Any, events: list[dict[str, Any]], servers: list[str], tmp: Path
) -> subprocess.CompletedProcess[str]:
    feed = tmp / "events.jsonl"
    feed.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    (tmp / "child.yaml").write_text(CHILD, encoding="utf-8")
    command = [sys.executable, "-m", "tideflow.cli", "run", str(EXAMPLES / name),
               "--input", json.dumps(data), "--events", str(feed), "--workflows", str(tmp),
               *servers]  # fmt: skip
    env = {**os.environ, **SECRETS}
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, env=env)


@needs_sw1
def test_every_example_is_run_or_has_a_reason() -> None:
    names = [p.name for p in example_files()]
    placed = [*RUNNABLE, *FAULTING, *NOT_RUNNABLE]
    assert sorted(names) == sorted(placed)
    assert len(placed) == len(set(placed))


@needs_sw1
@pytest.mark.parametrize("name", sorted(RUNNABLE))
def test_example_runs_to_its_output(name: str, servers: list[str], tmp_path: Path) -> None:
    data, events, expected = RUNNABLE[name]
    result = tideflow_run(name, data, events, servers, tmp_path)
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    if isinstance(expected, dict) and expected.get("partial"):
        assert {k: output.get(k) for k in expected if k != "partial"} == {
            k: v for k, v in expected.items() if k != "partial"
        }
    else:
        assert output == expected


@needs_sw1
@pytest.mark.parametrize("name", sorted(FAULTING))
def test_example_faults_as_written(name: str, servers: list[str], tmp_path: Path) -> None:
    data, message = FAULTING[name]
    result = tideflow_run(name, data, [], servers, tmp_path)
    assert result.returncode == 1
    assert message in result.stderr


def test_a2a_and_mcp_calls_run_against_local_servers(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(WORKFLOW, encoding="utf-8")
    with agents_in_thread() as agents:
        data = {"base": agents.base, "token": TOKEN, "question": "hi"}
        command = [sys.executable, "-m", "tideflow.cli", "run", str(path), "--input",
                   json.dumps(data)]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"answer": "echo: hi", "sum": 3}
    assert agents.methods() == ["message/send", "initialize", "notifications/initialized",
                                "tools/call"]  # fmt: skip
